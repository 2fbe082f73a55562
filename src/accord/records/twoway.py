"""Two-way record sync: a field-level three-way merge against an archive.

The archive keeps the last record both places agreed on (per key). A field
changed on one side only takes that side's value; the same change on both
sides is no conflict; different changes to the same field are a conflict,
settled by the entity's ``conflict`` policy (``left``, ``right``) or left
for a person (``skip``, the default). A record deleted on one side and
modified on the other is kept (the modification wins); deleted on one
side and unchanged on the other, it is deleted there too. Pure functions
here; the archive itself is a small SQLite table in accord's state folder.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any, NamedTuple

from accord.records.plan import RecordAction
from accord.records.values import to_text

__all__ = ["Merge", "RecordArchive", "merge_fields", "reconcile_two_way"]

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


class Decision(NamedTuple):
    actions: list[RecordAction]
    agreed: Records  # the archive after the actions succeed
    forget: list[Key]
    conflicts: list[tuple[Key, list[str]]]


def reconcile_two_way(
    entity: str,
    labels: tuple[str, str],
    base: Records,
    left: Records,
    right: Records,
    policy: str = "skip",
) -> Decision:
    """Actions on both places, and the new archive. Pure."""
    actions: list[RecordAction] = []
    agreed: Records = {}
    forget: list[Key] = []
    conflicts: list[tuple[Key, list[str]]] = []
    left_label, right_label = labels

    def act(op: str, label: str, key: Key, before: Any, after: Any) -> None:
        actions.append(RecordAction(op, entity, label, key, before, after))

    for key in sorted(set(base) | set(left) | set(right), key=repr):
        b, lv, rv = base.get(key), left.get(key), right.get(key)
        if lv is None and rv is None:
            if b is not None:
                forget.append(key)
            continue
        if lv is None or rv is None:
            present, label = (rv, left_label) if lv is None else (lv, right_label)
            other_label = right_label if lv is None else left_label
            if b is not None and present == b:  # deleted there, unchanged here
                act("delete", other_label, key, present, None)
                forget.append(key)
            else:  # new, or modified here while deleted there: it is kept
                act("create", label, key, None, present)
                agreed[key] = present
            continue
        if lv == rv:
            if b != lv:
                agreed[key] = lv
            continue
        merged, clashes = merge_fields(b or {}, lv, rv, policy)
        if clashes and policy == "skip":
            conflicts.append((key, clashes))
            continue
        if clashes:
            conflicts.append((key, clashes))
        for label, now in ((left_label, lv), (right_label, rv)):
            changes = {n: v for n, v in merged.items() if now.get(n) != v}
            if changes:
                act("update", label, key, now, changes)
        agreed[key] = merged
    return Decision(actions, agreed, forget, conflicts)


class RecordArchive:
    """The agreed records of one two-way entity, in accord's state folder."""

    def __init__(self, state_dir: Path, *parts: str) -> None:
        name = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]
        folder = state_dir / "records"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{name}.db"
        self._db = sqlite3.connect(self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS agreed (key TEXT PRIMARY KEY, record TEXT)"
        )

    def load(self, types: dict[str, str], key_fields: tuple[str, ...]) -> Records:
        from accord.records.values import convert

        found: Records = {}
        for (record_text,) in self._db.execute("SELECT record FROM agreed"):
            raw = json.loads(record_text)
            record = {n: convert(v, types.get(n, "str")) for n, v in raw.items()}
            found[tuple(record.get(k) for k in key_fields)] = record
        return found

    def save(self, agreed: Records, forget: list[Key]) -> None:
        def text(record: dict[str, Any]) -> str:
            return json.dumps(
                {n: to_text(v) for n, v in record.items()}, sort_keys=True
            )

        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO agreed VALUES (?, ?)",
                [
                    (json.dumps(list(k), default=str), text(r))
                    for k, r in agreed.items()
                ],
            )
            self._db.executemany(
                "DELETE FROM agreed WHERE key = ?",
                [(json.dumps(list(k), default=str),) for k in forget],
            )

    def close(self) -> None:
        self._db.close()
