"""Propagate: run a plan against both places, and record what completed.

For each action: perform it through the Replica contract (every call states
the entry it expects to replace), then record the result. Results are
recorded in batches: the places are flushed (one ``syncfs`` for many files),
then one archive transaction advances the archive, clears the intent journal
rows and writes the log lines. So the archive never claims more than is on
disk, and a crash at any instant loses at most the unrecorded actions, which
the next run detects again (the same content on both sides is then simply
marked equal).

An item that changed behind our back is *skipped* and reported; any other
failure of one item is reported and the run goes on; a full disk or a place
that became unreachable stops new work.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, NamedTuple

from accord.engine import faults
from accord.engine.child import can_fork, fork_quietly
from accord.engine.plan import ARCHIVE_ONLY, Action, Conflict, Plan
from accord.errors import (
    AccordError,
    NoSpace,
    NotEmpty,
    PreconditionFailed,
    ReplicaError,
    Unreachable,
    Unsupported,
)
from accord.keys import shown
from accord.model import DIR, FILE, LINK, Entry, Problem, Side
from accord.replica import Replica, WriteItem
from accord.state.store import ABSENT, ArchiveEntry, ArchiveStore

__all__ = ["Event", "Executor", "Outcome", "Report"]

_BATCH = 512
_BATCH_SECONDS = 1.0
# copies in one phase before child processes pay off
_FORK_MIN = int(os.environ.get("ACCORD_FORK_MIN", "512"))
_CHILDREN = 2
# small-file copies to a place with batch_writes go in batches of this much
_BATCH_FILE = 256 << 10  # a file at most this big joins a batch
_BATCH_FILES = 64
_BATCH_BYTES = 4 << 20


def _ignore(event: Event) -> None:
    return None


def _intent(action: Action) -> str:
    """The journal line of an action: ``op side key [-> new_key]``."""
    side = action.side.value if action.side else "-"
    line = f"{action.op} {side} {action.key}"
    return f"{line} -> {action.new_key}" if action.new_key else line


class _Attempt(NamedTuple):
    """What performing one action did (picklable: it may come from a child)."""

    status: str  # done | skipped | failed | fatal
    puts: list[ArchiveEntry]
    forgets: list[str]
    message: str = ""
    error: AccordError | None = None


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
    def ok(self) -> bool:
        return not (
            self.failed
            or self.skipped
            or self.aborted
            or self.conflicts
            or self.refused
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


class _Stable:
    """A source stream that, at its end, checks the source did not change."""

    def __init__(self, raw: IO[bytes], check: Callable[[], None]) -> None:
        self._raw = raw
        self._check = check
        self.size = 0
        #: what the source said of the item as it opened it, if anything
        #: (S3 lists only upload times; its GET carries the kept metadata)
        self.entry: Entry | None = getattr(raw, "entry", None)

    def like(self, planned: Entry) -> Entry:
        """``planned``, with the mtime and mode the source told on opening
        when they describe the same version."""
        told = self.entry
        if told is None or told.version != planned.version:
            return planned
        return planned._replace(
            mtime_ns=told.mtime_ns,
            mode=told.mode,
            digest=planned.digest or told.digest,
        )

    def read(self, n: int = -1) -> bytes:
        block = self._raw.read(n)
        if not block or (n < 0):
            self._check()
        self.size += len(block)
        return block


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
        self._lock = threading.Lock()
        self._batch: list[tuple[int | None, Action, list[ArchiveEntry], list[str]]] = []
        self._batch_started = time.monotonic()
        # a place written whole is flushed and recorded once, at the end
        self._at_end = any(r.capabilities.flush_at_end for r in (left, right))
        self._fatal: AccordError | None = None

    # -- the run ----------------------------------------------------------
    def apply(self, plan: Plan, archive: dict[str, ArchiveEntry]) -> Report:
        report = Report(self.run, plan)
        started = time.monotonic()
        self._refresh(plan, archive)
        self._record_agreed(plan)
        actions = plan.ordered()
        seqs = self.store.journal_add(
            self.run, (_intent(a) for a in actions if a.op not in ARCHIVE_ONLY)
        )
        faults.step("journal written")
        numbered = iter(seqs)
        work = [
            (next(numbered) if a.op not in ARCHIVE_ONLY else None, a) for a in actions
        ]
        try:
            for phase, group in _phases(work):
                if phase == 2 and self._can_fork(group):
                    self._forked(group, report)
                elif phase == 2 and self.workers > 1:
                    self._parallel(group, report)
                else:
                    for item in group:
                        report.outcomes.append(self._one(*item))
        finally:
            self._commit()
            report.aborted = self._fatal.message if self._fatal else None
            report.seconds = time.monotonic() - started
            report.bytes = sum(o.action.size for o in report.done)
        return report

    def _can_fork(self, group: list[tuple[int | None, Action]]) -> bool:
        """Copy in child processes: many actions, both places fork-safe."""
        return (
            len(group) >= _FORK_MIN
            and all(replica.fork_safe for replica in self.replicas.values())
            and (os.cpu_count() or 1) > 1
            and can_fork()
        )

    def _parallel(self, group: list[tuple[int | None, Action]], report: Report) -> None:
        """Perform ``group`` on worker threads, a few actions ahead of the
        results (not a future per action at once: that is memory)."""
        from collections import deque

        with _pool(self.workers) as pool:
            ahead: deque[Any] = deque()
            for task in self._tasks(group):
                ahead.append(pool.submit(*task))
                if len(ahead) >= self.workers * 4:
                    report.outcomes.extend(ahead.popleft().result())
            while ahead:
                report.outcomes.extend(ahead.popleft().result())

    def _tasks(
        self, group: list[tuple[int | None, Action]]
    ) -> Iterator[tuple[Any, ...]]:
        """The work of a phase: small-file copies to a place that takes
        batches go together (a round trip per batch), the rest one by one."""
        batches: dict[Side, list[tuple[int | None, Action]]] = {}
        sizes: dict[Side, int] = {}
        for item in group:
            side = item[1].side
            if side is None or not self._batchable(item[1]):
                yield (self._one_list, *item)
                continue
            batch = batches.setdefault(side, [])
            batch.append(item)
            sizes[side] = sizes.get(side, 0) + item[1].size
            if len(batch) >= _BATCH_FILES or sizes[side] >= _BATCH_BYTES:
                yield (self._copy_batch, side, batches.pop(side))
                sizes[side] = 0
        for side, batch in batches.items():
            yield (self._copy_batch, side, batch)

    def _batchable(self, action: Action) -> bool:
        entry, expect = action.entry, action.expect
        return (
            action.op == "copy"
            and action.side is not None
            and self.replicas[action.side].capabilities.batch_writes
            and entry is not None
            and entry.kind == FILE
            and entry.size <= _BATCH_FILE
            and (expect is None or expect.kind == FILE)
        )

    def _one_list(self, seq: int | None, action: Action) -> list[Outcome]:
        return [self._one(seq, action)]

    def _copy_batch(
        self, side: Side, batch: list[tuple[int | None, Action]]
    ) -> list[Outcome]:
        """Copy small files to ``side`` in one batch: read each source whole
        (checked stable), write them all, then settle each on its own."""
        if self._fatal is not None:
            return [Outcome(a, "not-run", "the run was stopped") for _, a in batch]
        outcomes: list[Outcome] = []
        ready: list[tuple[int | None, Action]] = []
        items: list[WriteItem] = []
        source = self.replicas[side.other]
        for seq, action in batch:
            assert action.entry is not None
            self.on_event(Event("start", action))
            try:
                with self._stable_read(source, action.key, action.entry) as stream:
                    data = stream.read()
                    like = stream.like(action.entry)
            except (AccordError, OSError) as exc:
                outcomes.append(self._settle(seq, action, _failure(action, exc)))
                continue
            ready.append((seq, action))
            items.append(WriteItem(action.key, data, like, action.expect, self.trash))
        if not items:
            return outcomes
        target = self.replicas[side]
        try:
            results: list[Entry | AccordError] = target.write_batch(items)
        except AccordError as exc:
            results = [exc] * len(items)
        if len(results) != len(items):
            lost = ReplicaError("the place answered a batch wrongly", where=target.url)
            results = [lost] * len(items)
        for (seq, action), result in zip(ready, results, strict=True):
            assert action.entry is not None
            try:
                if not isinstance(result, Entry):
                    raise result
                row = self._agreed(side, action.entry, result, action.key)
            except AccordError as exc:
                done = _failure(action, exc)
            else:
                self.on_event(Event("bytes", size=result.size))
                done = _Attempt("done", [row], [])
            outcomes.append(self._settle(seq, action, done))
        return outcomes

    def _one(self, seq: int | None, action: Action) -> Outcome:
        if self._fatal is not None:
            return Outcome(action, "not-run", "the run was stopped")
        self.on_event(Event("start", action))
        return self._settle(seq, action, self._attempt(action))

    def _attempt(self, action: Action) -> _Attempt:
        """Perform one action; what happened, as data (it may cross a pipe)."""
        try:
            puts, forgets = self._perform(action)
        except (AccordError, OSError) as exc:
            return _failure(action, exc)
        return _Attempt("done", puts, forgets)

    def _settle(self, seq: int | None, action: Action, done: _Attempt) -> Outcome:
        """Report and record one attempted action."""
        status, message, error = done.status, done.message, done.error
        if status == "done":
            faults.step(f"performed {action.op} {action.key}")
            self._record(seq, action, done.puts, done.forgets, action.reason)
            self.on_event(Event("done", action, size=action.size))
            return Outcome(action, "done")
        if status == "fatal":
            self._fatal = error
            self.on_event(Event("failed", action, message))
            return Outcome(action, "failed", message)
        self.on_event(Event(status, action, message))
        if error is not None:
            self._record(seq, action, [], [], f"{status}: {error.message}")
        return Outcome(action, status, message)

    # -- copying in child processes -------------------------------------------
    def _forked(self, group: list[tuple[int | None, Action]], report: Report) -> None:
        """Copy ``group`` in child processes, one per core; record here.

        For local places, where threads only contend for the GIL: each child
        performs its share of the actions and streams back what happened;
        this process emits the events, flushes and records, as it would for
        its own work. A child that dies leaves its remaining actions not run
        (the next run does them).
        """
        import select

        # contiguous shares: the plan is sorted by key, so each child mostly
        # writes into folders of its own (no contention on folder locks)
        size = -(-len(group) // _CHILDREN)
        chunks = [group[i : i + size] for i in range(0, len(group), size)]
        children: dict[int, tuple[int, list[tuple[int | None, Action]]]] = {}
        for chunk in chunks:
            read, write = os.pipe()
            pid = fork_quietly()
            if pid == 0:  # pragma: no cover - runs in the child
                os.close(read)
                for other in children:
                    os.close(other)
                self._serve(chunk, write)
            os.close(write)
            children[read] = (pid, chunk)
        settled = {fd: 0 for fd in children}
        buffers = {fd: b"" for fd in children}
        stopped = True  # until the loop ends normally: kill the children
        try:
            while buffers:
                ready, _, _ = select.select(list(buffers), [], [])
                for fd in ready:
                    data = os.read(fd, 1 << 16)
                    if not data:
                        del buffers[fd]
                        continue
                    buffers[fd] += data
                    for index, done in self._results(buffers, fd):
                        seq, action = children[fd][1][index]
                        report.outcomes.append(self._settle(seq, action, done))
                        settled[fd] += 1
                    if self._fatal is not None:
                        self._stop_children(children)
            stopped = self._fatal is not None
        finally:
            self._stop_children(children, wait_only=not stopped)
            for fd, (_, chunk) in children.items():
                os.close(fd)
                for _, action in chunk[settled[fd] :]:
                    report.outcomes.append(
                        Outcome(action, "not-run", "the run was stopped")
                    )
                if settled[fd] < len(chunk) and self._fatal is None:
                    self._fatal = AccordError(
                        "a copying process stopped before its work was done",
                        hint="run again: the next run completes the work",
                    )

    @staticmethod
    def _results(buffers: dict[int, bytes], fd: int) -> Iterator[tuple[int, _Attempt]]:
        """Complete length-prefixed batches received from one child."""
        import pickle

        data = buffers[fd]
        while len(data) >= 4:
            size = int.from_bytes(data[:4], "big")
            if len(data) < 4 + size:
                break
            yield from pickle.loads(data[4 : 4 + size])
            data = data[4 + size :]
        buffers[fd] = data

    def _serve(
        self, chunk: list[tuple[int | None, Action]], fd: int
    ) -> None:  # pragma: no cover - runs in the child
        """The child's loop: perform, send results in small batches, exit."""
        import pickle

        try:
            faults.disable()
            self.on_event = _ignore
            for replica in self.replicas.values():
                replica.forked()
            batch: list[tuple[int, _Attempt]] = []
            sent = time.monotonic()
            with os.fdopen(fd, "wb") as out:
                for index, (_, action) in enumerate(chunk):
                    done = self._attempt(action)
                    batch.append((index, done))
                    now = time.monotonic()
                    if done.status == "fatal" or len(batch) >= 64 or now - sent > 0.1:
                        payload = pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)
                        out.write(len(payload).to_bytes(4, "big") + payload)
                        out.flush()
                        batch, sent = [], now
                        if done.status == "fatal":
                            break
                if batch:
                    payload = pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)
                    out.write(len(payload).to_bytes(4, "big") + payload)
        finally:
            os._exit(0)

    @staticmethod
    def _stop_children(
        children: dict[int, tuple[int, list[tuple[int | None, Action]]]],
        *,
        wait_only: bool = False,
    ) -> None:
        for pid, _ in children.values():
            if not wait_only:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)

    # -- recording ----------------------------------------------------------
    def _record(
        self,
        seq: int | None,
        action: Action,
        puts: list[ArchiveEntry],
        forgets: list[str],
        detail: str,
    ) -> None:
        with self._lock:
            self._batch.append((seq, action._replace(reason=detail), puts, forgets))
            due = not self._at_end and (
                len(self._batch) >= _BATCH
                or time.monotonic() - self._batch_started > _BATCH_SECONDS
            )
            if due:
                self._commit_locked()

    def _commit(self) -> None:
        with self._lock:
            self._commit_locked()

    def _commit_locked(self) -> None:
        batch, self._batch = self._batch, []
        self._batch_started = time.monotonic()
        if not batch:
            return
        # a deletion is a write too: a place that stages its writes (records)
        # makes it durable in flush; a merge writes to both sides
        touched: set[Side] = set()
        for _, a, puts, gone in batch:
            if a.side is not None and (puts or gone):
                touched.add(a.side)
                if a.op == "merge":
                    touched.add(a.side.other)
        for side in touched:
            assert side is not None
            try:
                self.replicas[side].flush()
            except AccordError as exc:
                # not known to be durable: record nothing of this batch (its
                # journal rows stay; the next run finds these items again)
                self._fatal = self._fatal or exc
                return
        puts = [entry for _, _, p, _ in batch for entry in p]
        forgets = [key for _, _, _, f in batch for key in f]
        done = [seq for seq, _, _, _ in batch if seq is not None]
        log = [
            (
                self.run,
                a.side.value if a.side else None,
                a.op,
                a.new_key or a.key if a.op == "move" else a.key,
                a.reason,
            )
            for _, a, _, _ in batch
        ]
        self.store.record(put=puts, forget=forgets, done=done, log=log)
        faults.step("batch recorded")

    def _record_agreed(self, plan: Plan) -> None:
        """Record the items a first sync found alike on both sides."""
        agreed = plan.agreed
        for start in range(0, len(agreed), 10_000):
            chunk = agreed[start : start + 10_000]
            self.store.record(put=[ArchiveEntry.agreed(a, b) for a, b in chunk])

    def _refresh(self, plan: Plan, archive: dict[str, ArchiveEntry]) -> None:
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

    # -- actions ------------------------------------------------------------
    def _perform(self, action: Action) -> tuple[list[ArchiveEntry], list[str]]:
        op = action.op
        if op == "mark_equal":
            assert action.entry is not None and action.other is not None
            return [ArchiveEntry.agreed(action.entry, action.other)], []
        if op == "forget":
            return [], [action.key]
        assert action.side is not None
        target = self.replicas[action.side]
        if op == "delete":
            assert action.expect is not None
            try:
                target.delete(action.key, expect=action.expect, trash=self.trash)
            except NotEmpty:
                if action.expect.kind != DIR:
                    raise
                return [self._kept_folder(action.side, action.expect)], []
            return [], [action.key]
        assert action.entry is not None
        if op == "copy":
            new, like = self._put(action.side, action.key, action.entry, action.expect)
            return [self._agreed(action.side, like, new, action.key)], []
        if op == "set_meta":
            assert action.expect is not None
            new = target.set_meta(action.key, like=action.entry, expect=action.expect)
            return [self._agreed(action.side, action.entry, new, action.key)], []
        if op == "move":
            return self._move(action)
        if op == "keep_both":
            return self._keep_both(action)
        if op == "merge":
            return self._merge(action)
        raise AccordError(f"unknown action {op!r} in the plan")

    def _merge(self, action: Action) -> tuple[list[ArchiveEntry], list[str]]:
        """Write the merge to each side that does not hold it yet; one archive
        row once both do (a failure on the second side records nothing: the
        next run merges again, to the same result)."""
        merged, side = action.entry, action.side
        assert merged is not None and side is not None and action.expect
        assert action.other is not None
        data = (merged.target or "").encode()
        versions = {}
        for place, current in ((side, action.expect), (side.other, action.other)):
            if current.same_content(merged):
                versions[place] = current.version
                continue
            new = self.replicas[place].write(
                action.key,
                io.BytesIO(data),
                like=merged,
                expect=current,
                trash=self.trash,
            )
            versions[place] = new.version
        row = ArchiveEntry(
            action.key,
            merged.kind,
            merged.size,
            merged.mtime_ns,
            merged.mode,
            merged.digest,
            merged.target,
            versions[Side.LEFT],
            versions[Side.RIGHT],
        )
        return [row], []

    def _kept_folder(self, side: Side, folder: Entry) -> ArchiveEntry:
        """The archive row of a folder deleted on the other side but kept on
        ``side``, where it still holds items that are not synced (ignored
        ones): the other side holds nothing there, as agreed, so the next
        run does not try again. What is synced inside it later is copied
        across as usual (the folder is made again there)."""
        self.on_event(
            Event(
                "notice",
                None,
                f"{shown(folder.key)}: kept on the {side} side, where it still holds "
                "items that are not synced (ignored ones); its other contents "
                "were deleted",
            )
        )
        versions = (ABSENT, folder.version)
        if side is Side.LEFT:
            versions = versions[::-1]
        return ArchiveEntry(folder.key, DIR, 0, 0, folder.mode, None, None, *versions)

    def _agreed(
        self, target: Side, source: Entry, new: Entry, key: str
    ) -> ArchiveEntry:
        """The archive row once ``new`` on ``target`` matches ``source``; the
        place must have answered for ``key``, the name it was asked about
        (a row is never recorded under a name a place made up)."""
        if new.key != key:
            raise ReplicaError(
                f"the place answered for another name ({shown(new.key)})",
                where=self.replicas[target].url,
                key=key,
            )
        versions = (
            (source.version, new.version)
            if target is Side.RIGHT
            else (new.version, source.version)
        )
        return ArchiveEntry(
            new.key,
            source.kind,
            source.size,
            source.mtime_ns,
            source.mode,
            source.digest or new.digest,
            source.target,
            *versions,
        )

    def _put(
        self, side: Side, key: str, entry: Entry, expect: Entry | None
    ) -> tuple[Entry, Entry]:
        """Make ``key`` on ``side`` hold ``entry`` (read from the other side):
        the new entry there, and what was copied (``entry`` with the times
        and mode the source told as it opened the item)."""
        target = self.replicas[side]
        if expect is not None and expect.kind == DIR and entry.kind != DIR:
            target.delete(key, expect=expect, trash=self.trash)
            expect = None
        if entry.kind == DIR:
            if expect is not None and expect.kind != DIR:
                target.delete(key, expect=expect, trash=self.trash)
                expect = None
            return target.make_dir(key, like=entry, expect=expect), entry
        if entry.kind == LINK:
            new = target.make_link(key, like=entry, expect=expect, trash=self.trash)
            return new, entry
        source = self.replicas[side.other]
        with self._stable_read(source, key, entry) as stream:
            like = stream.like(entry)
            new = target.write(key, stream, like=like, expect=expect, trash=self.trash)
        self.on_event(Event("bytes", size=new.size))
        return new, like

    @contextlib.contextmanager
    def _stable_read(
        self, source: Replica, key: str, entry: Entry
    ) -> Iterator[_Stable]:
        def check() -> None:
            now = source.stat(key)
            if now is None or now.version != entry.version:
                raise PreconditionFailed(
                    "the source changed while it was copied; left for the next run",
                    where=source.url,
                    key=key,
                )

        with source.open_read(key) as raw:
            yield _Stable(raw, check)  # type: ignore[misc]

    def _move(self, action: Action) -> tuple[list[ArchiveEntry], list[str]]:
        assert (
            action.side is not None
            and action.new_key
            and action.expect
            and action.entry
        )
        target = self.replicas[action.side]
        try:
            moved = target.move(action.key, action.new_key, expect=action.expect)
        except Unsupported:
            moved, _ = self._put(action.side, action.new_key, action.entry, None)
            target.delete(action.key, expect=action.expect, trash=None)
        row = self._agreed(action.side, action.entry, moved, action.new_key)
        return [row], [action.key]

    def _keep_both(self, action: Action) -> tuple[list[ArchiveEntry], list[str]]:
        """Set the loser aside on its side, then bring both versions across."""
        side, key, aside = action.side, action.key, action.new_key
        assert side is not None and aside and action.entry and action.expect
        loser_place = self.replicas[side]
        try:
            kept = loser_place.move(key, aside, expect=action.expect)
        except Unsupported:
            with self._stable_read(loser_place, key, action.expect) as stream:
                kept = loser_place.write(aside, stream, like=action.expect, expect=None)
            loser_place.delete(key, expect=action.expect, trash=None)
        kept = kept._replace(digest=kept.digest or action.expect.digest)
        faults.step(f"set aside {aside}")
        new, like = self._put(side, key, action.entry, None)
        faults.step(f"put {key}")
        across, _ = self._put(side.other, aside, kept, None)
        return [
            self._agreed(side, like, new, key),
            self._agreed(side.other, kept, across, aside),
        ], []


def _failure(action: Action, exc: AccordError | OSError) -> _Attempt:
    """What an error means for one action: skipped (it changed behind our
    back), fatal (no space, place gone: stop the run) or failed."""
    if isinstance(exc, PreconditionFailed):
        return _Attempt("skipped", [], [], exc.message, exc)
    if isinstance(exc, (NoSpace, Unreachable)):
        return _Attempt("fatal", [], [], str(exc), exc)
    if isinstance(exc, AccordError):
        return _Attempt("failed", [], [], str(exc), exc)
    return _Attempt("failed", [], [], f"{shown(action.key)}: {exc.strerror or exc}")


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


def _pool(max_workers: int) -> Any:
    """A thread pool; concurrent.futures is imported only when one is needed."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=max_workers)
