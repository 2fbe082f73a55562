"""Hooks: what a kind of data adds to a run, without the engine knowing it.

A file-system database (plantdb's FSDB) has a layout (what is data, what is
its own bookkeeping), its own locks, and rules about how new items may
appear. Its module implements :class:`RunHook`; a ``Session`` given one
calls it at fixed points and knows nothing else about the database:

- ``opened``: both places are open, nothing is locked or written yet; the
  hook may check the places, and put a view in front of them
  (``Session.wrap_places``);
- ``ignore``: extra ignore rules (gitignore syntax) for both sides;
- ``pending``: work of its own to finish even when the plan is empty (a
  run interrupted after its last copy), so the plan is applied anyway;
- ``before_apply``: the plan is final and nothing is written yet; raising
  here (a lock that stays busy) leaves both places as they were;
- ``after_apply``: the actions are done; what it did, as notices;
- ``close``: always called last, on success or failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accord.engine.apply import Report
    from accord.engine.plan import Plan
    from accord.engine.session import Session

__all__ = ["RunHook"]


class RunHook:
    """Does nothing; a kind of data overrides what it needs."""

    def opened(self, session: Session) -> None:
        return None

    def ignore(self) -> list[str]:
        return []

    def pending(self) -> bool:
        return False

    def before_apply(self, session: Session, plan: Plan) -> None:
        return None

    def after_apply(self, session: Session, report: Report) -> list[str]:
        return []

    def close(self, session: Session) -> None:
        return None
