"""Transfers on threads, small files in batches: for places across a network.

A place that declares ``parallel_transfers`` (SFTP, S3, the hub) waits on
the network, which releases the GIL, so a phase is performed by a few
worker threads, a few actions ahead of the results. Small-file copies to a
place that declares ``batch_writes`` go together, a round trip per batch:
each source is read whole (checked stable), all are written, then each is
settled on its own (a batch is a transport, not a transaction).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from accord.engine.perform import Attempt, failure
from accord.engine.plan import Action
from accord.engine.report import Event, Outcome, Report
from accord.errors import AccordError, NotFound, ReplicaError
from accord.model import FILE, Entry, Side
from accord.replica import WriteItem, source_gone

if TYPE_CHECKING:
    from accord.engine.apply import Executor

__all__ = ["copy_threaded", "folders_threaded"]

# small-file copies to a place with batch_writes go in batches of this much
_BATCH_FILE = 256 << 10  # a file at most this big joins a batch
_BATCH_FILES = 64
_BATCH_BYTES = 4 << 20
_HELD = 32 << 20  # bytes of batches read ahead, waiting for a worker, at most
_FOLDERS = 1000  # new folders a call, to a place that makes several at once


def copy_threaded(
    ex: Executor, group: list[tuple[int | None, Action]], report: Report
) -> None:
    """Perform ``group`` on worker threads, a few actions ahead of the
    results (not a future per action at once: that is memory), and no
    more than ``_HELD`` bytes of batches read ahead."""
    from collections import deque

    with _pool(ex.workers) as pool:
        ahead: deque[tuple[Any, int]] = deque()
        held = 0
        for task, size in _tasks(ex, group):
            ahead.append((pool.submit(*task), size))
            held += size
            while ahead and (len(ahead) >= ex.workers * 4 or held > _HELD):
                future, size = ahead.popleft()
                held -= size
                report.outcomes.extend(future.result())
        while ahead:
            report.outcomes.extend(ahead.popleft()[0].result())


def folders_threaded(
    ex: Executor, group: list[tuple[int | None, Action]], report: Report
) -> None:
    """New folders in one call a side where the place makes several at
    once (``Replica.make_dirs``), else on worker threads, a level of the
    tree at a time: each folder's parent exists, or was made before it, and
    the round trips of one level overlap (a first copy of 400 folders over
    SSH waited for 400 of them one after the other). Other folder work (a
    conflict's copy kept beside) goes one by one, in order. The outcomes
    come in the plan's order."""
    if not all(a.op == "copy" and a.expect is None for _, a in group):
        for item in group:
            report.outcomes.append(ex.one(*item))
        return
    outcomes: list[Outcome | None] = [None] * len(group)
    levels: dict[int, list[int]] = {}
    for index, (_, action) in enumerate(group):
        levels.setdefault(action.key.count("/"), []).append(index)
    ordered = [index for depth in sorted(levels) for index in levels[depth]]
    rest = set(_folders_batched(ex, group, ordered, outcomes))

    def one(index: int) -> None:
        outcomes[index] = ex.one(*group[index])

    if rest:
        with _pool(ex.workers * 4) as pool:  # a small call each: many in flight
            for depth in sorted(levels):
                level = [index for index in levels[depth] if index in rest]
                list(pool.map(one, level))  # the level done before the next
    report.outcomes.extend(o for o in outcomes if o is not None)


def _folders_batched(
    ex: Executor,
    group: list[tuple[int | None, Action]],
    ordered: list[int],
    outcomes: list[Outcome | None],
) -> list[int]:
    """Make the folders of ``group`` (``ordered``: indexes, parents first)
    in one call a side (``_FOLDERS`` at most) where the place makes several
    at once (``Replica.make_dirs``: one round trip, not one each), their
    outcomes put in ``outcomes``; the indexes left to make one by one."""
    rest: list[int] = []
    for side in (Side.LEFT, Side.RIGHT):
        mine = [index for index in ordered if group[index][1].side is side]
        for start in range(0, len(mine), _FOLDERS):
            chunk = mine[start : start + _FOLDERS]
            batch = [group[index] for index in chunk]
            if ex.stopped:
                for index, (_, action) in zip(chunk, batch, strict=True):
                    outcomes[index] = Outcome(action, "not-run", "the run was stopped")
                continue
            asked = [(action.key, action.entry) for _, action in batch]
            try:
                results = ex.replicas[side].make_dirs(asked)  # type: ignore[arg-type]
            except AccordError as exc:
                results = [exc] * len(batch)
            if results is None:  # the place makes them one by one
                rest += mine[start:]
                break
            for _, action in batch:
                ex.on_event(Event("start", action))
            settled = _settled(ex, side, batch, results, bytes_event=False)
            for index, outcome in zip(chunk, settled, strict=True):
                outcomes[index] = outcome
    return rest + [index for index in ordered if group[index][1].side is None]


def _settled(
    ex: Executor,
    side: Side,
    batch: list[tuple[int | None, Action]],
    results: list[Entry | AccordError],
    *,
    bytes_event: bool,
) -> list[Outcome]:
    """Settle each action of ``batch`` on its own, with what the place
    answered for it (its new entry on ``side``, or the error that stopped
    it); a wrong number of answers fails them all. The bytes written go
    out as one event for the batch (what a progress display adds up), not
    one a file."""
    if len(results) != len(batch):
        where = ex.replicas[side].url
        results = [ReplicaError("the place answered a batch wrongly", where=where)]
        results *= len(batch)
    attempts: list[tuple[int | None, Action, Attempt]] = []
    written = 0
    for (seq, action), result in zip(batch, results, strict=True):
        assert action.entry is not None
        try:
            if not isinstance(result, Entry):
                raise result
            row = ex.performer.agreed(side, action.entry, result, action.key)
        except AccordError as exc:
            done = failure(action, exc)
        else:
            written += result.size
            done = Attempt("done", [row], [])
        attempts.append((seq, action, done))
    if bytes_event and written:
        ex.on_event(Event("bytes", size=written))
    return ex.settle_many(attempts)


def _tasks(
    ex: Executor, group: list[tuple[int | None, Action]]
) -> Iterator[tuple[tuple[Any, ...], int]]:
    """The work of a phase, each task with the bytes it holds read ahead:
    small-file copies to a place that takes batches go together (a round
    trip per batch), the rest one by one."""
    # what is looked up once a side, not once an action (an enum's hash is
    # a Python call): whether it takes batches, its batch and its bytes
    takes = {side: ex.replicas[side].capabilities.batch_writes for side in Side}
    batches: dict[Side, list[tuple[int | None, Action]]] = {}
    sizes: dict[Side, int] = {}
    for item in group:
        action = item[1]
        side = action.side
        if side is None or not takes[side] or not _batchable(action):
            yield (_one_list, ex, *item), 0
            continue
        batch = batches.setdefault(side, [])
        batch.append(item)
        size = sizes[side] = sizes.get(side, 0) + action.entry.size  # type: ignore[union-attr]
        if len(batch) >= _BATCH_FILES or size >= _BATCH_BYTES:
            yield _batch_task(ex, side, batches.pop(side))
            sizes[side] = 0
    for side, batch in batches.items():
        yield _batch_task(ex, side, batch)


def _batch_task(
    ex: Executor, side: Side, batch: list[tuple[int | None, Action]]
) -> tuple[tuple[Any, ...], int]:
    """The task copying ``batch`` to ``side``, and the bytes of its sources
    it holds, read ahead. Local sources are read here,
    in the one thread that makes the tasks, and the workers only write: a
    read of a local file waits on no network, and four threads each making
    its four system calls a file hand the GIL back and forth at each one
    (reading 20,000 small files took 3.4 times the CPU of one thread, and
    a third of the client's CPU in a first copy over SSH). A source across
    a network is read by the worker, several at once."""
    source = ex.replicas[side.other]
    if source.capabilities.parallel_transfers or ex.stopped:
        return (_copy_batch, ex, side, batch), 0
    reads = list(_read_sources(ex, side, batch))
    held = sum(len(read[0]) for read in reads if isinstance(read, tuple))
    return (_copy_batch, ex, side, batch, reads), held


def _batchable(action: Action) -> bool:
    """A copy of a small file over a file or nothing (its side takes
    batches: the caller checks)."""
    entry, expect = action.entry, action.expect
    return (
        action.op == "copy"
        and entry is not None
        and entry.kind == FILE
        and entry.size <= _BATCH_FILE
        and (expect is None or expect.kind == FILE)
    )


def _one_list(ex: Executor, seq: int | None, action: Action) -> list[Outcome]:
    return [ex.one(seq, action)]


def _copy_batch(
    ex: Executor,
    side: Side,
    batch: list[tuple[int | None, Action]],
    reads: list[tuple[bytes, Entry] | AccordError | OSError] | None = None,
) -> list[Outcome]:
    """Copy small files to ``side`` in one batch: read each source whole
    (checked stable; ``reads``, when they were read already), write them
    all, then settle each on its own."""
    if ex.stopped:
        return [Outcome(a, "not-run", "the run was stopped") for _, a in batch]
    outcomes: list[Outcome] = []
    ready: list[tuple[int | None, Action]] = []
    items: list[WriteItem] = []
    if reads is None:
        reads = list(_read_sources(ex, side, batch))
    for (seq, action), read in zip(batch, reads, strict=True):
        assert action.entry is not None
        if isinstance(read, (AccordError, OSError)):
            outcomes.append(ex.settle(seq, action, failure(action, read)))
            continue
        data, like = read
        ready.append((seq, action))
        items.append(WriteItem(action.key, data, like, action.expect, ex.trash))
    if not items:
        return outcomes
    try:
        results: list[Entry | AccordError] = ex.replicas[side].write_batch(items)
    except AccordError as exc:
        results = [exc] * len(items)
    return outcomes + _settled(ex, side, ready, results, bytes_event=True)


def _read_sources(
    ex: Executor, side: Side, batch: list[tuple[int | None, Action]]
) -> Iterator[tuple[bytes, Entry] | AccordError | OSError]:
    """Each source of ``batch`` read whole, checked unchanged since it was
    listed, and what to copy it as; or why it was not read. The source
    place reads them all at once where it can (``read_small``), else each
    goes through a ``Stable`` stream."""
    source = ex.replicas[side.other]
    entries = [action.entry for _, action in batch]
    for _, action in batch:
        ex.on_event(Event("start", action))
    found = source.read_small(entries)  # type: ignore[arg-type]
    if found is not None:
        for entry, data in zip(entries, found, strict=True):
            if isinstance(data, NotFound):
                yield source_gone(source.url, entry.key)  # type: ignore[union-attr]
            elif isinstance(data, AccordError):
                yield data
            else:
                yield data, entry  # type: ignore[misc]
        return
    for entry in entries:
        assert entry is not None
        read: tuple[bytes, Entry] | AccordError | OSError
        try:
            with ex.performer.stable_read(source, entry.key, entry) as stream:
                read = (stream.read(), stream.like(entry))
        except (AccordError, OSError) as exc:
            read = exc
        yield read


def _pool(max_workers: int) -> Any:
    """A thread pool; concurrent.futures is imported only when one is needed."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=max_workers)
