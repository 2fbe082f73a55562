"""A run's progress, told to the hubs it syncs with.

When a side of ``accord sync`` or ``accord mirror`` is a hub collection,
the run posts its progress there (``POST /api/v1/progress``, at most once
a second, and once when it ends), so the hub's dashboard shows how far
each machine's sync has got. Only counts travel: no names, no paths.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from accord.engine.plan import ARCHIVE_ONLY, Plan
from accord.engine.report import Event
from accord.engine.session import Session

__all__ = ["EVERY", "told_to_hubs"]

EVERY = 1.0  # seconds between two progress posts


@contextmanager
def told_to_hubs(
    session: Session, plan: Plan, on_event: Callable[[Event], None]
) -> Iterator[Callable[[Event], None]]:
    """``on_event``, also posting the run's progress to each hub side."""
    hubs = [r for r in (session.left, session.right) if hasattr(r, "post_progress")]
    if not hubs:
        yield on_event
        return
    total = len([a for a in plan.actions if a.op not in ARCHIVE_ONLY])
    state: dict[str, Any] = {
        "run": session.run,
        "source": "cli",
        "label": f"{session.who} ({session.command})",
        "state": "running",
        "done": 0,
        "total": total,
        "bytes": 0,
    }
    last = [0.0]

    def post(force: bool = False) -> None:
        now = time.monotonic()
        if force or now - last[0] >= EVERY:
            last[0] = now
            for replica in hubs:
                replica.post_progress(dict(state))  # type: ignore[attr-defined]

    def both(event: Event) -> None:
        on_event(event)
        if event.kind == "bytes":
            state["bytes"] += event.size
        elif (
            event.kind in ("done", "skipped", "failed")
            and event.action
            and event.action.op not in ARCHIVE_ONLY
        ):
            state["done"] += 1
        post()

    post(force=True)
    try:
        yield both
    except BaseException:
        state["state"] = "failed"
        raise
    else:
        state["state"] = "done"
    finally:
        post(force=True)
