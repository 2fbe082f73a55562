"""One-way reconcile of records: source of truth -> a target. Pure.

For each key: only in the source -> create (with computed fields, defaults
and on-create values); in both -> update the fields that differ, under each
field's rule; only in the target -> delete (a separate, guarded phase).
"""

from __future__ import annotations

import string
from typing import Any

from accord.records.canon import NULL, SEP, canonical, decode
from accord.records.mapping import Entity, PlaceSpec
from accord.records.plan import RecordAction
from accord.records.rows import Rows
from accord.records.values import convert, to_text

__all__ = ["computed", "reconcile_one_way", "reconcile_rows", "target_view"]


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


def target_view(entity: Entity, target: PlaceSpec, source: Rows) -> Rows:
    """The source's records as ``target`` should hold them: its defaults
    and computed fields filled in (the same records when it has none)."""
    fields = entity.target_fields(target)
    if not target.defaults and not target.computed:
        return source
    empty_text = entity.empty == "text"
    kinds = {n: entity.types.get(n, "str") for n in fields}
    defaults = {
        n: canonical(kinds[n], empty_text)(v) for n, v in target.defaults.items()
    }
    templates = [
        (n, list(string.Formatter().parse(t)), canonical(kinds[n], empty_text))
        for n, t in target.computed.items()
    ]
    position = {n: i for i, n in enumerate(fields)}
    extra = len(fields) - len(source.fields)
    out: dict[str, str] = {}
    for key, text in source.by_key.items():
        values = text.split(SEP) + [NULL] * extra
        for name, value in defaults.items():
            at = position[name]
            if values[at] in (NULL, ""):
                values[at] = value
        if templates:
            plain = {n: decode(values[position[n]])[0] for n in source.fields}
            for name, parts, to_text_of in templates:
                values[position[name]] = to_text_of(_format(name, parts, plain))
                plain[name] = decode(values[position[name]])[0]
        out[key] = SEP.join(values)
    return Rows(fields, entity.types, entity.key, out)


def _format(name: str, parts: list[Any], plain: dict[str, str | None]) -> str:
    """A computed field's template, filled with the record's values as text."""
    pieces = []
    for literal, field_name, _spec, _conversion in parts:
        pieces.append(literal)
        if field_name is None:
            continue
        if field_name not in plain:
            raise ValueError(f"computed field {name} uses unknown field {field_name!r}")
        pieces.append(plain[field_name] or "")
    return "".join(pieces)


def reconcile_rows(
    entity: Entity,
    target: PlaceSpec,
    wanted: Rows,
    current: Rows,
    *,
    delete: bool = True,
) -> list[RecordAction]:
    """``reconcile_one_way`` over canonical texts: records whose texts are
    equal are equal, and only the others become Python values."""
    actions: list[RecordAction] = []
    label, rules = target.label, target.rules
    now_by_key = current.by_key
    for key, text in wanted.by_key.items():
        now = now_by_key.get(key)
        if now == text:
            continue
        record = wanted.record(text)
        if now is None:
            actions.append(
                RecordAction(
                    "create", entity.name, label, wanted.key(key), None, record
                )
            )
            continue
        before = current.record(now)
        changes = _changes(record, before, rules)
        if changes:
            actions.append(
                RecordAction(
                    "update", entity.name, label, wanted.key(key), before, changes
                )
            )
    if delete:
        wanted_keys = wanted.by_key
        for key, now in now_by_key.items():
            if key not in wanted_keys:
                actions.append(
                    RecordAction(
                        "delete",
                        entity.name,
                        label,
                        current.key(key),
                        current.record(now),
                        None,
                    )
                )
    return sorted(actions, key=lambda a: ("cud".index(a.op[0]), repr(a.key)))
