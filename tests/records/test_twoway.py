"""Two-way record sync: field-level merges (property-based) and end to end."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.records import apply_plan, load_mapping, make_plan
from accord.records.twoway import merge_fields

sqlalchemy = pytest.importorskip("sqlalchemy")

FIELDS = ("a", "b", "c", "d")
values = st.sampled_from([None, "x", "y", "z"])
records = st.fixed_dictionaries({f: values for f in FIELDS})


@given(records, records, records)
def test_merge_takes_each_sides_own_changes(base, left, right) -> None:
    merged, conflicts = merge_fields(base, left, right, "skip")
    for name in FIELDS:
        b, lv, rv = base[name], left[name], right[name]
        if lv == rv:
            assert merged[name] == lv and name not in conflicts
        elif lv == b:
            assert merged[name] == rv and name not in conflicts
        elif rv == b:
            assert merged[name] == lv and name not in conflicts
        else:
            assert name in conflicts


@given(records, records, records, st.sampled_from(["left", "right"]))
def test_a_policy_settles_every_conflict_for_one_side(base, left, right, policy):
    merged, conflicts = merge_fields(base, left, right, policy)
    winner = left if policy == "left" else right
    for name in conflicts:
        assert merged[name] == winner[name]


def write_side(path: Path, side: dict[int, dict]) -> None:
    lines = ["id," + ",".join(FIELDS)]
    for key, record in sorted(side.items()):
        lines.append(f"{key}," + ",".join(record[f] or "" for f in FIELDS))
    path.write_text("\n".join(lines) + "\n")


def read_side(path: Path) -> dict[int, dict]:
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    return {
        int(r[0]): {f: v or None for f, v in zip(FIELDS, r[1:], strict=True)}
        for r in rows
    }


@settings(max_examples=15, deadline=None)
@given(
    st.dictionaries(st.integers(0, 5), records, max_size=4),
    st.dictionaries(st.integers(0, 5), records, max_size=4),
    st.dictionaries(st.integers(0, 5), records, max_size=4),
)
def test_after_a_two_way_sync_both_sides_hold_the_same_records(base, left, right):
    """Through the engine: after a sync both files hold the same records
    (the conflict rule settles clashes), and a record modified on one side
    is never deleted because the other side deleted it."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "m.toml").write_text(TWO_FILES)
        write_side(folder / "left.csv", base)
        write_side(folder / "right.csv", base)
        state = folder / "state"
        mapping = load_mapping(folder / "m.toml")
        free = {"state_dir": state, "max_delete_percent": 100, "allow_empty": True}
        assert apply_plan(make_plan(mapping, **free), override_guards=True).ok
        write_side(folder / "left.csv", left)
        write_side(folder / "right.csv", right)
        assert apply_plan(make_plan(mapping, **free), override_guards=True).ok
        after_left, after_right = (
            read_side(folder / "left.csv"),
            read_side(folder / "right.csv"),
        )
        assert after_left == after_right
        for key in set(left) | set(right):
            changed = [s for s in (left, right) if key in s and s[key] != base.get(key)]
            if changed:
                assert key in after_left, "a modified record is kept"
        assert make_plan(mapping, **free).plan.is_empty


TWO_FILES = """
[entities.e]
key = ["id"]
fields = ["id", "a", "b", "c", "d"]
types = { id = "int" }
mode = "two-way"
conflict = "left"
[entities.e.source]
url = "csv://left.csv"
[[entities.e.targets]]
url = "csv://right.csv"
"""


def make_tables(tmp_path: Path) -> tuple[str, str]:
    urls = []
    for name in ("hr", "lms"):
        url = f"sqlite:///{tmp_path / name}.db"
        engine = sqlalchemy.create_engine(url)
        with engine.begin() as conn:
            conn.execute(
                sqlalchemy.text(
                    "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT,"
                    " phone TEXT, room TEXT)"
                )
            )
        engine.dispose()
        urls.append(url)
    return urls[0], urls[1]


def execute(url: str, sql: str) -> list[tuple]:
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        result = conn.execute(sqlalchemy.text(sql))
        rows = list(result) if result.returns_rows else []
    engine.dispose()
    return rows


def test_two_databases_merge_field_by_field(tmp_path: Path, state_dir) -> None:
    hr, lms = make_tables(tmp_path)
    execute(
        hr,
        "INSERT INTO people VALUES (1, 'Ada', '111', 'A1'), (2, 'Alan', '222', 'B2')",
    )
    mapping = tmp_path / "m.toml"
    mapping.write_text(f'''
[entities.people]
key = ["id"]
fields = ["id", "name", "phone", "room"]
types = {{ id = "int" }}
mode = "two-way"
[entities.people.source]
url = "{hr}"
table = "people"
[[entities.people.targets]]
url = "{lms}"
table = "people"
''')
    assert apply_plan(make_plan(load_mapping(mapping))).ok
    assert execute(lms, "SELECT * FROM people ORDER BY id") == [
        (1, "Ada", "111", "A1"),
        (2, "Alan", "222", "B2"),
    ]
    # different fields changed on each side: both changes survive
    execute(hr, "UPDATE people SET phone = '999' WHERE id = 1")
    execute(lms, "UPDATE people SET room = 'C3' WHERE id = 1")
    # the same field changed differently: a conflict, left for a person
    execute(hr, "UPDATE people SET room = 'HR' WHERE id = 2")
    execute(lms, "UPDATE people SET room = 'LMS' WHERE id = 2")
    prepared = make_plan(load_mapping(mapping))
    assert [(e, k, f) for e, k, f in prepared.plan.conflicts] == [
        ("people", (2,), ["room"])
    ]
    assert apply_plan(prepared).ok
    expected = (1, "Ada", "999", "C3")
    assert execute(hr, "SELECT * FROM people WHERE id = 1") == [expected]
    assert execute(lms, "SELECT * FROM people WHERE id = 1") == [expected]
    assert execute(hr, "SELECT room FROM people WHERE id = 2") == [("HR",)]
    assert execute(lms, "SELECT room FROM people WHERE id = 2") == [("LMS",)]
    # a deletion on one side travels; the plan is then quiet but for the conflict
    execute(lms, "DELETE FROM people WHERE id = 1")
    assert apply_plan(make_plan(load_mapping(mapping))).ok
    assert execute(hr, "SELECT id FROM people") == [(2,)]
