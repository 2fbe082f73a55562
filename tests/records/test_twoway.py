"""Two-way record sync: field-level merges (property-based) and end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accord.records import apply_plan, load_mapping, make_plan
from accord.records.twoway import merge_fields, reconcile_two_way

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


@given(
    st.dictionaries(st.integers(0, 5), records, max_size=4),
    st.dictionaries(st.integers(0, 5), records, max_size=4),
    st.dictionaries(st.integers(0, 5), records, max_size=4),
)
def test_after_the_plan_both_sides_hold_the_agreed_records(base, left, right):
    """Applying the plan's actions to both sides makes them equal to the new
    archive (records in conflict aside), and nothing modified is deleted."""
    key = lambda n: (n,)  # noqa: E731
    base = {key(k): v for k, v in base.items()}
    left = {key(k): v for k, v in left.items()}
    right = {key(k): v for k, v in right.items()}
    decision = reconcile_two_way("e", ("L", "R"), base, left, right, "left")
    sides = {"L": dict(left), "R": dict(right)}
    for action in decision.actions:
        side = sides[action.target]
        if action.op == "create":
            side[action.key] = action.after
        elif action.op == "update":
            side[action.key] = {**side[action.key], **action.after}
        else:
            assert side[action.key] == base[action.key], "only unchanged records go"
            del side[action.key]
    assert sides["L"] == sides["R"]
    for k, record in sides["L"].items():
        assert decision.agreed.get(k, base.get(k)) == record


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
