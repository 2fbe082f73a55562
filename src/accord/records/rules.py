"""A target's rules, pure: what its records should hold (``target_view``:
defaults and computed fields filled in) and which fields an update sets
(``changes_under``: force, keep, on_create, merge). The engine decides
what to create, update and delete; the target place applies these."""

from __future__ import annotations

import string
from typing import Any

from accord.records.canon import NULL, SEP, canonical, decode
from accord.records.mapping import Entity, PlaceSpec
from accord.records.rows import Rows

__all__ = ["changes_under", "target_view"]


def changes_under(
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
