"""The archive rows of a records pair made from its versions file
(``columns.plain_rows``) are the rows SQLite holds, and only when every
row is plain; a plan made with them is the plan made without."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import accord.state.store as store_module
from accord.engine import columns
from accord.model import Side
from accord.records import apply_plan, load_mapping, make_plan
from accord.state.store import ArchiveEntry, ArchiveStore

pytest.importorskip("pyarrow")


def _entry(key: str, left: str, right: str, size: int = 0) -> ArchiveEntry:
    return ArchiveEntry(key, "file", size, 0, 0, left, None, left, right)


@pytest.mark.parametrize("swapped", [False, True])
def test_rows_made_from_the_versions_file_are_the_stored_rows(
    tmp_path, monkeypatch, swapped
) -> None:
    import pyarrow as pa

    monkeypatch.setattr(store_module, "_FEW", 0)
    left, right = ("b", "a") if swapped else ("a", "b")
    store = ArchiveStore.open(tmp_path, left, right)
    rows = [_entry(str(i), f"t{i}", f"t{i}" if i % 3 else f"u{i}") for i in range(50)]
    store.record(put=rows)
    assert store.keep_version_columns()
    known = store.version_columns()
    digests = store.plain_digests()
    assert digests is Side.LEFT  # as oriented: the digests are LEFT's versions
    names = known[0].to_pylist()
    at = pa.array([names.index(k) if k else None for k in ("3", "", "7", "49", "0")])
    fresh = columns.Listed(Side.LEFT, None, [], [], 0, None, at)  # type: ignore[arg-type]
    made = columns.plain_rows([fresh], known, digests)
    wanted = store.rows(["3", "7", "49", "0"])
    assert {row.key: row for row in made} == wanted
    store.close()


@pytest.mark.parametrize(
    "odd",
    [
        ArchiveEntry("x", "file", 5, 0, 0, "t", None, "t", "t"),  # a size
        ArchiveEntry("x", "file", 0, 0, 0, "other", None, "t", "t"),  # a digest
        ArchiveEntry("x", "dir", 0, 0, 0, "t", None, "t", "t"),  # a folder
        ArchiveEntry("x", "file", 0, 0, 0, None, None, "t", "t"),  # no digest
    ],
)
def test_an_archive_with_a_row_that_is_not_plain_is_read(
    tmp_path, monkeypatch, odd
) -> None:
    monkeypatch.setattr(store_module, "_FEW", 0)
    store = ArchiveStore.open(tmp_path, "a", "b")
    store.record(put=[_entry(str(i), f"t{i}", f"t{i}") for i in range(20)] + [odd])
    assert store.keep_version_columns()
    store.version_columns()
    assert store.plain_digests() is None
    store.close()


MAPPING = """
[entities.people]
key = ["id"]
fields = ["id", "name", "room"]
{types}
{mode}
[entities.people.source]
url = "csv://{source}"
[[entities.people.targets]]
url = "csv://{target}"
"""

keys = st.one_of(st.integers(0, 40).map(str), st.sampled_from(["a/b", "x\\y", "é"]))
values = st.sampled_from(["", "R1", "R2", "x,y", "new\\line", "é"])
sides = st.dictionaries(keys, st.tuples(values, values), max_size=25)


def write_csv(path: Path, found: dict[str, tuple[str, str]]) -> None:
    import csv

    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "name", "room"])
        for key, values in found.items():
            writer.writerow([key, *values])


def planned(path: Path, state: Path, plain: bool, monkeypatch) -> tuple:
    with monkeypatch.context() as patch:
        if not plain:
            patch.setattr(ArchiveStore, "plain_digests", lambda self: None)
        prepared = make_plan(
            load_mapping(path), state_dir=state, max_delete_percent=100
        )
    plan = prepared.pairs[0].plan
    assert plan is not None
    return (
        sorted(
            (a.op, a.key, str(a.side), a.entry, a.expect, a.other, a.new_key)
            for a in plan.actions
        ),
        sorted((c.key, c.left, c.right) for c in plan.conflicts),
        sorted((p.key, p.message) for p in plan.problems),
        plan.guards,
        prepared.plan.actions,
    )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    first=sides,
    target=sides,
    later=sides,
    two_way=st.booleans(),
    typed=st.booleans(),
)
def test_a_plan_with_rows_made_from_columns_is_the_plan_read_from_sqlite(
    first, target, later, two_way, typed, monkeypatch
) -> None:
    if typed:  # int keys only
        first, target, later = (
            {k: v for k, v in side.items() if k.isdigit()}
            for side in (first, target, later)
        )
    monkeypatch.setattr(store_module, "_FEW", 0)  # small archives keep theirs
    folder = Path(tempfile.mkdtemp())
    try:
        write_csv(folder / "source.csv", first)
        write_csv(folder / "target.csv", target)
        path = folder / "m.toml"
        path.write_text(
            MAPPING.format(
                types='types = { id = "int" }' if typed else "",
                mode='mode = "two-way"' if two_way else "",
                source=folder / "source.csv",
                target=folder / "target.csv",
            )
        )
        state = folder / "state"
        try:
            prepared = make_plan(
                load_mapping(path), state_dir=state, max_delete_percent=100
            )
        except Exception:
            return  # refused data: nothing to compare
        apply_plan(prepared, override_guards=True)
        write_csv(folder / "source.csv", {**first, **later})
        try:
            fast = planned(path, state, True, monkeypatch)
        except Exception as exc:
            with pytest.raises(type(exc)):
                planned(path, state, False, monkeypatch)
            return
        assert fast == planned(path, state, False, monkeypatch)
    finally:
        shutil.rmtree(folder)
