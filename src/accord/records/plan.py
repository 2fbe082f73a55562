"""Records as people read them: what an engine plan does to each record,
field by field. Pure data, for showing plans and calling handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol

from accord.records.values import to_text

__all__ = ["RecordAction", "RecordPlan"]


class RecordAction(NamedTuple):
    op: str  # create | update | delete
    entity: str
    target: str  # the target's label
    key: tuple[Any, ...]
    before: dict[str, Any] | None  # what the target holds now
    after: dict[str, Any] | None  # what it will hold (changed fields for update)

    def changes(self) -> list[tuple[str, Any, Any]]:
        """(field, old, new) for every field this action sets."""
        before, after = self.before or {}, self.after or {}
        names = after if self.op != "delete" else before
        return [(n, before.get(n), after.get(n)) for n in names]

    def describe(self) -> list[str]:
        key = "/".join(to_text(part) for part in self.key)
        if self.op == "create":
            fields = ", ".join(
                f"{n}={to_text(v)}" for n, v in (self.after or {}).items()
            )
            return [f"+ {key}: {fields}"]
        if self.op == "delete":
            return [f"- {key}"]
        lines = [f"~ {key}"]
        for name, old, new in self.changes():
            lines.append(f"    {name}: {to_text(old)!r} -> {to_text(new)!r}")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "entity": self.entity,
            "target": self.target,
            "key": [to_text(k) for k in self.key],
            "changes": [
                {"field": n, "old": to_text(o), "new": to_text(v)}
                for n, o, v in self.changes()
            ],
        }


class Later(Protocol):
    """Record actions made when first asked for (``actions``), whose
    (op, entity, target) are known before (``ops``): ``RecordPlan.add``."""

    def actions(self) -> Iterator[RecordAction]: ...

    def ops(self) -> Iterator[tuple[str, str, str]]: ...


class RecordPlan:
    """The records view of every pair's engine plan, with their guards."""

    def __init__(self) -> None:
        self.places: list[tuple[str, str]] = []  # (entity, target label)
        self._actions: list[RecordAction] = []
        # parts added with ``add``: their actions are made when first read
        self._pending: list[Later] = []
        self.guards: list[str] = []
        # two-way: records whose same field changed differently on both sides
        self.conflicts: list[tuple[str, tuple[Any, ...], list[str]]] = []

    @property
    def actions(self) -> list[RecordAction]:
        """Every record action, in plan order (parts added with ``add``
        are made into actions here, once)."""
        if self._pending:
            for part in self._pending:
                self._actions.extend(part.actions())
            self._pending.clear()
        return self._actions

    @actions.setter
    def actions(self, actions: list[RecordAction]) -> None:
        self._actions, self._pending = list(actions), []

    def add(self, part: Later) -> None:
        """Actions made only when read (``actions``, ``of``, ``to_json``);
        ``summary`` and ``is_empty`` count them without making them."""
        self._pending.append(part)

    def _ops(self) -> Iterator[tuple[str, str, str]]:
        """(op, entity, target) of every action, made or not."""
        for action in self._actions:
            yield action.op, action.entity, action.target
        for part in self._pending:
            yield from part.ops()

    def of(self, entity: str, target: str, op: str | None = None) -> list[RecordAction]:
        return [
            a
            for a in self.actions
            if a.entity == entity and a.target == target and (op is None or a.op == op)
        ]

    @property
    def is_empty(self) -> bool:
        return next(self._ops(), None) is None and not self.conflicts

    def summary(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for op, entity, target in self._ops():
            name = f"{entity} -> {target}"
            counts.setdefault(name, {"create": 0, "update": 0, "delete": 0})
            counts[name][op] += 1
        return counts

    def to_json(self) -> str:
        return json.dumps(
            {
                "summary": self.summary(),
                "guards": self.guards,
                "conflicts": [
                    {"entity": e, "key": [to_text(k) for k in key], "fields": f}
                    for e, key, f in self.conflicts
                ],
                "actions": [a.to_json() for a in self.actions],
            },
            indent=1,
        )
