"""The local place lists in key order (``Replica.scan_in_order``), so the
engine can merge its listing with the archive read in the same order. The
order must hold for every name a folder can hold: a walk's natural order
(a folder, then its contents) is not the order of whole keys where a name
has a character below '/' ('a.txt' sorts before 'a/b'), and names that
are not UTF-8 sort by their surrogate escapes. A merge out of order would
infer deletions: two-way syncs with such names must converge and leave
nothing to do."""

from __future__ import annotations

import os
import shutil
import unicodedata
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as hs

import accord
from accord.replicas.local import LocalReplica

# around '/': '-', '.', ' ' sort below it, '0' above; non-ASCII (NFC and
# NFD), a control character, and bytes that are not UTF-8
NAMES = [
    "a",
    "a.txt",
    "a-b",
    "a b",
    "a0",
    "\u00e9",
    "e\u0301",
    "\x01",
    "\udcff",
    "\udce9x",
]
PATHS = hs.lists(hs.sampled_from(NAMES), min_size=1, max_size=3).map("/".join)
EDITS = hs.lists(
    hs.tuples(hs.sampled_from(["write", "delete"]), PATHS, hs.binary(max_size=3)),
    max_size=6,
)


def _edit(root: Path, kind: str, rel: str, data: bytes) -> None:
    path = root / rel
    try:
        if kind == "write":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        elif path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError:
        pass  # a file where a folder is wanted, or nothing to delete


def _tree(root: Path) -> dict[bytes, bytes | None]:
    found: dict[bytes, bytes | None] = {}
    top = os.fsencode(root)
    for folder, dirs, files in os.walk(top):
        if folder == top:
            dirs[:] = [d for d in dirs if d != b".accord"]
        for name in dirs + files:
            path = os.path.join(folder, name)
            key = os.path.relpath(path, top)
            found[key] = (
                None if os.path.isdir(path) else Path(os.fsdecode(path)).read_bytes()
            )
    return found


def _by_item(tree: dict[bytes, bytes | None]) -> dict[bytes, list]:
    """The tree by item: two spellings of one name (NFC, NFD) are one item,
    and when both sides created it each keeps its own spelling (accord never
    rewrites a name into another normalization). Each spelling's content is
    kept, so a side holding both as two files still shows two."""
    items: dict[bytes, list] = {}
    for key, data in tree.items():
        text = unicodedata.normalize("NFC", key.decode("utf-8", "surrogateescape"))
        items.setdefault(text.encode("utf-8", "surrogateescape"), []).append(data)
    return {key: sorted(found, key=repr) for key, found in items.items()}


settings_ = settings(
    max_examples=int(os.environ.get("ACCORD_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@settings_
@given(edits=EDITS)
def test_the_listing_comes_in_key_order(
    tmp_path_factory, edits: list[tuple[str, str, bytes]]
) -> None:
    root = tmp_path_factory.mktemp("tree")
    for edit in edits:
        _edit(root, *edit)
    place = LocalReplica(str(root))
    place.open()
    keys = [item if isinstance(item, str) else item[0] for item in place.scan()]
    assert keys == sorted(set(keys))  # ascending, no key twice
    assert {os.fsencode(key) for key in keys} == set(_tree(root))


@settings_
@given(rounds=hs.lists(hs.tuples(EDITS, EDITS), min_size=1, max_size=3))
@example(  # each side creates one spelling of the same name: one item, two spellings
    rounds=[
        (
            [("write", "a", b""), ("write", "\u00e9", b"")],
            [("write", "a", b""), ("write", "e\u0301", b"")],
        )
    ]
)
def test_syncs_with_names_around_the_separator_converge(
    tmp_path_factory, rounds: list[tuple[list, list]]
) -> None:
    base = tmp_path_factory.mktemp("pair")
    left, right, state = base / "left", base / "right", base / "state"
    left.mkdir()
    right.mkdir()
    for left_edits, right_edits in rounds:
        for edit in left_edits:
            _edit(left, *edit)
        for edit in right_edits:
            _edit(right, *edit)
        report = accord.sync(
            str(left), str(right), state_dir=state, allow_empty=True, max_delete=10**6
        )
        assert report.ok, [o.message for o in report.failed + report.skipped]
        assert _by_item(_tree(left)) == _by_item(_tree(right))
        again = accord.sync(str(left), str(right), state_dir=state, dry_run=True)
        assert again.is_empty, [a.reason for a in again.actions]
