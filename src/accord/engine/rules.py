"""Whose ignore rules apply: ``.accordignore``, accepted rather than obeyed. Pure.

A place's ``.accordignore`` (at its root) belongs to that place: whoever
writes the place writes its rules. Both places' rules apply to a pair,
alike on both sides (what either ignores is left alone on both). What a
run applies, though, is what the user *accepted*: the pair's archive keeps,
for each place, the text of its rules as last accepted. A file that differs
from that, whoever changed it (you, or a peer through a shared S3 prefix or
server folder), is a *rules change*: it is reported with the patterns it
adds and removes, and until it is accepted the run keeps the accepted rules
and holds the changed file back (not copied to the other side), so a rules
file written by someone else never silently hides or unhides your files.
It is accepted by ``--accept-rules``, ``accept_rules = true`` in a
profile, or a yes on a terminal; the first run of a pair accepts the rules
it finds (its plan is shown and asked for anyway).
"""

from __future__ import annotations

from accord.model import Side
from accord.tuples import NamedTuple

__all__ = ["IGNORE_FILE", "RuleChange", "changes", "describe", "in_effect"]

#: the rules file at the root of a place
IGNORE_FILE = ".accordignore"


class RuleChange(NamedTuple):
    """A place's ``.accordignore`` that differs from its accepted rules."""

    side: Side
    url: str
    accepted: str  # the text as last accepted ("" when there was no file)
    now: str  # the text now ("" when the file is gone)

    @property
    def added(self) -> list[str]:
        return [p for p in _patterns(self.now) if p not in _patterns(self.accepted)]

    @property
    def removed(self) -> list[str]:
        return [p for p in _patterns(self.accepted) if p not in _patterns(self.now)]


def _patterns(text: str) -> list[str]:
    """The rules of a file: its lines, blank lines and comments left out."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def changes(
    now: dict[Side, str], accepted: dict[Side, str | None], urls: dict[Side, str]
) -> list[RuleChange]:
    """The sides whose rules changed since they were accepted (a side with
    nothing accepted yet, the first run of a pair, has no change)."""
    found = []
    for side in (Side.LEFT, Side.RIGHT):
        before = accepted.get(side)
        if before is not None and _patterns(before) != _patterns(now.get(side, "")):
            found.append(RuleChange(side, urls[side], before, now.get(side, "")))
    return found


def in_effect(
    now: dict[Side, str],
    accepted: dict[Side, str | None],
    accepting: bool,
    *,
    mirror: bool = False,
) -> dict[Side, str]:
    """The text of each side's rules that this run applies: the accepted
    one, unless the change is being accepted (or nothing was accepted yet).

    An accepted change on one side only reaches the other side in this same
    run (the file is copied across like any change; in a mirror, only from
    the left), so its rules apply there at once too.
    """
    chosen = {}
    for side in (Side.LEFT, Side.RIGHT):
        before = accepted.get(side)
        chosen[side] = now.get(side, "") if accepting or before is None else before
    if accepting:
        moved = [
            c.side for c in changes(now, accepted, {Side.LEFT: "", Side.RIGHT: ""})
        ]
        if len(moved) == 1 and not (mirror and moved[0] is Side.RIGHT):
            chosen[moved[0].other] = chosen[moved[0]]
    return chosen


def describe(change: RuleChange, *, accepted: bool) -> str:
    """One line for the user about ``change``."""
    parts = [f"+ {p}" for p in change.added] + [f"- {p}" for p in change.removed]
    what = ", ".join(parts) or "only its order or comments changed"
    head = (
        f"the ignore rules of the {change.side} side ({change.url}, "
        f"{IGNORE_FILE}) changed since they were accepted: {what}"
    )
    if accepted:
        return f"{head}; accepted: they apply from this run on"
    return (
        f"{head}; they do not apply, and the file is not synced, until you "
        "accept them (run again with --accept-rules, or answer yes on a terminal)"
    )
