"""Plan: the actions a run will take, as data.

A plan can be printed, explained (every action carries its ``reason``),
saved as JSON and applied later. Every action that touches a place carries
``expect``: the entry it believes is there, so a stale plan is skipped
safely, never applied over something newer.

Actions (``op``):

=========== ================================================================
copy        put ``entry`` (a file, folder or link from the other side) at
            ``key`` on ``side``; replaces ``expect`` (into the trash)
delete      remove ``key`` from ``side`` (into the trash)
move        rename ``key`` to ``new_key`` on ``side``
set_meta    give ``key`` on ``side`` the mtime and mode of ``entry``
keep_both   conflict: on ``side`` move ``expect`` aside to ``new_key``, put
            ``entry`` at ``key``, and copy the set-aside version across
merge       both sides changed ``key``: put ``entry`` (their merge, its
            content inline in ``entry.target``) on ``side`` (it replaces
            ``expect``), and on the other side too unless ``other`` there
            already holds it; one archive row once both hold it
mark_equal  both sides already agree (``entry`` left, ``other`` right)
forget      both sides deleted ``key``: drop it from the archive
=========== ================================================================

Order (``Plan.ordered``): folders parents first, then moves, then copies,
then deletes children first, then folders replaced by files, then the
archive-only actions.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from accord.errors import InvalidInput, NotAPlan, PlanError
from accord.model import DIR, Entry, Problem, Side
from accord.replica import user_key
from accord.tuples import NamedTuple

__all__ = [
    "ARCHIVE_ONLY",
    "OP_WORDS",
    "Action",
    "Conflict",
    "Plan",
    "PlanSummary",
    "human_size",
    "plan_set_json",
    "plans_from_json",
]

ARCHIVE_ONLY = ("mark_equal", "forget")
PLAN_FORMAT = 1


class Action(NamedTuple):
    op: str
    key: str
    side: Side | None  # the side written to (None for archive-only actions)
    entry: Entry | None = None  # what to put there (the source's entry)
    expect: Entry | None = None  # what must be there now
    new_key: str | None = None
    other: Entry | None = None  # mark_equal: the right side's entry
    reason: str = ""

    @property
    def size(self) -> int:
        if self.op in ("copy", "keep_both") and self.entry is not None:
            extra = self.expect.size if self.op == "keep_both" and self.expect else 0
            return self.entry.size + extra
        return 0

    def phase(self) -> int:
        """Where the action goes in the run order (see module docstring)."""
        op, entry, expect = self.op, self.entry, self.expect
        if op in ("copy", "keep_both") and entry is not None and entry.kind == DIR:
            return 0
        if op == "move":
            return 1
        if op == "copy" and expect is not None and expect.kind == DIR:
            return 4
        if op in ("copy", "set_meta", "keep_both", "merge"):
            return 2
        if op == "delete":
            return 3
        return 5

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"op": self.op, "key": self.key}
        if self.side is not None:
            data["side"] = self.side.value
        for name in ("entry", "expect", "other"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value.to_json()
        if self.new_key is not None:
            data["new_key"] = self.new_key
        if self.reason:
            data["reason"] = self.reason
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Action:
        def entry(name: str) -> Entry | None:
            value = data.get(name)
            return Entry.from_json(value) if value is not None else None

        side = data.get("side")
        return cls(
            data["op"],
            data["key"],
            Side(side) if side else None,
            entry("entry"),
            entry("expect"),
            data.get("new_key"),
            entry("other"),
            data.get("reason", ""),
        )


class Conflict(NamedTuple):
    """Both sides changed ``key`` differently and no rule settled it."""

    key: str
    left: Entry | None
    right: Entry | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "left": self.left.to_json() if self.left else None,
            "right": self.right.to_json() if self.right else None,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Conflict:
        left, right = data.get("left"), data.get("right")
        return cls(
            data["key"],
            Entry.from_json(left) if left else None,
            Entry.from_json(right) if right else None,
            data.get("reason", ""),
        )


#: an operation as a person reads it in a plan's summary
OP_WORDS = {
    "copy": "copy",
    "delete": "delete",
    "move": "move",
    "set_meta": "touch",
    "keep_both": "keep both",
    "mark_equal": "equal",
    "forget": "forget",
}


def human_size(size: float) -> str:
    """``size`` bytes as a person reads them (decimal units: 1.5 MB)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # pragma: no cover


class PlanSummary(NamedTuple):
    """What a plan does, counted; ``str()`` of it is one line a person
    reads (``to right: 3 copy, 1 delete (2.0 MB); 1 conflict``), the
    line ``accord sync`` shows before it applies."""

    to_left: Counter[str]
    to_right: Counter[str]
    bytes_to_left: int
    bytes_to_right: int
    conflicts: int
    problems: int

    @property
    def total(self) -> int:
        return sum(self.to_left.values()) + sum(self.to_right.values())

    def parts(self) -> list[str]:
        """The summary's parts: each side's operations, then conflicts."""
        parts = []
        for label, counts, size in (
            ("to right", self.to_right, self.bytes_to_right),
            ("to left", self.to_left, self.bytes_to_left),
        ):
            if counts:
                ops = ", ".join(
                    f"{n} {OP_WORDS.get(op, op)}" for op, n in sorted(counts.items())
                )
                parts.append(f"{label}: {ops} ({human_size(size)})")
        if self.conflicts:
            count = self.conflicts
            parts.append(f"{count} conflict" + ("" if count == 1 else "s"))
        return parts

    def __str__(self) -> str:
        return "; ".join(self.parts()) or "nothing to do"


class Plan:
    """Ordered actions plus conflicts, problems and guard warnings."""

    def __init__(
        self,
        actions: Iterable[Action] = (),
        conflicts: Iterable[Conflict] = (),
        problems: Iterable[Problem] = (),
        *,
        left: str = "",
        right: str = "",
        mode: str = "sync",
        first_sync: bool = False,
        guards: Iterable[str] = (),
        refresh: dict[str, list[Entry]] | None = None,
        agreed: list[tuple[Entry, Entry]] | None = None,
    ) -> None:
        self.actions = sorted(actions, key=_order_key)
        self.conflicts = sorted(conflicts)
        self.problems = list(problems)
        self.left = left
        self.right = right
        self.mode = mode
        self.first_sync = first_sync
        self.guards = list(guards)
        self.refresh = refresh or {}
        #: a first sync: items both sides already hold alike, (left, right);
        #: recorded in the archive on apply, without an action each
        self.agreed = agreed or []
        #: names a side holds spelled otherwise than their keys (twins in
        #: another Unicode normalization, ``engine/twins.py``): key -> name
        self.spelled: dict[Side, dict[str, str]] = {}
        #: how each side is opened again to apply the plan ("left",
        #: "right" -> a URL with its options), where that is not the place's
        #: shown ``left``/``right`` (an SFTP URL's ``?identity=...``)
        self.opens: dict[str, str] = {}

    def open_url(self, side: str) -> str:
        """The URL that opens ``side`` ("left" or "right") to apply this."""
        return self.opens.get(side) or (self.left if side == "left" else self.right)

    @property
    def is_empty(self) -> bool:
        return not self.actions and not self.conflicts

    @property
    def unsynced(self) -> list[Problem]:
        """Problems that leave something out of the run: a folder that
        could not be listed, a file that could not be read, a refused name
        (every problem but a notice, such as a named pipe skipped)."""
        return [problem for problem in self.problems if not problem.notice]

    @property
    def changes(self) -> list[Action]:
        """The actions that touch a place (not only the archive)."""
        return [a for a in self.actions if a.op not in ARCHIVE_ONLY]

    def ordered(self) -> list[Action]:
        return list(self.actions)

    def summary(self) -> PlanSummary:
        to: dict[Side, Counter[str]] = {Side.LEFT: Counter(), Side.RIGHT: Counter()}
        size = {Side.LEFT: 0, Side.RIGHT: 0}
        for action in self.changes:
            assert action.side is not None
            to[action.side][action.op] += 1
            size[action.side] += action.size
        return PlanSummary(
            to[Side.LEFT],
            to[Side.RIGHT],
            size[Side.LEFT],
            size[Side.RIGHT],
            len(self.conflicts),
            len(self.problems),
        )

    def why(self, key: str) -> list[str]:
        """The reasons for everything planned about ``key``."""
        lines = [
            f"{a.op} {a.side or ''}: {a.reason}" for a in self.actions if a.key == key
        ]
        lines += [f"conflict: {c.reason}" for c in self.conflicts if c.key == key]
        return lines

    def deletes(self, side: Side) -> int:
        return sum(1 for a in self.actions if a.op == "delete" and a.side is side)

    def with_actions(
        self, actions: Iterable[Action], conflicts: Iterable[Conflict]
    ) -> Plan:
        """A copy with other actions and conflicts (after resolving)."""
        plan = Plan(
            actions,
            conflicts,
            self.problems,
            left=self.left,
            right=self.right,
            mode=self.mode,
            first_sync=self.first_sync,
            guards=self.guards,
            refresh=self.refresh,
            agreed=self.agreed,
        )
        plan.spelled = self.spelled
        plan.opens = self.opens
        return plan

    # -- JSON -------------------------------------------------------------
    def to_json(self) -> str:
        data = {
            "format": PLAN_FORMAT,
            "left": self.left,
            "right": self.right,
            "mode": self.mode,
            "first_sync": self.first_sync,
            "actions": [a.to_json() for a in self.actions],
            "conflicts": [c.to_json() for c in self.conflicts],
            "problems": [
                p._asdict() | {"side": p.side and p.side.value} for p in self.problems
            ],
            "guards": self.guards,
        }
        if self.agreed:
            data["agreed"] = [[a.to_json(), b.to_json()] for a, b in self.agreed]
        if self.spelled:
            data["spelled"] = {side.value: real for side, real in self.spelled.items()}
        if self.opens:
            data["open"] = self.opens
        return _json(data)

    @classmethod
    def from_json(cls, text: str, source: str = "this") -> Plan:
        """The plan saved in ``text``; NotAPlan names ``source`` otherwise."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or "actions" not in data:
                raise ValueError("a plan is a JSON object with its actions")
            if data.get("format") != PLAN_FORMAT:
                raise NotAPlan(
                    f"{source} is not a plan of this accord: unknown format "
                    f"{data.get('format')!r}",
                    hint="make the plan again with this accord",
                )
            plan = cls._from_data(data)
            for action in plan.actions:
                user_key(action.key, "key")
                if action.new_key is not None:
                    user_key(action.new_key, "key")
            for side, real in data.get("spelled", {}).items():
                for key, name in real.items():
                    user_key(key, "key")
                    user_key(name, "name")
                plan.spelled[Side(side)] = dict(real)
            opens = data.get("open", {})
            if not isinstance(opens, dict) or not all(
                side in ("left", "right") and isinstance(url, str) and url
                for side, url in opens.items()
            ):
                raise ValueError("its 'open' names a side or a URL wrongly")
            plan.opens = dict(opens)
            return plan
        except PlanError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, InvalidInput) as exc:
            why = exc.message if isinstance(exc, InvalidInput) else str(exc)
            if isinstance(exc, KeyError):
                why = f"it has no {exc}"
            raise NotAPlan(
                f"{source} is not an accord plan ({why})",
                hint="make one with 'accord plan A B -o plan.json'",
            ) from exc

    @classmethod
    def _from_data(cls, data: dict[str, Any]) -> Plan:
        return cls(
            [Action.from_json(a) for a in data["actions"]],
            [Conflict.from_json(c) for c in data.get("conflicts", [])],
            [
                Problem(
                    p["key"],
                    Side(p["side"]) if p.get("side") else None,
                    p["message"],
                    p.get("retryable", False),
                    p.get("refused", False),
                    p.get("notice", False),
                )
                for p in data.get("problems", [])
            ],
            left=data["left"],
            right=data["right"],
            mode=data.get("mode", "sync"),
            first_sync=data.get("first_sync", False),
            guards=data.get("guards", []),
            agreed=[
                (Entry.from_json(left), Entry.from_json(right))
                for left, right in data.get("agreed", [])
            ],
        )


def _order_key(action: Action) -> tuple[int, Any]:
    """Phase, then path order (parents before children; deletes: children
    first). "/" sorts before every other character here, as in a
    component-wise sort, with one string per action instead of a list."""
    phase = action.phase()
    if phase == 3:  # deletes: children before parents
        return (phase, -action.key.count("/"), action.key)
    return (phase, 0, action.key.replace("/", "\0"))


def plan_set_json(plans: list[Plan]) -> str:
    """Several plans (pairs of places) saved as one file, applied in order."""
    return _json(
        {"format": PLAN_FORMAT, "plans": [json.loads(p.to_json()) for p in plans]}
    )


def _json(data: Any) -> str:
    """``data`` as readable JSON; a name that is not UTF-8 (surrogate
    escapes) makes it ASCII, so that it is kept byte for byte as
    ``\\udcXX`` escapes and the file can be written as UTF-8."""
    text = json.dumps(data, indent=1, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(data, indent=1)
    return text


def plans_from_json(text: str, source: str = "this") -> list[Plan]:
    """The plans saved in ``text``: one plan, or a set of them."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and "plans" in data and "actions" not in data:
        if data.get("format") != PLAN_FORMAT or not isinstance(data["plans"], list):
            raise NotAPlan(
                f"{source} is not a set of plans of this accord",
                hint="make it again with this accord",
            )
        return [Plan.from_json(json.dumps(one), source) for one in data["plans"]]
    return [Plan.from_json(text, source)]
