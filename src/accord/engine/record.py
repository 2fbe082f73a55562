"""Record what completed: the archive advances in batches, after a flush.

Completed actions are collected; the places they wrote are flushed (a local
folder: one ``syncfs``), then one archive transaction puts their rows,
clears their intent journal lines and writes their log lines. So the
archive never claims more than is durably on disk.

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
from accord.state.store import ArchiveEntry, ArchiveStore

__all__ = ["Recorder", "intent"]

_BATCH = 50_000  # actions waiting at most (their rows are held in memory)
_BATCH_SECONDS = 5.0  # at least this long between two flushes
_FLUSH_SHARE = 10  # and this many times as long as the last flush took


def intent(action: Action) -> str:
    """The journal line of an action: ``op side key [-> new_key]``."""
    side = action.side.value if action.side else "-"
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

    def commit(self) -> None:
        with self._lock:
            self._commit_locked()

    def _commit_locked(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            self._batch_started = time.monotonic()
            return
        flushing = time.monotonic()
        if not self._flush(batch):
            return
        self._batch_started = time.monotonic()
        self._wait = max(
            _BATCH_SECONDS, _FLUSH_SHARE * (self._batch_started - flushing)
        )
        puts = [entry for _, _, _, p, _ in batch for entry in p]
        forgets = [key for _, _, _, _, f in batch for key in f]
        done = [seq for seq, _, _, _, _ in batch if seq is not None]
        log = [
            (
                self.run,
                a.side.value if a.side else None,
                a.op,
                a.new_key or a.key if a.op == "move" else a.key,
                detail,
            )
            for _, a, detail, _, _ in batch
        ]
        self.store.record(put=puts, forget=forgets, done=done, log=log)
        faults.step("batch recorded")

    def _flush(
        self, batch: list[tuple[int | None, Action, str, list[ArchiveEntry], list[str]]]
    ) -> bool:
        """Make what ``batch`` wrote durable; False (the run stops) if a place
        could not: nothing of the batch is recorded then (its journal rows
        stay; the next run finds these items again)."""
        # a deletion is a write too: a place that stages its writes (records)
        # makes it durable in flush; a merge writes to both sides
        touched: set[Side] = set()
        for _, a, _, puts, gone in batch:
            if a.side is not None and (puts or gone):
                touched.add(a.side)
                if a.op == "merge":
                    touched.add(a.side.other)
        for side in touched:
            try:
                self.replicas[side].flush()
            except AccordError as exc:
                self._stop(exc)
                return False
        return True

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
