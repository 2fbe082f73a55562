"""Copy in child processes: a big copy phase between local places.

With 2 cores, threads copying small local files only contend for the GIL;
two forked children, each performing a contiguous share of the phase,
use both cores. Each child takes blocks of consecutive actions, one after
the other, from a pipe both read (so a child slowed by other work on the
machine takes fewer), and streams back what it did (pickled ``Attempt``
values, in batches, through a pipe); this process emits the events,
flushes and records, as it does for its own work. A child that dies leaves
the rest of its block not run (the next run does it).
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from accord.engine import faults
from accord.engine.child import can_fork, fork_quietly
from accord.engine.perform import Attempt
from accord.engine.plan import Action
from accord.engine.report import Event, Outcome, Report
from accord.errors import AccordError
from accord.state.store import ArchiveEntry

if TYPE_CHECKING:
    from accord.engine.apply import Executor

__all__ = ["can_fork_copy", "copy_forked"]

# copies in one phase before child processes pay off
_FORK_MIN = int(os.environ.get("ACCORD_FORK_MIN", "512"))
_CHILDREN = 2
_BLOCK = 64  # consecutive actions a child takes at a time (mostly one folder)
_MAX_BLOCKS = 4096


def _ignore(event: Event) -> None:
    return None


def can_fork_copy(ex: Executor, group: list[tuple[int | None, Action]]) -> bool:
    """Copy in child processes: many actions, both places fork-safe."""
    return (
        len(group) >= _FORK_MIN
        and all(replica.fork_safe for replica in ex.replicas.values())
        and (os.cpu_count() or 1) > 1
        and can_fork()
    )


def copy_forked(
    ex: Executor,
    group: list[tuple[int | None, Action]],
    report: Report,
    folders: list[tuple[int | None, Action]] | None = None,
) -> None:
    """Copy ``group`` in child processes, one per core; record here.

    For local places, where threads only contend for the GIL: the phase is
    cut into blocks of consecutive actions, and each child takes the next
    block when it is done with one (a child slowed by the machine's other
    work takes fewer), performs it and streams back what happened; this
    process emits the events, flushes and records, as it would for its own
    work. A child that dies leaves its block not run (the next run does it).

    ``folders`` (the new folders the phase copies into, made by the phase
    before) are made here while the children copy: each block is handed out
    once the folders its items go into are made, so the children start
    with the first block's folders, not after all of them.
    """
    import select

    block = _block_size(len(group))
    blocks = -(-len(group) // block)
    order = _ticket_order(blocks)
    # the blocks to do, as numbers in a pipe every child reads from: a read
    # of 4 bytes from a pipe is whole, so each block goes to one child. The
    # numbers all fit in the pipe; with folders to make, they are written as
    # the folders of each block are made
    tickets, fill = os.pipe()
    try:
        if not folders:
            _hand_out(fill, order)
            os.close(fill)
            fill = -1
    except BaseException:
        os.close(fill)
        os.close(tickets)
        raise
    # the plan's objects, frozen: neither the children's collections nor
    # this process's (while results pour in) walk them again
    collecting = gc.isenabled()
    gc.disable()
    gc.freeze()
    children: dict[int, int] = {}  # result pipe -> child pid
    settled = bytearray(len(group))
    stopped = True  # until the loop ends normally: kill the children
    try:
        try:
            for _ in range(min(_CHILDREN, blocks)):
                read, write = os.pipe()
                _widen(write)
                pid = fork_quietly()
                if pid == 0:  # pragma: no cover - runs in the child
                    os.close(read)
                    if fill >= 0:
                        os.close(fill)
                    for other in children:
                        os.close(other)
                    _serve(ex, group, block, tickets, write)
                os.close(write)
                children[read] = pid
        finally:
            os.close(tickets)
        if fill >= 0:
            _make_folders(ex, folders or [], group, block, order, fill, report)
            os.close(fill)  # no block is left: the children end when idle
            fill = -1
        if ex.stopped:
            _stop_children(children)
        buffers = {fd: b"" for fd in children}
        while buffers:
            ready, _, _ = select.select(list(buffers), [], [])
            for fd in ready:
                data = os.read(fd, 1 << 20)
                if not data:
                    del buffers[fd]
                    continue
                buffers[fd] += data
                # what arrived together is settled together: the copies
                # done recorded in one turn of the recorder's lock
                arrived = list(_results(buffers, fd))
                report.outcomes += ex.settle_many(
                    [(*group[index], done) for index, done in arrived]
                )
                for index, _ in arrived:
                    settled[index] = 1
                if ex.stopped:
                    _stop_children(children)
        stopped = ex.stopped
    finally:
        if fill >= 0:
            os.close(fill)
        _stop_children(children, wait_only=not stopped)
        for fd in children:
            os.close(fd)
        gc.unfreeze()
        if collecting:
            gc.enable()
        missed = [a for (_, a), done in zip(group, settled, strict=True) if not done]
        for action in missed:
            report.outcomes.append(Outcome(action, "not-run", "the run was stopped"))
        if missed and not ex.stopped:
            ex.stop(
                AccordError(
                    "a copying process stopped before its work was done",
                    hint="run again: the next run completes the work",
                )
            )


def _hand_out(fill: int, order: list[int]) -> None:
    """Write block numbers into the tickets pipe (they fit: never blocks)."""
    view = memoryview(b"".join(i.to_bytes(4, "big") for i in order))
    while view:
        view = view[os.write(fill, view) :]


def _make_folders(
    ex: Executor,
    folders: list[tuple[int | None, Action]],
    group: list[tuple[int | None, Action]],
    block: int,
    order: list[int],
    fill: int,
    report: Report,
) -> None:
    """Make the new folders here, block by block in the order the children
    take them: a block's number is handed out once the folders its items go
    into are made (each folder once, parents first, as the phase before
    would have made them); then the folders no item goes into, in the
    plan's order. A run stopped meanwhile hands out no further block."""
    pending = {(a.side, a.key): (seq, a) for seq, a in folders}
    seen: set[tuple[object, str]] = set()  # folders whose parents are made

    def make(side: object, folder: str) -> None:
        """``folder`` and the folders above it not seen yet, parents first
        (a loop, not a recursion: a tree may be deeper than Python's stack)."""
        chain = []
        while folder and (side, folder) not in seen:
            seen.add((side, folder))
            chain.append(folder)
            folder = folder.rpartition("/")[0]
        for key in reversed(chain):
            item = pending.pop((side, key), None)
            if item is not None:
                report.outcomes.append(ex.one(*item))

    for ticket in order:
        last = None  # a block's items are mostly in one folder: made once
        for _, action in group[ticket * block : (ticket + 1) * block]:
            folder = action.key.rpartition("/")[0]
            if folder and (action.side, folder) != last:
                make(action.side, folder)
                last = (action.side, folder)
        if ex.stopped:
            break
        _hand_out(fill, [ticket])
    for (side, key), _ in list(pending.items()):
        make(side, key)


def _widen(fd: int) -> None:
    """A result pipe of 1 MiB where the system allows it (Linux; else the
    default 64 KiB): a child does not wait for this process to read."""
    import fcntl

    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)  # type: ignore[attr-defined]


def _ticket_order(blocks: int) -> list[int]:
    """The blocks from the start and from the middle in turn (0, h, 1, h+1,
    ...): the children work about half the phase apart, so they seldom
    write into one folder at once (no contention on its lock), whoever
    takes more."""
    half = -(-blocks // 2)
    order = []
    for i in range(half):
        order.append(i)
        if half + i < blocks:
            order.append(half + i)
    return order


def _block_size(actions: int) -> int:
    """Actions in one block: small enough to share the work evenly, and at
    most _MAX_BLOCKS blocks (their numbers fit in an empty pipe)."""
    return max(_BLOCK, -(-actions // _MAX_BLOCKS))


def _results(buffers: dict[int, bytes], fd: int) -> Iterator[tuple[int, Attempt]]:
    """Complete length-prefixed batches received from one child."""
    import pickle

    data = buffers[fd]
    at = 0
    while len(data) - at >= 4:
        size = int.from_bytes(data[at : at + 4], "big")
        if len(data) - at < 4 + size:
            break
        for index, done in pickle.loads(data[at + 4 : at + 4 + size]):
            yield index, _unpacked(done)
        at += 4 + size
    buffers[fd] = data[at:]


def _packed(done: Attempt) -> Attempt | tuple[Any, ...]:
    """What a child sends of one attempt: the archive row alone, as a plain
    tuple, for the usual one (done, one row, nothing forgotten), whose
    pickling is then a tenth of an ``Attempt``'s; any other as it is."""
    if done.status == "done" and len(done.puts) == 1 and not done.forgets:
        return tuple(done.puts[0])
    return done


def _unpacked(done: Attempt | tuple[Any, ...]) -> Attempt:
    """The ``Attempt`` a child sent, as ``_packed``."""
    if type(done) is tuple:
        return Attempt("done", [ArchiveEntry._make(done)], [])
    return done  # type: ignore[return-value]


def _serve(
    ex: Executor,
    group: list[tuple[int | None, Action]],
    block: int,
    tickets: int,
    fd: int,
) -> None:  # pragma: no cover - runs in the child
    """The child's loop: take a block, perform it, send its results (at
    its end, or every 0.1 s), until no block is left; then exit."""
    import pickle

    try:
        faults.disable()
        ex.on_event = ex.performer.on_event = _ignore
        for replica in ex.replicas.values():
            replica.forked()
        batch: list[tuple[int, Attempt]] = []
        sent = time.monotonic()
        fatal = False
        with os.fdopen(fd, "wb") as out:
            while not fatal:
                ticket = _ticket(tickets)
                if ticket is None:
                    break
                first = ticket * block
                last = min(first + block, len(group)) - 1
                for index in range(first, last + 1):
                    done = ex.performer.attempt(group[index][1])
                    batch.append((index, _packed(done)))
                    fatal = done.status == "fatal"
                    now = time.monotonic()
                    if fatal or index == last or now - sent > 0.1:
                        payload = pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)
                        out.write(len(payload).to_bytes(4, "big") + payload)
                        out.flush()
                        batch, sent = [], now
                        if fatal:
                            break
    finally:
        os._exit(0)


def _ticket(tickets: int) -> int | None:  # pragma: no cover - runs in the child
    """The next block to do, or None when every block is taken."""
    data = b""
    while len(data) < 4:
        more = os.read(tickets, 4 - len(data))
        if not more:
            return None
        data += more
    return int.from_bytes(data, "big")


def _stop_children(children: dict[int, int], *, wait_only: bool = False) -> None:
    for pid in children.values():
        if not wait_only:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
