"""The faster ways a record plan reads and matches give exactly what the
reference ways give: the archive read by connectorx, keys matched as
numbers, and a CSV file accord wrote taken from what it kept."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.engine import columns
from accord.records import apply_plan, load_mapping, make_plan
from accord.records import csvplace as csvplace_module
from accord.state import store as store_module
from accord.state.store import ArchiveEntry, ArchiveStore

pa = pytest.importorskip("pyarrow")
pc = pytest.importorskip("pyarrow.compute")

MAPPING = """
[entities.people]
key = ["id"]
fields = ["id", "name", "room"]
types = {{ id = "int" }}
[entities.people.source]
url = "csv://{source}"
[[entities.people.targets]]
url = "csv://{target}"
"""


def write_csv(path: Path, records: dict[str, tuple[str, str]]) -> None:
    import csv

    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "name", "room"])
        for key, (name, room) in records.items():
            writer.writerow([key, name, room])


def folder_with(source: dict, target: dict) -> tuple[Path, Path]:
    folder = Path(tempfile.mkdtemp())
    write_csv(folder / "source.csv", source)
    write_csv(folder / "target.csv", target)
    path = folder / "m.toml"
    path.write_text(
        MAPPING.format(source=folder / "source.csv", target=folder / "target.csv")
    )
    return folder, path


def synced_then_changed() -> tuple[Path, Path, Path]:
    """A CSV pair synced once (300 records against 300, 200 of them shared),
    then one source record changed: its folder, mapping and state folder."""
    source = {str(i): (f"P{i}", "R1") for i in range(300)}
    target = {str(i): (f"P{i}", "R0") for i in range(100, 400)}
    folder, path = folder_with(source, target)
    state = folder / "state"
    assert apply_plan(make_plan(load_mapping(path), state_dir=state)).ok
    write_csv(folder / "source.csv", {**source, "7": ("P7", "R9")})
    return folder, path, state


# numbers in one spelling and in others, and names that are not numbers
keys = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["007", "-0", "+3", " 4", "x", "1e3", "0x10", "", "9" * 19]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(keys, unique=True), st.lists(keys, unique=True))
def test_keys_matched_as_numbers_match_as_texts(ours, theirs) -> None:
    left = pa.array(ours, pa.string())
    right = pa.array(theirs, pa.string())
    assert columns._index_in(left, right).to_pylist() == (
        pc.index_in(left, value_set=right).to_pylist()
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(keys))
def test_repeated_keys_are_found_as_numbers_as_texts(found) -> None:
    from accord.records.arrow import _unique

    assert _unique(pa.array(found, pa.string()), pc) == (len(set(found)) == len(found))


def _entry(key: str, left: str, right: str) -> ArchiveEntry:
    return ArchiveEntry(key, "file", 0, 0, 0, left, None, left, right)


@pytest.mark.parametrize(
    "rows",
    [
        [("1", "a", "a"), ("2", "b", "b"), ("10", "c\x1fd", "c\x1fd")],
        [("1", "a", "a"), ("2", "b", "B"), ("é", "ü", "ü")],
        [("x", "a", "b")],  # every right version differs
    ],
)
@pytest.mark.parametrize("swapped", [False, True])
def test_the_archive_read_from_its_versions_file_is_the_archive(
    tmp_path, monkeypatch, rows, swapped
) -> None:
    monkeypatch.setattr(store_module, "_FEW", 0)  # small archives too
    left, right = ("b", "a") if swapped else ("a", "b")
    store = ArchiveStore.open(tmp_path, left, right)
    store.record(put=[_entry(*row) for row in rows])
    read = [c.to_pylist() for c in store.version_columns()]
    assert store.keep_version_columns()
    assert store._kept_versions() is not None
    kept = [c.to_pylist() for c in store.version_columns()]
    assert sorted(zip(*kept, strict=True)) == sorted(zip(*read, strict=True))
    assert sorted(zip(*read, strict=True)) == sorted(rows)  # as recorded
    store.close()


def test_the_archive_is_read_by_its_own_connection_only(tmp_path, monkeypatch) -> None:
    """Reading and keeping the versions leaves the archive's write-ahead
    log in place (a second SQLite library in the process deleted it under
    the open connection), and what is recorded next is what others read."""
    monkeypatch.setattr(store_module, "_FEW", 0)
    store = ArchiveStore.open(tmp_path, "a", "b")
    store.record(put=[_entry(str(i), "x", "x") for i in range(100)])
    store.version_columns()
    assert store.keep_version_columns()
    store.record(put=[_entry("1", "y", "y")])
    assert Path(f"{store.path}-wal").exists()
    other = sqlite3.connect(store.path)
    assert other.execute("SELECT ver_a FROM entries WHERE key = '1'").fetchone() == (
        "y",
    )
    other.close()
    assert ("1", "y", "y") in _versions(store)
    store.close()


def test_a_key_that_is_not_utf8_keeps_no_versions_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(store_module, "_FEW", 0)
    store = ArchiveStore.open(tmp_path, "a", "b")
    name = b"caf\xe9".decode("utf-8", "surrogateescape")
    store.record(put=[_entry("1", "x", "x"), _entry(name, "y", "y")])
    assert not store.keep_version_columns()
    assert store._kept_versions() is None
    store.close()


def test_a_csv_file_accord_wrote_is_read_from_what_it_kept(
    tmp_path, monkeypatch
) -> None:
    """The next run takes the target's records from what was kept (no
    parse), plans what a parse plans, and a changed byte is parsed again."""
    folder, path, state = synced_then_changed()
    try:
        assert list((state / "records-files").glob("*.arrow"))
        parsed: list[str] = []
        real = csvplace_module.canonical_columns

        def counted(data, *args):
            parsed.append(bytes(data[:30]).decode())
            return real(data, *args)

        monkeypatch.setattr(csvplace_module, "canonical_columns", counted)
        kept = make_plan(load_mapping(path), state_dir=state)
        assert len(parsed) == 1  # the source only
        assert list(kept.plan.summary().values()) == [
            {"create": 0, "update": 1, "delete": 0}
        ]
        shutil.rmtree(state / "records-files")
        parsed.clear()
        again = make_plan(load_mapping(path), state_dir=state)
        assert len(parsed) == 2
        assert sorted(map(repr, again.plan.actions)) == sorted(
            map(repr, kept.plan.actions)
        )
        # one byte changed behind accord's back: parsed, and seen
        assert apply_plan(make_plan(load_mapping(path), state_dir=state)).ok
        text = (folder / "target.csv").read_text()
        (folder / "target.csv").write_text(text.replace("P9,R1", "P9,R2"))
        parsed.clear()
        changed = make_plan(load_mapping(path), state_dir=state)
        assert len(parsed) == 2
        assert [(a.op, a.key) for a in changed.plan.actions] == [("update", (9,))]
    finally:
        shutil.rmtree(folder)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-(10**6), 10**6), unique=True),
    st.lists(st.integers(-(10**6), 10**6), unique=True),
)
def test_keys_in_increasing_order_are_found_as_a_hash_finds_them(ours, theirs) -> None:
    """Increasing keys are matched by a binary search in the sorted value
    set: the same answer as the hash."""
    left = pa.array([str(n) for n in sorted(ours)], pa.string())
    right = pa.array([str(n) for n in theirs], pa.string())
    for _ in range(2):  # the second time, the value set's ints are reused
        assert columns._index_in(left, right).to_pylist() == (
            pc.index_in(left, value_set=right).to_pylist()
        )


def test_the_archived_keys_numbers_are_forgotten_with_them() -> None:
    import gc

    keys = pa.array([str(n) for n in range(100)], pa.string())
    assert columns._index_in(keys, keys).to_pylist() == list(range(100))
    assert columns._LAST[1] is not None
    del keys
    gc.collect()
    assert columns._LAST == [None, None]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 2000), min_size=64, max_size=400, unique=True),
    st.lists(st.integers(0, 2000), unique=True),
    st.data(),
)
def test_keys_mostly_in_order_are_found_as_a_hash_finds_them(
    ours, theirs, data
) -> None:
    """Keys in order but for a few (new rows at the end, a few moved) are
    sorted, searched, and put back in their order."""
    ours = sorted(ours)
    for _ in range(data.draw(st.integers(0, 3))):
        at = data.draw(st.integers(0, len(ours) - 1))
        ours.append(ours.pop(at))
    left = pa.array([str(n) for n in ours], pa.string())
    right = pa.array([str(n) for n in theirs], pa.string())
    assert columns._index_in(left, right).to_pylist() == (
        pc.index_in(left, value_set=right).to_pylist()
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c\x1fd", ""])), st.data())
def test_texts_are_compared_a_slice_at_a_time_as_at_once(texts, data) -> None:
    others = pa.array(data.draw(st.lists(st.sampled_from(["a", "b", "x"]))))
    at = [
        data.draw(st.one_of(st.none(), st.integers(0, len(others) - 1)))
        if len(others)
        else None
        for _ in texts
    ]
    mine, where = pa.array(texts, pa.string()), pa.array(at, pa.int32())
    whole = pc.fill_null(pc.equal(mine, others.take(where)), False).to_pylist()
    for size in (1, 2, 3, 65_536):
        columns._SLICE = size
        try:
            assert columns._equal_at(mine, others, where).to_pylist() == whole
            chunked = pa.chunked_array([others.slice(0, 1), others.slice(1)])
            assert columns._equal_at(mine, chunked, where).to_pylist() == whole
        finally:
            columns._SLICE = 65_536


def _kept_store(tmp_path: Path, monkeypatch, swapped: bool = False) -> ArchiveStore:
    monkeypatch.setattr(store_module, "_FEW", 2)
    left, right = ("b", "a") if swapped else ("a", "b")
    store = ArchiveStore.open(tmp_path, left, right)
    store.record(
        put=[_entry(str(i), f"v{i}", f"v{i}" if i % 3 else f"w{i}") for i in range(10)]
    )
    return store


def _versions(store: ArchiveStore) -> list[tuple[str, str, str]]:
    return sorted(zip(*(c.to_pylist() for c in store.version_columns()), strict=True))


@pytest.mark.parametrize("swapped", [False, True])
def test_the_kept_versions_file_is_the_archive(tmp_path, monkeypatch, swapped) -> None:
    """The versions file gives what SQLite gives; a change of the archive,
    by accord or by any other writer, stops it being used."""
    store = _kept_store(tmp_path, monkeypatch, swapped)
    read = _versions(store)
    assert store.keep_version_columns()
    assert store.versions_path.exists()
    kept = store_module.ArchiveStore._stored_versions
    monkeypatch.setattr(
        store_module.ArchiveStore,
        "_stored_versions",
        lambda self: pytest.fail("SQLite read"),
    )
    assert _versions(store) == read  # from the file
    monkeypatch.setattr(store_module.ArchiveStore, "_stored_versions", kept)
    store.record(put=[_entry("3", "new", "new")])
    assert store._kept_versions() is None  # the archive changed since
    assert ("3", "new", "new") in _versions(store)
    assert store.keep_version_columns()
    assert store._kept_versions() is not None
    db = sqlite3.connect(store.path)  # a writer that knows nothing of it
    db.execute("DELETE FROM entries WHERE key = '4'")
    db.commit()
    db.close()
    assert store._kept_versions() is None
    assert "4" not in [key for key, _, _ in _versions(store)]
    assert store.keep_version_columns()
    store.clear()
    assert store._kept_versions() is None
    assert not store.versions_path.exists()
    assert _versions(store) == []
    store.close()


def test_a_versions_file_the_archive_does_not_name_is_not_used(
    tmp_path, monkeypatch
) -> None:
    """A file left by a run stopped before its transaction committed, or
    another pair's file, or a damaged one, is never read as the archive."""
    store = _kept_store(tmp_path, monkeypatch)
    read = _versions(store)
    assert store.keep_version_columns()
    other = _kept_store(tmp_path / "other", monkeypatch)
    other.record(put=[_entry("5", "else", "else")])
    assert other.keep_version_columns()
    store.versions_path.write_bytes(other.versions_path.read_bytes())
    assert store._kept_versions() is None  # its token is not the archive's
    assert store.keep_version_columns()  # written again
    assert store._kept_versions() is not None
    assert _versions(store) == read
    good = store.versions_path.read_bytes()
    store.versions_path.write_bytes(good[: len(good) // 2])
    assert store._kept_versions() is None  # cut short
    store.versions_path.write_bytes(good)
    assert store._kept_versions() is not None
    store.versions_path.unlink()
    assert store._kept_versions() is None
    assert store.keep_version_columns()  # written again
    assert store._kept_versions() is not None
    store.close()
    other.close()


def test_a_small_archive_keeps_no_versions_file(tmp_path, monkeypatch) -> None:
    store = _kept_store(tmp_path, monkeypatch)
    monkeypatch.setattr(store_module, "_FEW", 50)
    assert not store.keep_version_columns()
    assert not store.versions_path.exists()
    store.close()


def test_an_apply_keeps_the_versions_for_the_next_plan(tmp_path, monkeypatch) -> None:
    """After an apply, the next plan maps the archive's versions, and plans
    what reading SQLite plans."""
    monkeypatch.setattr(store_module, "_FEW", 10)
    folder, path, state = synced_then_changed()
    try:
        assert list((state / "pairs").glob("*.versions.arrow"))
        kept = make_plan(load_mapping(path), state_dir=state)
        for found in (state / "pairs").glob("*.versions.arrow"):
            found.unlink()
        again = make_plan(load_mapping(path), state_dir=state)
        assert [(a.op, a.key) for a in kept.plan.actions] == [("update", (7,))]
        assert sorted(map(repr, again.plan.actions)) == sorted(
            map(repr, kept.plan.actions)
        )
    finally:
        shutil.rmtree(folder)


def test_digests_already_listed_need_no_threads() -> None:
    from accord.engine.detect import fill_digests
    from accord.model import FILE, Entry

    listed = [Entry(str(i), FILE, 0, 0, 0, "v", "v") for i in range(20)]
    assert fill_digests(None, listed) == listed  # type: ignore[arg-type]


def test_a_versions_file_that_cannot_be_written_leaves_the_archive_read(
    tmp_path, monkeypatch
) -> None:
    """A failure while the file is written (here its rename) rolls back the
    archive's transaction and leaves no temporary file: no file is named,
    and the plan reads SQLite, changes included."""
    store = _kept_store(tmp_path, monkeypatch)
    assert store.keep_version_columns()
    store.record(put=[_entry("1", "z", "z")])

    def refused(*args):
        raise OSError("no space left")

    with monkeypatch.context() as patch:
        patch.setattr(store_module.os, "replace", refused)
        assert not store.keep_version_columns()
    assert not store.versions_path.with_suffix(".tmp").exists()
    assert store._kept_versions() is None
    assert ("1", "z", "z") in _versions(store)
    assert store.keep_version_columns()
    assert ("1", "z", "z") in _versions(store)
    store.close()


def _compared_sides(monkeypatch) -> list[int]:
    """How many listed items each comparison with the archive compared."""
    sizes: list[int] = []
    real = columns._equal_at

    def counted(texts, others, at):
        sizes.append(len(texts))
        return real(texts, others, at)

    monkeypatch.setattr(columns, "_equal_at", counted)
    return sizes


def test_a_target_the_apply_wrote_is_vouched_for_and_not_compared(
    tmp_path, monkeypatch
) -> None:
    """After an apply, the archive vouches for the target file it wrote
    (its kept records are the archived versions): the next plan compares
    only the source with the archive, and plans what comparing both plans."""
    monkeypatch.setattr(store_module, "_FEW", 10)
    folder, path, state = synced_then_changed()
    try:
        sizes = _compared_sides(monkeypatch)
        vouched = make_plan(load_mapping(path), state_dir=state)
        assert sizes == [300]  # the source's 300 records only
        assert [(a.op, a.key) for a in vouched.plan.actions] == [("update", (7,))]
        (pairs,) = (state / "pairs").glob("*.db")
        db = sqlite3.connect(pairs)
        assert db.execute(
            "SELECT count(*) FROM meta WHERE name LIKE 'versions_file_same_%'"
        ).fetchone() == (1,)
        db.execute("DELETE FROM meta WHERE name LIKE 'versions_file_same_%'")
        db.commit()
        db.close()
        sizes.clear()
        compared = make_plan(load_mapping(path), state_dir=state)
        assert sorted(sizes) == [300, 300]  # both sides compared
        assert sorted(map(repr, compared.plan.actions)) == sorted(
            map(repr, vouched.plan.actions)
        )
    finally:
        shutil.rmtree(folder)


def test_a_target_changed_after_the_apply_is_compared_again(monkeypatch) -> None:
    """A byte of the target changed, or the archive changed by any writer:
    the vouch no longer holds and both sides are compared (a changed byte
    is seen); the target as accord wrote it again is vouched for again."""
    monkeypatch.setattr(store_module, "_FEW", 10)
    folder, path, state = synced_then_changed()
    try:
        sizes = _compared_sides(monkeypatch)
        data = (folder / "target.csv").read_bytes()
        (folder / "target.csv").write_bytes(data.replace(b"P9,R1", b"P9,R2"))
        changed = make_plan(load_mapping(path), state_dir=state)
        assert sorted(sizes) == [300, 300]
        assert sorted((a.op, a.key) for a in changed.plan.actions) == [
            ("update", (7,)),
            ("update", (9,)),
        ]
        (folder / "target.csv").write_bytes(data)  # as accord wrote it again
        sizes.clear()
        make_plan(load_mapping(path), state_dir=state)
        assert sizes == [300]
        (pairs,) = (state / "pairs").glob("*.db")
        db = sqlite3.connect(pairs)  # a writer that knows nothing of it
        db.execute("UPDATE entries SET ver_b = 'x' WHERE key = '9'")
        db.commit()
        db.close()
        sizes.clear()
        make_plan(load_mapping(path), state_dir=state)
        assert sorted(sizes) == [300, 300]  # the archive changed: compared
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize(
    "listed",
    [
        {"1": "a", "2": "b", "3": "c"},  # the archive's versions exactly
        {"1": "a", "2": "B", "3": "c"},  # one version differs
        {"1": "a", "2": "b"},  # one archived key missing
        {"1": "a", "2": "b", "3": "c", "4": "d"},  # one more
    ],
)
@pytest.mark.parametrize("swapped", [False, True])
def test_the_archive_vouches_only_for_its_own_versions(
    tmp_path, monkeypatch, listed, swapped
) -> None:
    """``vouch`` says a listing is the archive's side only when comparing
    them finds nothing fresh and nothing unseen, only for that side, and
    only while the archive is what was compared."""
    from accord.model import Side
    from accord.replica import Columns

    monkeypatch.setattr(store_module, "_FEW", 2)
    store = ArchiveStore.open(tmp_path, *(("b", "a") if swapped else ("a", "b")))
    store.record(
        put=[_entry(k, v, v.upper()) for k, v in zip("123", "abc", strict=True)]
    )
    assert store.keep_version_columns()
    keys = pa.array(list(listed), pa.string())
    texts = pa.array(list(listed.values()), pa.string())
    store_left = Side.LEFT  # its versions are "abc" however the archive is opened
    columns.vouch(store, {store_left: Columns(keys, texts, texts, "kept-1")})
    exact = listed == {"1": "a", "2": "b", "3": "c"}
    assert store.vouched(store_left) == ("kept-1" if exact else None)
    assert store.vouched(store_left.other) is None
    found = columns.against(
        Columns(keys, texts, texts, "kept-1"),
        store.version_columns()[:2],
        store_left,
        keys,
        [],
        store.vouched(store_left),
    )
    if exact:  # not compared, and nothing fresh or unseen
        assert len(found.fresh.keys) == 0 and not found.unseen
    store.record(put=[_entry("9", "z", "z")])  # the archive changed
    assert store.vouched(store_left) is None
    store.close()


def test_a_vouch_for_an_archive_changed_meanwhile_is_not_kept(
    tmp_path, monkeypatch
) -> None:
    """A comparison made against versions the archive no longer holds
    leaves nothing said, even when a new versions file is kept since."""
    from accord.model import Side

    monkeypatch.setattr(store_module, "_FEW", 2)
    store = ArchiveStore.open(tmp_path, "a", "b")
    store.record(put=[_entry(k, v, v) for k, v in zip("123", "abc", strict=True)])
    assert store.keep_version_columns()
    token = store.kept_token()
    store.record(put=[_entry("4", "d", "d")])
    assert store.keep_version_columns()
    assert store.kept_token() not in (None, token)
    store.vouch(Side.LEFT, "kept-1", token)
    assert store.vouched(Side.LEFT) is None
    store.vouch(Side.LEFT, "kept-1", store.kept_token())
    assert store.vouched(Side.LEFT) == "kept-1"
    store.close()
