"""What a run did: progress events while it runs, an outcome per action,
and the report at its end (what the CLI and the API render)."""

from __future__ import annotations

import itertools
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
        self.aborted_hint: str | None = None  # what to do about it
        self.notices: list[str] = []
        self.bytes = 0
        self.seconds = 0.0
        # the outcomes by status, as far as ``_of`` has sorted them
        self._sorted_from: list[Outcome] | None = None
        self._sorted_up_to = 0
        self._by_status: dict[str, list[Outcome]] = {}

    def _of(self, status: str) -> list[Outcome]:
        """The outcomes of ``status``, in order (a new list each time).

        ``outcomes`` only grows while a run goes on: the outcomes seen so
        far are kept sorted by status and only those added since are
        looked at (``done``, ``skipped`` and ``failed`` are read about 16
        times at a run's end: each a pass over every outcome before).
        Outcomes are only ever appended; a list put in its place (or
        found shorter) is sorted again from its start."""
        outcomes = self.outcomes
        if outcomes is not self._sorted_from or len(outcomes) < self._sorted_up_to:
            self._sorted_from, self._sorted_up_to = outcomes, 0
            self._by_status = {}
        if self._sorted_up_to < len(outcomes):
            by_status = self._by_status
            for outcome in itertools.islice(outcomes, self._sorted_up_to, None):
                found = by_status.get(outcome.status)
                if found is None:
                    by_status[outcome.status] = [outcome]
                else:
                    found.append(outcome)
            self._sorted_up_to = len(outcomes)
        return list(self._by_status.get(status, ()))

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
        """The plan's problems that left something out of the run
        (``Plan.unsynced``)."""
        return self.plan.unsynced

    @property
    def ok(self) -> bool:
        return not (
            self.failed
            or self.skipped
            or self.aborted
            or self.conflicts
            or self.unsynced
        )

    @property
    def kept_both(self) -> list[Outcome]:
        """The conflicts this run resolved by keeping both versions (the
        other one under a ``.conflict-`` name on both sides)."""
        return [o for o in self.done if o.action.op == "keep_both"]

    def summary(self) -> dict[str, Any]:
        changed = [o for o in self.done if o.action.op not in ARCHIVE_ONLY]
        return {
            "run": self.run,
            "changed": len(changed),
            "kept_both": len(self.kept_both),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "conflicts": len(self.conflicts),
            "problems": len(self.problems),
            "refused": len(self.refused),
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "aborted": self.aborted,
            "aborted_hint": self.aborted_hint,
        }
