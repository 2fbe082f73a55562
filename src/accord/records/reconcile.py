"""One-way reconcile of records: source of truth -> a target. Pure.

For each key: only in the source -> create (with computed fields, defaults
and on-create values); in both -> update the fields that differ, under each
field's rule; only in the target -> delete (a separate, guarded phase).
"""

from __future__ import annotations

import string
from typing import Any

from accord.records.mapping import Entity, PlaceSpec
from accord.records.plan import RecordAction
from accord.records.values import convert, to_text

__all__ = ["computed", "reconcile_one_way"]


def computed(
    entity: Entity, target: PlaceSpec, record: dict[str, Any]
) -> dict[str, Any]:
    """``record`` with the target's defaults and computed fields filled in."""
    if not target.defaults and not target.computed:
        return record
    out = dict(record)
    for name, value in target.defaults.items():
        if out.get(name) in (None, ()):
            out[name] = convert(value, entity.types.get(name, "str"))
    texts = {k: to_text(v) for k, v in out.items()}
    for name, template in target.computed.items():
        try:
            value = string.Formatter().vformat(template, (), texts)
        except KeyError as exc:
            raise ValueError(
                f"computed field {name} uses unknown field {exc}"
            ) from None
        out[name] = convert(value, entity.types.get(name, "str"))
    return out


def reconcile_one_way(
    entity: Entity,
    target: PlaceSpec,
    source: dict[tuple[Any, ...], dict[str, Any]],
    current: dict[tuple[Any, ...], dict[str, Any]],
    *,
    delete: bool = True,
) -> list[RecordAction]:
    actions: list[RecordAction] = []
    label = target.label
    rules = target.rules
    for key, record in source.items():
        wanted = computed(entity, target, record)
        now = current.get(key)
        if now is None:
            actions.append(
                RecordAction("create", entity.name, label, key, None, wanted)
            )
            continue
        changes = _changes(wanted, now, rules)
        if changes:
            actions.append(
                RecordAction("update", entity.name, label, key, now, changes)
            )
    if delete:
        for key, now in current.items():
            if key not in source:
                actions.append(
                    RecordAction("delete", entity.name, label, key, now, None)
                )
    return sorted(actions, key=lambda a: ("cud".index(a.op[0]), repr(a.key)))


def _changes(
    wanted: dict[str, Any], now: dict[str, Any], rules: dict[str, str]
) -> dict[str, Any]:
    """The fields to set on an existing record, under each field's rule."""
    changes = {}
    for name, value in wanted.items():
        rule = rules.get(name, "force")
        old = now.get(name)
        if rule == "merge":  # multi-valued: the target keeps its own values too
            value = tuple(sorted(set(old or ()) | set(value or ())))
        if old == value or rule == "on_create":
            continue
        if rule == "keep" and old not in (None, ()):
            continue
        changes[name] = value
    return changes
