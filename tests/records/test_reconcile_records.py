"""The one-way field rules, rule by rule (pure), and what the engine plans
from them."""

from __future__ import annotations

from pathlib import Path

from accord.records import apply_plan, load_mapping, make_plan
from accord.records.canon import SEP
from accord.records.mapping import Entity, PlaceSpec
from accord.records.rows import Rows
from accord.records.rules import changes_under, target_view


def test_force_keep_on_create_merge() -> None:
    wanted = {"id": 1, "name": "new", "groups": ("a", "b"), "mail": "m2"}
    now = {"id": 1, "name": "old", "groups": ("c",), "mail": "m1"}
    assert changes_under(wanted, now, {}) == {
        "name": "new",
        "groups": ("a", "b"),
        "mail": "m2",
    }
    rules = {"name": "keep", "mail": "on_create", "groups": "merge"}
    assert changes_under(wanted, now, rules) == {"groups": ("a", "b", "c")}


def test_keep_fills_an_empty_value_and_creates_use_everything() -> None:
    assert changes_under(
        {"id": 1, "name": "n"}, {"id": 1, "name": None}, {"name": "keep"}
    ) == {"name": "n"}
    spec = PlaceSpec(
        "sqlite:///x",
        "t",
        {},
        {},
        {"nick": "{name}!"},
        {"mail": "none@x"},
    )
    entity = Entity(
        "e",
        ("id",),
        ("id", "name", "groups", "mail"),
        {"id": "int", "groups": "list"},
        PlaceSpec("csv:///x.csv"),
        (spec,),
    )
    source = Rows(
        entity.fields,
        entity.types,
        entity.key,
        {"2": SEP.join(["2", "two", "", "\\N"])},
    )
    view = target_view(entity, spec, source)
    assert view.fields == ("id", "name", "groups", "mail", "nick")
    assert view.record(view.by_key["2"]) == {
        "id": 2,
        "name": "two",
        "groups": (),
        "mail": "none@x",
        "nick": "two!",
    }


def test_deletes_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("id,name\n1,one\n")
    (tmp_path / "out.csv").write_text("id,name\n1,one\n9,gone\n")
    (tmp_path / "m.toml").write_text("""
[entities.e]
key = ["id"]
fields = ["id", "name"]
[entities.e.source]
url = "csv://in.csv"
[[entities.e.targets]]
url = "csv://out.csv"
""")
    mapping = load_mapping(tmp_path / "m.toml")
    kept = make_plan(mapping, delete=False)
    assert kept.plan.actions == []
    assert apply_plan(kept).ok
    assert "9,gone" in (tmp_path / "out.csv").read_text()
    planned = make_plan(mapping)
    assert [(a.op, a.key) for a in planned.plan.actions] == [("delete", ("9",))]
    assert apply_plan(planned).ok
    assert "9,gone" not in (tmp_path / "out.csv").read_text()
