"""What a run did: progress events while it runs, an outcome per action,
and the report at its end (what the CLI and the API render)."""

from __future__ import annotations

from typing import Any

from accord.engine.plan import ARCHIVE_ONLY, Action, Conflict, Plan
from accord.model import Problem
from accord.tuples import NamedTuple

__all__ = ["Event", "Outcome", "Report"]


class Event(NamedTuple):
    """A progress event for whoever renders the run."""

    kind: str  # start | done | skipped | failed | bytes | notice
    action: Action | None = None
    message: str = ""
    size: int = 0


class Outcome(NamedTuple):
    action: Action
    status: str  # done | skipped | failed | not-run
    message: str = ""


class Report:
    """What a run did."""

    def __init__(self, run: str, plan: Plan) -> None:
        self.run = run
        self.plan = plan
        self.outcomes: list[Outcome] = []
        self.aborted: str | None = None
        self.notices: list[str] = []
        self.bytes = 0
        self.seconds = 0.0

    def _of(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def done(self) -> list[Outcome]:
        return self._of("done")

    @property
    def skipped(self) -> list[Outcome]:
        return self._of("skipped")

    @property
    def failed(self) -> list[Outcome]:
        return self._of("failed")

    @property
    def conflicts(self) -> list[Conflict]:
        return self.plan.conflicts

    @property
    def problems(self) -> list[Problem]:
        return self.plan.problems

    @property
    def refused(self) -> list[Problem]:
        """Items left out because their names were refused (not synced)."""
        return [problem for problem in self.plan.problems if problem.refused]

    @property
    def unsynced(self) -> list[Problem]:
        """Problems that left something out of the run: a folder that could
        not be listed, a file that could not be read, a refused name (every
        problem but a notice, such as a named pipe skipped)."""
        return [problem for problem in self.plan.problems if not problem.notice]

    @property
    def ok(self) -> bool:
        return not (
            self.failed
            or self.skipped
            or self.aborted
            or self.conflicts
            or self.unsynced
        )

    def summary(self) -> dict[str, Any]:
        changed = [o for o in self.done if o.action.op not in ARCHIVE_ONLY]
        return {
            "run": self.run,
            "changed": len(changed),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "conflicts": len(self.conflicts),
            "problems": len(self.problems),
            "refused": len(self.refused),
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "aborted": self.aborted,
        }
