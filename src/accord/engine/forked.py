"""Copy in child processes: a big copy phase between local places.

With 2 cores, threads copying small local files only contend for the GIL;
two forked children, each performing a contiguous share of the phase,
use both cores. Each child streams back what it did (pickled ``Attempt``
values, in small batches, through a pipe); this process emits the events,
flushes and records, as it does for its own work. A child that dies leaves
its remaining actions not run (the next run does them).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from accord.engine import faults
from accord.engine.child import can_fork, fork_quietly
from accord.engine.perform import Attempt
from accord.engine.plan import Action
from accord.engine.report import Event, Outcome, Report
from accord.errors import AccordError

if TYPE_CHECKING:
    from accord.engine.apply import Executor

__all__ = ["can_fork_copy", "copy_forked"]

# copies in one phase before child processes pay off
_FORK_MIN = int(os.environ.get("ACCORD_FORK_MIN", "512"))
_CHILDREN = 2


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
    ex: Executor, group: list[tuple[int | None, Action]], report: Report
) -> None:
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
            _serve(ex, chunk, write)
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
                for index, done in _results(buffers, fd):
                    seq, action = children[fd][1][index]
                    report.outcomes.append(ex.settle(seq, action, done))
                    settled[fd] += 1
                if ex.stopped:
                    _stop_children(children)
        stopped = ex.stopped
    finally:
        _stop_children(children, wait_only=not stopped)
        for fd, (_, chunk) in children.items():
            os.close(fd)
            for _, action in chunk[settled[fd] :]:
                report.outcomes.append(
                    Outcome(action, "not-run", "the run was stopped")
                )
            if settled[fd] < len(chunk) and not ex.stopped:
                ex.stop(
                    AccordError(
                        "a copying process stopped before its work was done",
                        hint="run again: the next run completes the work",
                    )
                )


def _results(buffers: dict[int, bytes], fd: int) -> Iterator[tuple[int, Attempt]]:
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
    ex: Executor, chunk: list[tuple[int | None, Action]], fd: int
) -> None:  # pragma: no cover - runs in the child
    """The child's loop: perform, send results in small batches, exit."""
    import pickle

    try:
        faults.disable()
        ex.on_event = ex.performer.on_event = _ignore
        for replica in ex.replicas.values():
            replica.forked()
        batch: list[tuple[int, Attempt]] = []
        sent = time.monotonic()
        with os.fdopen(fd, "wb") as out:
            for index, (_, action) in enumerate(chunk):
                done = ex.performer.attempt(action)
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
