"""A no-op run holds memory for what changed, not for every item: a place
that lists in key order is merged with the archive read in the same order
(``KnownInOrder``), instead of being looked up in a dict of every archived
version. The merge must find exactly what the dict finds."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from accord.engine.detect import KnownInOrder, ScanOrderError
from accord.state.store import ArchiveEntry, ArchiveStore

# names drawn to meet at the awkward places of an ordering: '/' against the
# characters just below it ('-', '.'), non-ASCII, and surrogate escapes (the
# bytes of a name that is not UTF-8), which SQLite keeps as BLOBs
PIECES = ["a", "b", "a.txt", "a-b", "a b", "é", "e\u0301", "\udce9", "\udcff", "z"]
KEYS = hs.lists(hs.sampled_from(PIECES), min_size=1, max_size=3).map("/".join)


def _by_dict(known: dict[str, str], listed: list[str]) -> tuple[list, list[str]]:
    unseen = set(known)
    answers = []
    for key in listed:
        unseen.discard(key)
        answers.append(known.get(key))
    return answers, sorted(unseen)


@settings(max_examples=300, deadline=None)
@given(archived=hs.dictionaries(KEYS, hs.text(max_size=3)), listed=hs.sets(KEYS))
def test_the_merge_finds_what_a_dict_finds(
    archived: dict[str, str], listed: set[str]
) -> None:
    order = sorted(listed)
    known = KnownInOrder(sorted(archived.items()))
    answers = [known.get(key) for key in order]
    unseen = known.finish()
    assert (answers, unseen) == _by_dict(archived, order)
    assert known.count == len(archived)


@settings(max_examples=300, deadline=None)
@given(
    archived=hs.dictionaries(KEYS, hs.sampled_from(["1", "2"])),
    listed=hs.dictionaries(KEYS, hs.sampled_from(["1", "2"])),
    cuts=hs.lists(hs.integers(0, 40), max_size=8),
    rows_at_once=hs.integers(1, 5),
)
def test_runs_of_unchanged_items_pass_at_once(
    archived: dict[str, str],
    listed: dict[str, str],
    cuts: list[int],
    rows_at_once: int,
) -> None:
    """A listing offered in runs (``same``), each run item by item when it
    is not the archive's next rows, finds what a dict finds: each item
    unchanged or not, and the archived keys it did not show."""
    pairs = sorted(listed.items())
    bounds = sorted({0, len(pairs), *(c for c in cuts if c < len(pairs))})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("accord.engine.detect._ROWS_AT_ONCE", rows_at_once)
        known = KnownInOrder(sorted(archived.items()))
        unchanged: list[str] = []
        for start, end in itertools.pairwise(bounds):
            run = pairs[start:end]
            if known.same(run):
                unchanged += [key for key, _ in run]
            else:
                unchanged += [key for key, version in run if known.get(key) == version]
        gone = known.finish()
    assert unchanged == [key for key, version in pairs if archived.get(key) == version]
    assert gone == sorted(set(archived) - set(listed))
    assert known.count == len(archived)


def test_a_listing_out_of_order_stops_the_run() -> None:
    known = KnownInOrder([("a", "1"), ("b", "2"), ("c", "3")])
    assert known.get("b") == "2"
    with pytest.raises(ScanOrderError):
        known.get("a")
    with pytest.raises(ScanOrderError):
        known.get("b")  # twice is out of order too
    with pytest.raises(ScanOrderError):
        known.same([("b", "2"), ("c", "3")])
    assert known.same([("c", "3")])


def _row(key: str, version: str) -> ArchiveEntry:
    return ArchiveEntry(
        key, "file", 1, 2, 0o644, "sha256:x", None, version, "r" + version
    )


@settings(max_examples=60, deadline=None)
@given(archived=hs.dictionaries(KEYS, hs.text(min_size=1, max_size=3), max_size=30))
def test_the_archive_reads_in_python_order(
    tmp_path_factory: pytest.TempPathFactory, archived: dict[str, str]
) -> None:
    """TEXT keys come in SQLite's order and BLOB keys (not UTF-8) after them
    there; read in order, they are in Python's ``str`` order, as a scan in
    order lists them."""
    folder: Path = tmp_path_factory.mktemp("state")
    store = ArchiveStore.open(folder, "/left", "/right")
    try:
        store.record(put=[_row(key, version) for key, version in archived.items()])
        want = sorted(archived.items())
        left = store.version_runs_in_order("left")
        assert list(itertools.chain.from_iterable(left)) == want
        runs = store.version_runs_in_order("right", own_connection=True)
        right = list(itertools.chain.from_iterable(runs))
        assert right == [(key, "r" + version) for key, version in want]
    finally:
        store.close()
