"""Record what completed: the archive advances in batches, after a flush.

Completed actions are collected; the places they wrote are flushed (a local
folder: one ``syncfs``), then one archive transaction puts their rows,
clears their intent journal lines and writes their log lines. So the
archive never claims more than is durably on disk. That transaction is
begun while the batch grows: every ``_EARLY`` actions, their rows go into
it (``Recording.add``), so a batch's end runs only its last statements,
the flush and the commit; until then nothing of it is recorded.

A flush waits for everything the file system holds unwritten (``syncfs``
cannot tell our files from another program's), so it is done rarely: at
the end of the run, and during a long run once at least ``_BATCH_SECONDS``
have passed and ``_FLUSH_SHARE`` times as long as the last flush took (a
busy disk makes flushes slow, so they get rarer), or when ``_BATCH``
actions wait. A kill or a power cut between two flushes leaves the files
written since the last one unrecorded: the next run finds them equal on
both sides and records them then. A place written whole (``flush_at_end``)
is flushed and recorded once, at the end of the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from accord.engine import faults
from accord.engine.plan import Action, Plan
from accord.errors import AccordError
from accord.model import Side
from accord.replica import Replica
from accord.state.store import ArchiveEntry, ArchiveStore, Recording

__all__ = ["Recorder", "intent"]

#: a side's text in the journal and the log (``Side.value`` is a property:
#: a lookup costs a tenth of it, once an action)
_SIDE_TEXT: dict[Side | None, str | None] = {side: side.value for side in Side}
_SIDE_TEXT[None] = None

_BATCH = 50_000  # actions waiting at most (their rows are held in memory)
_BATCH_SECONDS = 5.0  # at least this long between two flushes
_FLUSH_SHARE = 10  # and this many times as long as the last flush took
_EARLY = 1_000  # actions put in the batch's open transaction at a time


def intent(action: Action) -> str:
    """The journal line of an action: ``op side key [-> new_key]``."""
    side = _SIDE_TEXT[action.side] or "-"
    line = f"{action.op} {side} {action.key}"
    return f"{line} -> {action.new_key}" if action.new_key else line


class Recorder:
    """Collects completed actions and records them in batches."""

    def __init__(
        self,
        replicas: dict[Side, Replica],
        store: ArchiveStore,
        *,
        run: str,
        stop: Callable[[AccordError], None],
    ) -> None:
        self.replicas = replicas
        self.store = store
        self.run = run
        self._stop = stop  # told when a flush fails: the run stops
        self._lock = threading.Lock()
        self._batch: list[
            tuple[int | None, Action, str, list[ArchiveEntry], list[str]]
        ] = []
        self._batch_started = time.monotonic()
        self._wait = _BATCH_SECONDS  # before the next flush
        # the batch's transaction, begun before its flush: the rows of the
        # first ``_added`` actions of the batch are in it already
        self._recording: Recording | None = None
        self._added = 0
        self._early = True  # until the database refuses rows added early
        # a place written whole is flushed and recorded once, at the end
        self._at_end = any(r.capabilities.flush_at_end for r in replicas.values())

    def record(
        self,
        seq: int | None,
        action: Action,
        puts: list[ArchiveEntry],
        forgets: list[str],
        detail: str,
    ) -> None:
        with self._lock:
            self._batch.append((seq, action, detail, puts, forgets))
            due = not self._at_end and (
                len(self._batch) >= _BATCH
                or time.monotonic() - self._batch_started > self._wait
            )
            if due:
                self._commit_locked()
            elif len(self._batch) - self._added >= _EARLY:
                self._add_early_locked()

    def record_many(
        self, done: list[tuple[int | None, Action, list[ArchiveEntry]]]
    ) -> None:
        """``record`` of several completed actions (each put ``puts``,
        forgot nothing): one turn of the lock."""
        with self._lock:
            self._batch.extend(
                (seq, action, action.reason, puts, []) for seq, action, puts in done
            )
            due = not self._at_end and (
                len(self._batch) >= _BATCH
                or time.monotonic() - self._batch_started > self._wait
            )
            if due:
                self._commit_locked()
            elif len(self._batch) - self._added >= _EARLY:
                self._add_early_locked()

    def commit(self) -> None:
        with self._lock:
            self._commit_locked()

    def _add_early_locked(self) -> None:
        """Put the rows of the batch's actions not added yet in the batch's
        transaction, begun now if need be, while the run goes on: its end
        then has only the last of them to add before the commit. Nothing is
        recorded before the batch's flush has succeeded and the transaction
        commits (``_commit_locked``)."""
        if not self._early:
            return
        if self._recording is None:
            self._recording = self.store.recording()
        added = self._batch[self._added :]
        if self._recording.add_early(*_rows(self.run, added)):
            self._added = len(self._batch)
        else:  # all of the batch is added again at its end (and told there)
            self._recording, self._added, self._early = None, 0, False

    def _commit_locked(self) -> None:
        batch, self._batch = self._batch, []
        recording, self._recording = self._recording, None
        added, self._added = self._added, 0
        if not batch:
            self._batch_started = time.monotonic()
            return
        # the places that allow it are flushed in a thread while the archive
        # runs the transaction's last statements (the flush mostly waits for
        # the disk); the transaction commits only once the flush has
        # succeeded, and a process killed before that leaves nothing of it
        flush = _Flush([self.replicas[side] for side in _touched(batch)])
        flush.start()
        if flush.error is not None:  # a place flushed first failed (no thread)
            if recording is not None:
                recording.abandon()
            self._stop(flush.error)
            return
        if recording is None:
            recording = self.store.recording()
        try:
            recording.add(*_rows(self.run, batch[added:]))
        except BaseException:
            recording.abandon()
            raise
        forgets = [key for _, _, _, _, f in batch for key in f]
        recorded = recording.finish(forgets, commit_if=flush.wait)
        if flush.error is not None:
            self._stop(flush.error)
        if not recorded:
            return
        self._batch_started = time.monotonic()
        self._wait = max(_BATCH_SECONDS, _FLUSH_SHARE * flush.seconds)
        faults.step("batch recorded")

    def record_agreed(self, plan: Plan) -> None:
        """Record the items a first sync found alike on both sides."""
        agreed = plan.agreed
        for start in range(0, len(agreed), 10_000):
            chunk = agreed[start : start + 10_000]
            self.store.record(put=[ArchiveEntry.agreed(a, b) for a, b in chunk])

    def refresh(self, plan: Plan, archive: dict[str, ArchiveEntry]) -> None:
        """Store new versions of items whose content did not change."""
        rows = []
        for side_name, entries in plan.refresh.items():
            at = 7 if side_name == Side.LEFT.value else 8
            for entry in entries:
                base = archive.get(entry.key)
                if base is not None:
                    row = list(base)
                    row[at] = entry.version
                    rows.append(ArchiveEntry._make(row))
        if rows:
            self.store.record(put=rows)


def _rows(
    run: str,
    batch: list[tuple[int | None, Action, str, list[ArchiveEntry], list[str]]],
) -> tuple[list[ArchiveEntry], list[int], list[tuple[str, str | None, str, str, str]]]:
    """What ``batch`` puts in the archive: its rows, its journal lines
    done and its log lines (``ArchiveStore.record``'s ``put``, ``done``
    and ``log``; what it forgets is taken at the batch's end)."""
    puts = [entry for _, _, _, p, _ in batch for entry in p]
    done = [seq for seq, _, _, _, _ in batch if seq is not None]
    log = [
        (
            run,
            _SIDE_TEXT[a.side],
            a.op,
            a.new_key or a.key if a.op == "move" else a.key,
            detail,
        )
        for _, a, detail, _, _ in batch
    ]
    return puts, done, log


def _touched(
    batch: list[tuple[int | None, Action, str, list[ArchiveEntry], list[str]]],
) -> list[Side]:
    """The places ``batch`` wrote to. A deletion is a write too: a place that
    stages its writes (records) makes it durable in flush; a merge writes
    to both sides."""
    touched: set[Side] = set()
    for _, a, _, puts, gone in batch:
        if a.side is not None and (puts or gone):
            touched.add(a.side)
            if a.op == "merge":
                touched.add(a.side.other)
    return sorted(touched, key=lambda side: side.value)


class _Flush:
    """Make what a batch wrote durable: ``start`` flushes the places that
    do not allow a thread first (as before the archive's transaction), then
    starts a thread for the others. ``wait`` says whether every place is
    flushed; if one failed, nothing of the batch may be recorded (its
    journal rows stay; the next run finds these items again) and ``error``
    says why (the run stops)."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas
        self.error: AccordError | None = None
        self.seconds = 0.0
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._failure: BaseException | None = None

    def start(self) -> None:
        self._started = time.monotonic()
        self._flush([r for r in self.replicas if not r.flush_in_thread])
        aside = [r for r in self.replicas if r.flush_in_thread]
        if aside and self.error is None and self._failure is None:
            self._thread = threading.Thread(
                target=self._flush, args=(aside,), name="accord-flush", daemon=True
            )
            self._thread.start()

    def _flush(self, replicas: list[Replica]) -> None:
        try:
            for replica in replicas:
                replica.flush()
        except AccordError as exc:
            self.error = self.error or exc
        except BaseException as exc:  # raised again in the caller's thread
            self._failure = exc

    def wait(self) -> bool:
        if self._thread is not None:
            self._thread.join()
        self.seconds = time.monotonic() - self._started
        if self._failure is not None:
            raise self._failure
        return self.error is None
