"""Two-way records: the field-level three-way merge against the last
agreed record.

The archive keeps the last record both places agreed on (per key). A field
changed on one side only takes that side's value; the same change on both
sides is no conflict; different changes to the same field are a conflict,
settled by the entity's ``conflict`` policy (``left``, ``right``) or left
for a person (``skip``, the default). A record deleted on one side and
modified on the other is kept (the modification wins); deleted on one
side and unchanged on the other, it is deleted there too (the engine's
truth table). Pure: the engine syncs a two-way entity, and calls
``merge_fields`` through ``RecordReplica.merge`` for records both sides
changed.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["Merge", "merge_fields"]

Key = tuple[Any, ...]
Records = dict[Key, dict[str, Any]]


class Merge(NamedTuple):
    record: dict[str, Any]
    conflicts: list[str]  # fields changed differently on both sides


def merge_fields(
    base: dict[str, Any], left: dict[str, Any], right: dict[str, Any], policy: str
) -> Merge:
    """The three-way merge of one record. Pure."""
    merged: dict[str, Any] = {}
    conflicts: list[str] = []
    for name in sorted(set(base) | set(left) | set(right)):
        b, lv, rv = base.get(name), left.get(name), right.get(name)
        if lv == rv:
            merged[name] = lv
        elif lv == b:
            merged[name] = rv
        elif rv == b:
            merged[name] = lv
        else:
            conflicts.append(name)
            merged[name] = lv if policy != "right" else rv
    return Merge(merged, conflicts)
