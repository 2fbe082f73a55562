"""Propagate: run a plan against both places, and record what completed.

For each action: perform it through the Replica contract (every call states
the entry it expects to replace; ``perform.py``), then record the result.
Results are recorded in batches (``record.py``): the places are flushed
(one ``syncfs`` for many files), then one archive transaction advances the
archive, clears the intent journal rows and writes the log lines. So the
archive never claims more than is on disk, and a crash at any instant loses
at most the unrecorded actions, which the next run detects again (the same
content on both sides is then simply marked equal).

A big copy phase between local places runs in child processes
(``forked.py``); places across a network get threads and batches
(``transfer.py``); the rest runs here, one action after the other.

An item that changed behind our back is *skipped* and reported; any other
failure of one item is reported and the run goes on; a full disk or a place
that became unreachable stops new work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from accord.engine import faults
from accord.engine.collector import collector_paused
from accord.engine.forked import can_fork_copy, copy_forked
from accord.engine.perform import Attempt, Performer
from accord.engine.plan import ARCHIVE_ONLY, Action, Plan
from accord.engine.record import Recorder, intents
from accord.engine.report import Event, Outcome, Report
from accord.engine.transfer import copy_threaded, folders_threaded
from accord.errors import AccordError
from accord.model import Side
from accord.replica import Replica
from accord.state.store import ArchiveEntry, ArchiveStore

__all__ = ["Event", "Executor", "Outcome", "Report"]


class Executor:
    """Applies a plan to a pair of places and records it in the archive."""

    def __init__(
        self,
        left: Replica,
        right: Replica,
        store: ArchiveStore,
        *,
        run: str,
        workers: int = 4,
        trash: bool = True,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.replicas = {Side.LEFT: left, Side.RIGHT: right}
        self.store = store
        self.run = run
        # one worker when neither side gains from parallel transfers
        parallel = left.capabilities.parallel_transfers or (
            right.capabilities.parallel_transfers
        )
        self.workers = workers if parallel else 1
        self.trash = run if trash else None
        self.on_event = on_event or (lambda event: None)
        self.performer = Performer(
            self.replicas, trash=self.trash, on_event=self.on_event
        )
        self.recorder = Recorder(self.replicas, store, run=run, stop=self.stop)
        self._fatal: AccordError | None = None

    @property
    def stopped(self) -> bool:
        """True once something stopped the run: no new work is started."""
        return self._fatal is not None

    def stop(self, error: AccordError) -> None:
        """Stop the run (the first reason is the one reported)."""
        self._fatal = self._fatal or error

    # -- the run ----------------------------------------------------------
    def apply(self, plan: Plan, archive: dict[str, ArchiveEntry]) -> Report:
        # a run makes several objects per item that live to its end
        # (outcomes, archive rows): the collector's full passes walked every
        # item of the plan again for next to nothing to free (about 0.1 s of
        # a 20,000-file first copy over SSH); the plan, archive and listings
        # are frozen out of its passes while it is off
        with collector_paused(freeze=True):
            return self._apply(plan, archive)

    def _apply(self, plan: Plan, archive: dict[str, ArchiveEntry]) -> Report:
        report = Report(self.run, plan)
        started = time.monotonic()
        self.recorder.refresh(plan, archive)
        self.recorder.record_agreed(plan)
        actions = plan.ordered()
        seqs = self.store.journal_add(self.run, intents(actions))
        faults.step("journal written")
        numbered = iter(seqs)
        work = [
            (next(numbered) if a.op not in ARCHIVE_ONLY else None, a) for a in actions
        ]
        try:
            phases = list(_phases(work))
            while phases:
                phase, group = phases.pop(0)
                if phase == 0 and _folders_for(group, phases, self):
                    # the new folders are made while the children copy into
                    # those made already (forked.py)
                    copy_forked(self, phases.pop(0)[1], report, folders=group)
                elif phase == 2 and can_fork_copy(self, group):
                    copy_forked(self, group, report)
                elif phase == 2 and self.workers > 1:
                    copy_threaded(self, group, report)
                elif phase == 0 and self.workers > 1:
                    folders_threaded(self, group, report)
                else:
                    for item in group:
                        report.outcomes.append(self.one(*item))
        finally:
            self.recorder.commit()
            report.aborted = self._fatal.message if self._fatal else None
            report.aborted_hint = self._fatal.hint if self._fatal else None
            report.seconds = time.monotonic() - started
            report.bytes = sum(o.action.size for o in report.done)
        return report

    def one(self, seq: int | None, action: Action) -> Outcome:
        """Perform and settle one action here."""
        if self._fatal is not None:
            return Outcome(action, "not-run", "the run was stopped")
        self.on_event(Event("start", action))
        return self.settle(seq, action, self.performer.attempt(action))

    def settle_many(
        self, attempts: list[tuple[int | None, Action, Attempt]]
    ) -> list[Outcome]:
        """``settle`` of several attempted actions; those done without
        forgetting anything (a copy) recorded together, one turn of the
        recorder's lock. The outcomes, in order."""
        outcomes: list[Outcome] = []
        done: list[tuple[int | None, Action, list[ArchiveEntry]]] = []
        armed = faults.armed()  # the steps' names made only for a crash test
        for seq, action, attempt in attempts:
            if attempt.status == "done" and not attempt.forgets:
                if armed:
                    faults.step(f"performed {action.op} {action.key}")
                done.append((seq, action, attempt.puts))
                outcomes.append(Outcome(action, "done"))
            else:
                outcomes.append(self.settle(seq, action, attempt))
        if done:
            sizes = [action.size for _, action, _ in done]
            self.recorder.record_many(done, sum(sizes))
            for (_, action, _), size in zip(done, sizes, strict=True):
                self.on_event(Event("done", action, size=size))
        return outcomes

    def settle(self, seq: int | None, action: Action, done: Attempt) -> Outcome:
        """Report and record one attempted action."""
        status, message, error = done.status, done.message, done.error
        if status == "done":
            faults.step(f"performed {action.op} {action.key}")
            self.recorder.record(seq, action, done.puts, done.forgets, action.reason)
            self.on_event(Event("done", action, size=action.size))
            return Outcome(action, "done")
        if status == "fatal":
            self._fatal = error
            self.on_event(Event("failed", action, message))
            return Outcome(action, "failed", message)
        self.on_event(Event(status, action, message))
        if error is not None:
            self.recorder.record(seq, action, [], [], f"{status}: {error.message}")
        return Outcome(action, status, message)


def _folders_for(
    group: list[tuple[int | None, Action]],
    after: list[tuple[int, list[tuple[int | None, Action]]]],
    ex: Executor,
) -> bool:
    """True when ``group`` only makes new folders and the copy phase right
    after it, only copies, runs in child processes: the folders are then
    made while the children copy (``copy_forked``)."""
    return (
        bool(after)
        and after[0][0] == 2
        and all(a.op == "copy" and a.expect is None for _, a in group)
        and all(a.op == "copy" for _, a in after[0][1])
        and can_fork_copy(ex, after[0][1])
    )


def _phases(
    work: list[tuple[int | None, Action]],
) -> Iterator[tuple[int, list[tuple[int | None, Action]]]]:
    """Consecutive runs of actions of one phase (the plan is already ordered)."""
    group: list[tuple[int | None, Action]] = []
    current = -1
    for item in work:
        phase = item[1].phase()
        if phase != current and group:
            yield current, group
            group = []
        current = phase
        group.append(item)
    if group:
        yield current, group
