"""The one-call forms: ``sync()`` and ``mirror()``.

    import accord
    report = accord.sync("~/notes", "/mnt/backup/notes")
    report = accord.mirror("~/photos", "sftp://nas/photos", delete=True)

Both plan, check the guards and apply; a guard that trips raises
``SafetyLimitExceeded`` and nothing is changed. Use ``Session`` to look at a
plan before applying it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from accord.engine.plan import Plan
from accord.engine.policy import Policy
from accord.engine.report import Event, Report
from accord.engine.session import Session
from accord.replica import Replica

__all__ = ["mirror", "sync"]


def _run(
    left: str | Replica,
    right: str | Replica,
    policy: Policy,
    *,
    dry_run: bool,
    state_dir: str | Path | None,
    exclude: Iterable[str],
    on_event: Callable[[Event], None] | None,
    command: str,
) -> Report | Plan:
    with Session(
        left,
        right,
        policy=policy,
        state_dir=state_dir,
        exclude=exclude,
        read_only=dry_run,
        command=command,
    ) as session:
        plan = session.plan()
        if dry_run:
            return plan
        return session.apply(plan, on_event=on_event)


def sync(
    left: str | Replica,
    right: str | Replica,
    *,
    dry_run: bool = False,
    state_dir: str | Path | None = None,
    exclude: Iterable[str] = (),
    on_event: Callable[[Event], None] | None = None,
    **policy: Any,
) -> Report | Plan:
    """Two-way sync of two places; the plan instead when ``dry_run``."""
    return _run(
        left,
        right,
        Policy(mode="sync", **policy),
        dry_run=dry_run,
        state_dir=state_dir,
        exclude=exclude,
        on_event=on_event,
        command="sync",
    )


def mirror(
    source: str | Replica,
    target: str | Replica,
    *,
    delete: bool = False,
    dry_run: bool = False,
    state_dir: str | Path | None = None,
    exclude: Iterable[str] = (),
    on_event: Callable[[Event], None] | None = None,
    **policy: Any,
) -> Report | Plan:
    """Make ``target`` like ``source`` (one way); ``delete`` removes extras."""
    options = Policy(mode="mirror", delete=delete, **policy)
    return _run(
        source,
        target,
        options,
        dry_run=dry_run,
        state_dir=state_dir,
        exclude=exclude,
        on_event=on_event,
        command="mirror",
    )
