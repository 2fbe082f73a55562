"""The watcher: runs each pair when its places say they changed.

:class:`Watcher` starts one watch per place (``Replica.watch``: a folder's
notifications, a hub's pushed events) or, for a place that cannot tell, a
:class:`~accord.watch.poll.Poller`; each tells the pair's
:class:`~accord.watch.schedule.Schedule`, and the calling thread runs the
pairs that are due, one at a time, each a whole ``Session`` (lock, scan,
plan, apply) with the engine's guards: nothing is ever forced, no question
is asked (a first sync goes ahead, as with ``--yes``; a tripped guard is a
failed run, retried later). A run that fails (an unreachable place, a
vanished mount, a busy lock) is tried again with backoff; the watch of its
places is started again after it, in case a folder was unmounted and
mounted. What happens is told to ``on_event`` as :class:`WatchEvent`
values, from the calling thread only; :meth:`Watcher.status` is a snapshot
for a status line. The library prints nothing.

A pair whose first run is refused as given (a ``ConfigError``: places
that overlap, a read-only place as a sync's side) ends :meth:`Watcher.run`
with that error, as does a place accord cannot open at all (an unknown
URL scheme, a missing extra) when the watcher is made.

Stopping: :meth:`Watcher.stop` (from a signal handler, another thread)
ends :meth:`Watcher.run` after the current run. To cut a run short, raise
``KeyboardInterrupt`` in the running thread: the engine rolls back the
action in flight (no half-written file), records the finished ones, and
releases its locks; :meth:`Watcher.run` stops its watches and re-raises.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from accord.engine.plan import Plan
from accord.engine.policy import Policy
from accord.engine.report import Event, Report
from accord.engine.session import Session
from accord.errors import AccordError, ConfigError, LockHeld, Unreachable
from accord.keys import IgnoreRules
from accord.registry import open_replica
from accord.replica import Touched, Watching
from accord.watch.poll import Poller
from accord.watch.schedule import Schedule

__all__ = ["Pair", "PairStatus", "Progress", "WatchEvent", "Watcher"]

#: wraps a run's event callback for as long as the run applies its plan
#: (the CLI's: tell each hub side the run's progress, for its dashboard)
Progress = Callable[
    [Session, Plan, Callable[[Event], None]],
    AbstractContextManager[Callable[[Event], None]],
]


@dataclass(frozen=True)
class Pair:
    """One pair to keep in agreement: two places and how to run them."""

    left: str
    right: str
    policy: Policy = field(default_factory=Policy)
    name: str | None = None
    exclude: tuple[str, ...] = ()
    state_dir: str | Path | None = None
    break_lock: bool = False

    @property
    def label(self) -> str:
        return self.name or f"{self.left} <-> {self.right}"

    @property
    def sides(self) -> tuple[str, str]:
        return self.left, self.right


class WatchEvent(NamedTuple):
    """Something the watcher did or saw (see ``docs/watch.md``).

    Kinds: ``watching`` (how a place is watched), ``change`` (changes are
    pending), ``run`` (a run starts), ``done`` (it ended: its summary),
    ``failed`` (it could not run or finish: the error, the retry pause),
    ``busy`` (another run held the lock: tried again soon), ``notice``
    (what a run had to say), ``stopped``.
    """

    kind: str
    pair: str | None = None
    data: dict[str, Any] = {}  # noqa: RUF012 - never mutated

    def to_json(self) -> dict[str, Any]:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        found: dict[str, Any] = {"event": self.kind, "at": stamp}
        if self.pair is not None:
            found["pair"] = self.pair
        return {**found, **self.data}


class PairStatus(NamedTuple):
    """A pair's state now, for a status line."""

    label: str
    pending: int
    running: bool
    runs: int
    #: the summary of the last run that changed something (else the first
    #: run's), with ``at``: when it ended (seconds since the epoch)
    last: dict[str, Any] | None
    error: str | None  # the last failure's message, while failing
    retry_in: float | None  # seconds to the next try, while failing
    done_now: int  # actions done by the current run so far
    busy: bool  # the last try found the pair locked by another run


class _Slot:
    """A pair with its schedule and its places' watches."""

    def __init__(self, pair: Pair, schedule: Schedule) -> None:
        self.pair = pair
        self.schedule = schedule
        self.sources: list[Watching] = []
        self.runs = 0
        self.last: dict[str, Any] | None = None
        self.error: str | None = None
        self.told = 0  # pending count last told in a ``change`` event
        self.failing = False  # the last run failed (not only a busy lock)
        self.missing = False  # a place could not be watched: it did not exist
        self.places: set[str] = set()  # the identities of its places
        self.done_now = 0


class Watcher:
    """Keeps ``pairs`` in agreement until stopped (see the module)."""

    def __init__(
        self,
        pairs: Sequence[Pair],
        *,
        quiet: float = 0.5,
        longest: float = 10.0,
        poll: float = 30.0,
        retry_first: float = 1.0,
        retry_cap: float = 300.0,
        on_event: Callable[[WatchEvent], None] | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.poll = poll
        self._progress = progress
        self._slots = [
            _Slot(pair, Schedule(quiet, longest, retry_first, retry_cap))
            for pair in pairs
        ]
        for slot in self._slots:  # a place accord cannot open is refused now
            slot.places = {open_replica(url).identity for url in slot.pair.sides}
        self._on_event = on_event or (lambda event: None)
        self._cond = threading.Condition()
        self._stopping = False
        self._running: _Slot | None = None

    # -- control ----------------------------------------------------------
    def stop(self) -> None:
        """End :meth:`run` after the current run (safe from a signal handler)."""
        self._stopping = True
        if self._cond.acquire(blocking=False):  # never wait in a signal handler
            try:
                self._cond.notify_all()
            finally:
                self._cond.release()

    @property
    def running(self) -> bool:
        return self._running is not None

    def status(self) -> list[PairStatus]:
        now = time.monotonic()
        with self._cond:
            return [self._status(slot, now) for slot in self._slots]

    def _status(self, slot: _Slot, now: float) -> PairStatus:
        schedule = slot.schedule
        waiting = schedule.failures or schedule.busy
        retry = schedule.retry_at - now if waiting else None
        return PairStatus(
            slot.pair.label,
            schedule.pending,
            schedule.running,
            slot.runs,
            slot.last,
            slot.error,
            max(retry, 0.0) if retry is not None else None,
            slot.done_now,
            bool(schedule.busy),
        )

    # -- the loop ----------------------------------------------------------
    def run(self) -> None:
        """Watch and run until :meth:`stop`; every pair runs once at first."""
        try:
            now = time.monotonic()
            for slot in self._slots:
                self._arm(slot)
                slot.schedule.touched(now - slot.schedule.quiet)
            while not self._stopping:
                slot = self._next()
                if slot is not None:
                    self._run(slot)
        finally:
            for slot in self._slots:
                self._disarm(slot)
        self._emit(WatchEvent("stopped"))

    def _next(self) -> _Slot | None:
        """The next pair due, or None after waiting a while."""
        with self._cond:
            now = time.monotonic()
            self._tell_changes()
            due = [slot for slot in self._slots if slot.schedule.due(now)]
            if due:  # the one waiting longest first: no pair starves another
                return min(due, key=lambda slot: slot.schedule.due_at() or now)
            times = [s.schedule.due_at() for s in self._slots]
            wake = min((t for t in times if t is not None), default=now + 1.0)
            if not self._stopping:
                self._cond.wait(min(max(wake - now, 0.0), 1.0))
        return None

    def _tell_changes(self) -> None:
        for slot in self._slots:
            pending = slot.schedule.pending
            if pending and not slot.told:
                self._emit(WatchEvent("change", slot.pair.label, {"pending": pending}))
            slot.told = pending

    def _touch(self, slot: _Slot) -> Callable[[Touched], None]:
        ignore = IgnoreRules(slot.pair.exclude)
        own = slot.pair.policy.db_lock  # made and removed by every run

        def touched(change: Touched) -> None:
            key = change.key
            if key is not None and (key == own or ignore.excludes(key, False)):
                return  # no run would look at it
            with self._cond:
                slot.schedule.touched(
                    time.monotonic(),
                    change.key,
                    change.writing,
                    change.count,
                    change.settled,
                )
                self._cond.notify_all()

        return touched

    # -- running a pair ----------------------------------------------------
    def _run(self, slot: _Slot) -> None:
        with self._cond:
            taken = slot.schedule.started(time.monotonic())
            slot.told = 0
            slot.done_now = 0
            slot.runs += 1
            self._running = slot
        self._emit(
            WatchEvent("run", slot.pair.label, {"n": slot.runs, "changes": taken})
        )
        report: Report | None = None
        error: AccordError | OSError | None = None
        try:
            report = self._session(slot)
        except (AccordError, OSError) as exc:
            if isinstance(exc, ConfigError) and slot.runs == 1:
                raise  # a pair that cannot run as given: places that overlap...
            error = exc
        finally:
            with self._cond:
                self._running = None
        self._ended(slot, report, error)

    def _ended(
        self, slot: _Slot, report: Report | None, error: AccordError | OSError | None
    ) -> None:
        trouble = _trouble(report, error)
        busy = isinstance(error, LockHeld)
        with self._cond:
            pause = slot.schedule.finished(
                time.monotonic(),
                ok=trouble is None,
                again=bool(report is not None and report.skipped),
                busy=busy,
            )
            recovered = slot.failing and trouble is None
            slot.failing = trouble is not None and not busy
            slot.error = trouble
        if report is not None or error is None:
            self._tell_done(slot, report)
        if trouble is not None:
            self._tell_trouble(slot, trouble, error, pause)
        made = trouble is None and slot.missing  # a first run made a place
        if slot.failing or recovered or made:
            self._disarm(slot)  # a folder unmounted and mounted needs a new watch
            self._arm(slot)
            self._touch(slot)(Touched(None))  # what changed while re-arming

    def _tell_done(self, slot: _Slot, report: Report | None) -> None:
        done: dict[str, Any] = {"changed": 0, "status": "ok"}
        if report is not None:
            done = {**report.summary(), "status": _status_of(report)}
        if done["changed"] or slot.last is None:  # what the status line shows
            slot.last = {**done, "at": time.time()}
        if done["changed"]:
            self._tell_neighbours(slot)
        self._emit(WatchEvent("done", slot.pair.label, done))

    def _tell_trouble(
        self, slot: _Slot, trouble: str, error: BaseException | None, pause: float
    ) -> None:
        busy = isinstance(error, LockHeld)
        data: dict[str, Any] = {"error": trouble, "retry_in": round(pause, 3)}
        if busy:
            data["tries"] = slot.schedule.busy
        else:
            data["failures"] = slot.schedule.failures
        if isinstance(error, AccordError) and error.hint:
            data["hint"] = error.hint
        self._emit(WatchEvent("busy" if busy else "failed", slot.pair.label, data))

    def _tell_neighbours(self, slot: _Slot) -> None:
        """A run changed places that other pairs share: they look too (a
        place does not tell a watcher of its own writes, e.g. a hub)."""
        for other in self._slots:
            if other is not slot and other.places & slot.places:
                self._touch(other)(Touched(None, settled=True))

    def _session(self, slot: _Slot) -> Report | None:
        pair = slot.pair
        with Session(
            pair.left,
            pair.right,
            policy=pair.policy,
            state_dir=pair.state_dir,
            exclude=pair.exclude,
            break_lock=pair.break_lock,
            command="watch",
        ) as session:
            plan = session.plan()
            for notice in session.notices:
                self._emit(WatchEvent("notice", pair.label, {"message": notice}))
            if plan.is_empty and not plan.problems:
                if any(plan.refresh.values()) or plan.agreed:
                    session.apply(plan)
                return None
            counter = self._counter(slot)
            if self._progress is None:
                report = session.apply(plan, on_event=counter)
            else:
                with self._progress(session, plan, counter) as on_event:
                    report = session.apply(plan, on_event=on_event)
        shown = set(session.notices)
        for notice in report.notices:
            if notice not in shown:
                self._emit(WatchEvent("notice", pair.label, {"message": notice}))
        return report

    def _counter(self, slot: _Slot) -> Callable[[Event], None]:
        def on_event(event: Event) -> None:
            if event.kind == "done":
                slot.done_now += 1

        return on_event

    # -- watches -----------------------------------------------------------
    def _arm(self, slot: _Slot) -> None:
        slot.missing = False
        for side, url in zip(("left", "right"), slot.pair.sides, strict=True):
            slot.sources.append(self._watch(slot, side, url))

    def _watch(self, slot: _Slot, side: str, url: str) -> Watching:
        touched = self._touch(slot)
        how = f"polled every {_duration(self.poll)}"
        try:
            watching = open_replica(url).watch(touched)
        except (AccordError, OSError) as exc:
            watching = None
            how += f" ({_message(exc)})"
            slot.missing = slot.missing or isinstance(exc, Unreachable)
        if watching is not None:
            how = "notified"
        else:
            ignore = IgnoreRules(slot.pair.exclude)
            watching = Poller(url, self.poll, touched, ignore)
        data = {"side": side, "place": url, "how": how}
        self._emit(WatchEvent("watching", slot.pair.label, data))
        return watching

    def _disarm(self, slot: _Slot) -> None:
        for source in slot.sources:
            source.stop()
        slot.sources = []

    def _emit(self, event: WatchEvent) -> None:
        self._on_event(event)


def _duration(seconds: float) -> str:
    """``1h``, ``2m``, ``30s``, ``0.5s``."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _message(exc: BaseException) -> str:
    if isinstance(exc, AccordError):
        return exc.message
    if isinstance(exc, OSError):
        name = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{name}"
    return str(exc)


def _trouble(report: Report | None, error: AccordError | OSError | None) -> str | None:
    """What went wrong in a run, or None."""
    if error is not None:
        return _message(error)
    if report is None:
        return None
    if report.aborted:
        return report.aborted
    if report.failed:
        first = report.failed[0]
        more = f" (and {len(report.failed) - 1} more)" if len(report.failed) > 1 else ""
        return f"{first.action.key}: {first.message}{more}"
    return None


def _status_of(report: Report) -> str:
    if report.aborted:
        return "aborted"
    return "ok" if report.ok else "partial"
