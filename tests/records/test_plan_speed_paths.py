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
from accord.records import places as places_module
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
def test_the_archive_read_by_connectorx_is_the_archive(
    tmp_path, monkeypatch, rows, swapped
) -> None:
    pytest.importorskip("connectorx")
    monkeypatch.setattr(store_module, "_FEW", 0)  # small archives too
    left, right = ("b", "a") if swapped else ("a", "b")
    store = ArchiveStore.open(tmp_path, left, right)
    store.record(put=[_entry(*row) for row in rows])
    answered = []
    real = store_module._arrow_columns

    def watched(*args):
        found = real(*args)
        answered.append(found is not None)
        return found

    monkeypatch.setattr(store_module, "_arrow_columns", watched)
    fast = [c.to_pylist() for c in store.version_columns()]
    assert answered == [True]  # connectorx read it
    with monkeypatch.context() as patch:
        patch.setattr(store_module, "_arrow_columns", lambda *args: None)
        slow = [c.to_pylist() for c in store.version_columns()]
    assert sorted(zip(*fast, strict=True)) == sorted(zip(*slow, strict=True))
    assert sorted(fast[0]) == sorted(key for key, _, _ in rows)
    store.close()


def test_a_key_that_is_not_utf8_is_not_read_by_connectorx(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(store_module, "_FEW", 0)
    store = ArchiveStore.open(tmp_path, "a", "b")
    name = b"caf\xe9".decode("utf-8", "surrogateescape")
    store.record(put=[_entry("1", "x", "x"), _entry(name, "y", "y")])
    db = sqlite3.connect(store.path)
    assert store_module._arrow_columns(db, store.path, "SELECT 1") is None
    db.close()
    store.close()


def test_a_csv_file_accord_wrote_is_read_from_what_it_kept(
    tmp_path, monkeypatch
) -> None:
    """The next run takes the target's records from what was kept (no
    parse), plans what a parse plans, and a changed byte is parsed again."""
    source = {str(i): (f"P{i}", "R1") for i in range(300)}
    target = {str(i): (f"P{i}", "R0") for i in range(100, 400)}
    folder, path = folder_with(source, target)
    state = folder / "state"
    try:
        assert apply_plan(make_plan(load_mapping(path), state_dir=state)).ok
        assert list((state / "records-files").glob("*.arrow"))
        write_csv(folder / "source.csv", {**source, "7": ("P7", "R9")})
        parsed: list[str] = []
        real = places_module.canonical_columns

        def counted(data, *args):
            parsed.append(bytes(data[:30]).decode())
            return real(data, *args)

        monkeypatch.setattr(places_module, "canonical_columns", counted)
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
