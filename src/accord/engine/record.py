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

import operator
import threading
import time
from collections.abc import Callable
from typing import Any

from accord.engine import faults
from accord.engine.plan import ARCHIVE_ONLY, Action, Plan
from accord.errors import AccordError
from accord.model import Side
from accord.replica import Replica
from accord.state.store import ArchiveEntry, ArchiveStore

__all__ = ["Recorder", "intent", "intents"]

#: a side's text in the journal and the log (``Side.value`` is a property:
#: a lookup costs a tenth of it, once an action)
_SIDE_TEXT: dict[Side | None, str | None] = {side: side.value for side in Side}
_SIDE_TEXT[None] = None
#: an action's fields, read in C
_OP, _KEY, _SIDE, _NEW_KEY = (operator.itemgetter(n) for n in (0, 1, 2, 5))

_BATCH = 50_000  # actions waiting at most (their rows are held in memory)
_BATCH_SECONDS = 5.0  # at least this long between two flushes
_FLUSH_SHARE = 10  # and this many times as long as the last flush took
#: bytes copied since the last flush before the places are flushed ahead of
#: it (in a thread): the disk writes them back while the copy goes on
_AHEAD = 64 << 20


def intent(action: Action) -> str:
    """The journal line of an action: ``op side key [-> new_key]``."""
    side = _SIDE_TEXT[action.side] or "-"
    line = f"{action.op} {side} {action.key}"
    return f"{line} -> {action.new_key}" if action.new_key else line


def intents(actions: list[Action]) -> list[str]:
    """The journal lines (``intent``) of the ``actions`` that touch a
    place, in order. Actions all of one op and one side with no new name
    (a first copy's: every one a copy to the same side) get theirs made in
    C, the op and side once and each key after them."""
    if actions:
        first = actions[0]
        op, side = first.op, first.side
        ops = list(map(_OP, actions))
        sides = list(map(_SIDE, actions))
        news = list(map(_NEW_KEY, actions))
        if (
            op not in ARCHIVE_ONLY
            and ops.count(op) == len(ops)
            and sides.count(side) == len(sides)
            and news.count(None) == len(news)
        ):
            head = intent(first._replace(key=""))
            return list(map(head.__add__, map(_KEY, actions)))
    return [intent(a) for a in actions if a.op not in ARCHIVE_ONLY]


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
        self._copied = 0  # bytes copied since the last flush (or one ahead)
        self._ahead: _Flush | None = None  # a flush ahead of the batch's

    def record(
        self,
        seq: int | None,
        action: Action,
        puts: list[ArchiveEntry],
        forgets: list[str],
        detail: str,
    ) -> None:
        with self._lock:
            added = (seq, action, detail, puts, forgets)
            self._batch.append(added)
            self._copied += action.size
            self._due_locked([added])

    def record_many(
        self, done: list[tuple[int | None, Action, list[ArchiveEntry]]], size: int
    ) -> None:
        """``record`` of several completed actions (each put ``puts``,
        forgot nothing; ``size``: the bytes they copied): one turn of the
        lock."""
        added = [(seq, action, action.reason, puts, []) for seq, action, puts in done]
        with self._lock:
            self._batch += added
            self._copied += size
            self._due_locked(added)

    def commit(self) -> None:
        with self._lock:
            self._commit_locked()

    def _due_locked(
        self, added: list[tuple[int | None, Action, str, list[ArchiveEntry], list[str]]]
    ) -> None:
        """Commit the batch when it is due (``added``: its last items), or
        flush ahead of it."""
        if not self._at_end and (
            len(self._batch) >= _BATCH
            or time.monotonic() - self._batch_started > self._wait
        ):
            self._commit_locked()
        elif self._copied >= _AHEAD:
            self._flush_ahead_locked(added)

    def _flush_ahead_locked(self, added: list[Any]) -> None:
        """Flush the places the batch's last items (``added``) wrote to,
        those that flush in a thread, ahead of the batch's own flush, in a
        thread, once ``_AHEAD`` bytes were copied since the last: the disk
        writes them back while the copy goes on, and the flush that records
        the batch waits only for what is left. Nothing is recorded by it:
        its failure is kept, and fails that flush (the kernel tells a
        failed write-back once)."""
        ahead = self._ahead
        if ahead is not None and (ahead.running() or ahead.error is not None):
            return  # one at a time; a failure is kept for the batch's flush
        self._copied = 0
        sides = _touched(added)
        places = [r for s in sides if (r := self.replicas[s]).flush_in_thread]
        if places:
            self._ahead = _Flush(places)
            self._ahead.start()

    def _ahead_failed(self) -> AccordError | None:
        """Wait for the flush ahead, if any; its failure, if it failed."""
        ahead, self._ahead = self._ahead, None
        if ahead is None or ahead.wait():
            return None
        return ahead.error

    def _commit_locked(self) -> None:
        batch = self._batch
        if not batch:
            self._batch_started = time.monotonic()
            return
        self._copied = 0
        # the places that allow it are flushed in a thread while the archive
        # runs the batch's statements (``ArchiveStore.stage``), which then
        # cost the run next to nothing: the flush mostly waits for the disk
        # (run while the copiers copied, they took CPU from them); the
        # transaction commits only once the flush has succeeded, and a
        # process killed before that leaves nothing of it
        self._batch = []
        flush = _Flush([self.replicas[side] for side in _touched(batch)])
        flush.start()
        if flush.error is not None:  # a place flushed first failed (no thread)
            self._stop(flush.error)
            return
        # a statement that fails rolls all back: the batch is not recorded
        self.store.stage(**_statements(self.run, batch))

        def flushed() -> bool:
            done = flush.wait()
            failed = self._ahead_failed()
            flush.error = flush.error or failed
            return done and failed is None

        recorded = self.store.commit_staged(flushed)
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


def _statements(
    run: str,
    batch: list[tuple[int | None, Action, str, list[ArchiveEntry], list[str]]],
) -> dict[str, list[Any]]:
    """What recording ``batch`` puts, forgets, clears from the journal and
    logs (``ArchiveStore.stage``'s arguments)."""
    return {
        "put": [entry for _, _, _, p, _ in batch for entry in p],
        "forget": [key for _, _, _, _, f in batch for key in f],
        "done": [seq for seq, _, _, _, _ in batch if seq is not None],
        "log": [
            (
                run,
                _SIDE_TEXT[a.side],
                a.op,
                a.new_key or a.key if a.op == "move" else a.key,
                detail,
            )
            for _, a, detail, _, _ in batch
        ],
    }


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

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

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
