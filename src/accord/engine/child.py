"""Run one function in a forked child process and get its result back.

Scanning a large local tree is CPU-bound Python (a stat and a tuple per
item), so two sides scanned by two threads share one core through the GIL.
A forked child scans one side on another core; only its small result (what
differs from the archive) is pickled back through a pipe.

Used only where it is safe: on POSIX, while the process has a single
thread, for places that declare ``fork_safe`` (no sockets or locks
shared with the parent). The child never touches the parent's database
connection and leaves with ``os._exit`` so nothing of the parent's is
flushed or closed twice.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from accord.errors import AccordError

__all__ = ["Child", "can_fork", "fork_quietly"]

_STOPS = (signal.SIGINT, signal.SIGTERM)

T = TypeVar("T")


def can_fork() -> bool:
    """True when forking now is safe: POSIX, and no other thread running."""
    return hasattr(os, "fork") and threading.active_count() == 1


def fork_quietly() -> int:
    """``os.fork()`` for a helper child that the parent alone stops.

    Ctrl-C and SIGTERM are blocked across the fork so a signal that arrives
    meanwhile is never inherited half-handled; the child ignores them (the
    parent kills it when it is interrupted), the parent gets them as usual.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            for number in _STOPS:
                signal.signal(number, signal.SIG_IGN)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return pid


class Child(Generic[T]):
    """``fn()`` running in a child process; ``result()`` waits for it. A
    child that ends without its whole result (killed, out of memory) left
    ``fn`` undone, and ``result()`` runs it here instead: ``fn`` is a
    listing, which only reads, of a side the run has locked."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn = fn
        read, write = os.pipe()
        pid = fork_quietly()
        if pid == 0:  # pragma: no cover - runs in the child
            os.close(read)
            _serve(fn, write)
        os.close(write)
        self._pid = pid
        self._read = read
        self._done = False
        self._reader: threading.Thread | None = None
        #: what the read found (on the reader thread, or in ``result``): the
        #: unpickled outcome, None when it was cut short, or the error that
        #: stopped the read
        self._fetched: Any = None

    def prefetch(self) -> None:
        """Take the child's result on a thread of this process as soon as
        the child sends it, while this process waits for something else (a
        connection): the child's pickled result is bigger than a pipe holds,
        so without a reader it waited, unfinished, for ``result``, which
        then read and unpickled it all (about 30 ms for 20,000 new items)
        with nothing else to do meanwhile."""
        if self._reader is not None or self._read < 0:
            return
        read, self._read = self._read, -1  # the thread's now, which closes it
        self._reader = threading.Thread(
            target=self._fetch, args=(read,), name="accord-child-result", daemon=True
        )
        self._reader.start()

    def _fetch(self, read: int) -> None:
        try:
            with os.fdopen(read, "rb") as stream:
                data = stream.read()
        except BaseException as exc:  # raised again by result()
            self._fetched = exc
            return
        try:
            self._fetched = pickle.loads(data)
        except Exception:  # nothing, or cut short: the child was lost
            self._fetched = None

    def result(self) -> T:
        try:
            if self._reader is not None:
                self._reader.join()
            else:  # read here, now
                read, self._read = self._read, -1
                self._fetch(read)
        finally:
            self._reap()
        fetched = self._fetched
        if isinstance(fetched, BaseException):
            raise fetched
        if fetched is None:
            return self._fn()
        ok, value = fetched
        if not ok:
            raise value
        result: T = value
        return result

    def cancel(self) -> None:
        """Stop the child (after an error in the parent)."""
        if self._done:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGKILL)
        if self._reader is not None:  # its read ends with the child
            self._reader.join()
        if self._read >= 0:
            with contextlib.suppress(OSError):
                os.close(self._read)
            self._read = -1
        self._reap()

    def _reap(self) -> None:
        if not self._done:
            self._done = True
            os.waitpid(self._pid, 0)


def _serve(fn: Callable[[], object], fd: int) -> None:  # pragma: no cover - child
    """Run ``fn``, write the pickled outcome to ``fd``, exit at once."""
    try:
        try:
            payload = pickle.dumps((True, fn()), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:  # every outcome goes back
            try:
                payload = pickle.dumps((False, exc))
            except Exception:
                payload = pickle.dumps((False, AccordError(f"scan failed: {exc!r}")))
        with os.fdopen(fd, "wb") as stream:
            stream.write(payload)
    finally:
        os._exit(0)
