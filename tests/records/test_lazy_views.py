"""A plan's record actions are made when first read (``mappings.Views``):
they are exactly the actions made at once, field by field, in the same
order, for any data; the summary counts them without making them."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.errors import AccordError
from accord.mappings import Views
from accord.model import Side
from accord.records import apply_plan, load_mapping, make_plan
from accord.records.plan import RecordAction
from accord.records.rules import changes_under

pytest.importorskip("pyarrow")

MAPPING = """
[entities.people]
key = ["id"]
fields = ["id", "name", "room", "born", "active"]
types = {{ {types} born = "date", active = "bool" }}
{mode}
[entities.people.source]
url = "csv://{source}"
[[entities.people.targets]]
url = "csv://{target}"
{rules}
"""

keys = st.one_of(
    st.integers(0, 30).map(str),
    st.sampled_from(["a/b", "x\\y", "é", "..", ".hidden", "50%"]),
)
texts = st.sampled_from(["", "R1", "R2", "x,y", "new\\line", "é"])
days = st.sampled_from(["", "2014-01-02", "2015-03-04"])
flags = st.sampled_from(["", "0", "1", "yes", "false"])
records = st.tuples(texts, texts, days, flags)
sides = st.dictionaries(keys, records, max_size=20)


def write_csv(path: Path, found: dict[str, tuple[str, ...]]) -> None:
    import csv

    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "name", "room", "born", "active"])
        for key, values in found.items():
            writer.writerow([key, *values])


def eager(pair: Any, plan: Any, left: Any, right: Any) -> list[tuple[Any, Any]]:
    """The record actions made at once, as ``make_plan`` made them before
    they were made when read: ((engine key, side), action) in order."""
    found = {}
    name = pair.entity.name
    for action in plan.actions:
        if action.side is None or action.op not in ("copy", "delete", "merge"):
            continue
        place = left if action.side is Side.LEFT else right
        key = place.key_of(action.key)
        before = place.record_of(action.expect.version if action.expect else None)
        if action.op == "delete":
            view = RecordAction("delete", name, place.label, key, before, None)
        elif before is None:
            after = place.record_of(action.entry.version if action.entry else None)
            view = RecordAction("create", name, place.label, key, None, after)
        else:
            wanted = place.record_of(action.entry.version) or {}
            changes = changes_under(wanted, before, place.rules)
            if not changes:
                continue
            view = RecordAction("update", name, place.label, key, before, changes)
        found[(action.key, action.side.value)] = view
        if action.op == "merge" and action.other is not None:
            other = right if place is left else left
            now = other.record_of(action.other.version) or {}
            wanted = (
                other.record_of(action.entry.version if action.entry else None) or {}
            )
            changes = {n: v for n, v in wanted.items() if now.get(n) != v}
            if changes:
                side = action.side.other.value
                found[(action.key, side)] = RecordAction(
                    "update", name, other.label, key, now, changes
                )
    return list(found.items())


def same_as_eager(path: Path, state: Path) -> None:
    try:
        prepared = make_plan(
            load_mapping(path), state_dir=state, max_delete_percent=100
        )
    except AccordError:
        return  # refused data is refused before any view is made
    counted = prepared.plan.summary()
    views = prepared.views[0]
    assert isinstance(views, Views)
    pair = prepared.pairs[0]
    left, right = pair.places()
    try:
        wanted = eager(pair, pair.plan, left, right)
    finally:
        left.close()
        right.close()
    assert list(views.items()) == wanted
    assert prepared.plan.actions == [view for _, view in wanted]
    assert prepared.plan.summary() == counted
    assert prepared.plan.is_empty == (not wanted and not prepared.plan.conflicts)
    apply_plan(prepared, override_guards=True)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    source=sides,
    target=sides,
    later=sides,
    two_way=st.booleans(),
    typed=st.booleans(),
    rules=st.sampled_from(["", 'rules = { room = "keep", name = "on_create" }']),
)
def test_views_made_when_read_are_those_made_at_once(
    source, target, later, two_way, typed, rules
) -> None:
    """A first plan, then (applied) the next day's: the actions shown are
    the same as when every one was made at once."""
    if typed:  # int keys only
        source, target, later = (
            {k: v for k, v in side.items() if k.isdigit()}
            for side in (source, target, later)
        )
    folder = Path(tempfile.mkdtemp())
    try:
        write_csv(folder / "source.csv", source)
        write_csv(folder / "target.csv", target)
        path = folder / "m.toml"
        path.write_text(
            MAPPING.format(
                types='id = "int",' if typed else "",
                mode='mode = "two-way"' if two_way else "",
                source=folder / "source.csv",
                target=folder / "target.csv",
                rules="" if two_way else rules,
            )
        )
        state = folder / "state"
        same_as_eager(path, state)
        write_csv(folder / "source.csv", {**source, **later})
        same_as_eager(path, state)
    finally:
        shutil.rmtree(folder)


def test_a_summary_makes_no_record_action(tmp_path, monkeypatch) -> None:
    """Counting a plan's changes makes none of them; reading them makes
    each once."""
    import accord.mappings as mappings

    write_csv(tmp_path / "source.csv", {str(i): ("N", "R2", "", "1") for i in range(9)})
    write_csv(tmp_path / "target.csv", {str(i): ("N", "R1", "", "1") for i in range(3)})
    path = tmp_path / "m.toml"
    path.write_text(
        MAPPING.format(
            types='id = "int",',
            mode="",
            source=tmp_path / "source.csv",
            target=tmp_path / "target.csv",
            rules="",
        )
    )
    made = []
    real = mappings._view
    monkeypatch.setattr(
        mappings, "_view", lambda *args: made.append(args[0]) or real(*args)
    )
    prepared = make_plan(load_mapping(path), state_dir=tmp_path / "state")
    assert prepared.plan.summary() == {
        f"people -> csv://{tmp_path / 'target.csv'}": {
            "create": 6,
            "update": 3,
            "delete": 0,
        }
    }
    assert made == []
    assert [a.op for a in prepared.plan.actions] == ["update"] * 3 + ["create"] * 6
    assert len(made) == 9
    assert [a.op for a in prepared.plan.actions] == ["update"] * 3 + ["create"] * 6
    assert len(made) == 9
    assert apply_plan(prepared).ok


def test_views_keep_a_dicts_order_and_last_value() -> None:
    views = Views()
    first = RecordAction("create", "e", "t", (1,), None, {"a": 1})
    second = RecordAction("update", "e", "t", (2,), {"a": 1}, {"a": 2})
    again = RecordAction("delete", "e", "t", (1,), {"a": 1}, None)
    views.put(("1", "right"), first)
    views.put(("2", "left"), second)
    views.put(("1", "right"), again)
    assert list(views) == [("1", "right"), ("2", "left")]
    assert list(views.ops()) == [("delete", "e", "t"), ("update", "e", "t")]
    assert views[("1", "right")] is again
    assert views.get(("3", "right")) is None
    assert list(views.on(Side.LEFT)) == [second] == list(views.on(Side.LEFT))
