"""The one-way records reconcile, rule by rule (pure)."""

from __future__ import annotations

from accord.records.mapping import Entity, PlaceSpec
from accord.records.reconcile import reconcile_one_way


def entity(rules: dict[str, str], **target: dict) -> tuple[Entity, PlaceSpec]:
    spec = PlaceSpec(
        "sqlite:///x",
        "t",
        {},
        rules,
        target.get("computed", {}),
        target.get("defaults", {}),
    )
    source = PlaceSpec("csv:///x.csv")
    return (
        Entity(
            "e",
            ("id",),
            ("id", "name", "groups", "mail"),
            {"groups": "list"},
            source,
            (spec,),
        ),
        spec,
    )


def plan(rules, source, current, **target):
    e, spec = entity(rules, **target)
    return [(a.op, a.key, a.after) for a in reconcile_one_way(e, spec, source, current)]


def test_force_keep_on_create_merge() -> None:
    source = {(1,): {"id": 1, "name": "new", "groups": ("a", "b"), "mail": "m2"}}
    current = {(1,): {"id": 1, "name": "old", "groups": ("c",), "mail": "m1"}}
    assert plan({}, source, current) == [
        ("update", (1,), {"name": "new", "groups": ("a", "b"), "mail": "m2"})
    ]
    assert plan(
        {"name": "keep", "mail": "on_create", "groups": "merge"}, source, current
    ) == [("update", (1,), {"groups": ("a", "b", "c")})]


def test_keep_fills_an_empty_value_and_creates_use_everything() -> None:
    source = {
        (1,): {"id": 1, "name": "n", "groups": (), "mail": "m"},
        (2,): {"id": 2, "name": "two", "groups": (), "mail": None},
    }
    current = {(1,): {"id": 1, "name": None, "groups": (), "mail": "m"}}
    got = plan(
        {"name": "keep"},
        source,
        current,
        defaults={"mail": "none@x"},
        computed={"nick": "{name}!"},
    )
    assert got[0] == (
        "create",
        (2,),
        {"id": 2, "name": "two", "groups": (), "mail": "none@x", "nick": "two!"},
    )
    assert got[1][0] == "update" and got[1][2]["name"] == "n"


def test_deletes_only_when_asked() -> None:
    e, spec = entity({})
    current = {(9,): {"id": 9, "name": "gone", "groups": (), "mail": None}}
    assert [a.op for a in reconcile_one_way(e, spec, {}, current)] == ["delete"]
    assert reconcile_one_way(e, spec, {}, current, delete=False) == []
