"""Advisory lock files with ``flock``, the way plantdb and others use them.

A lock is a file held with ``flock`` (shared or exclusive). Taking it:
open (creating it), ``flock`` without blocking, polled every 0.1 s up to a
timeout; then check that the file we hold is still the one at the name (a
holder that releases unlinks the file: a lock on an unlinked file is no
lock, so close and try again). An optional note file beside it says who
holds the lock. Releasing an exclusive lock: unlink the note, unlink the
lock file while still holding it, then close. A shared lock is unlinked
only when it can be upgraded without waiting (no other reader holds it),
so another reader's lock never disappears under it.

Standard library only; runs on the SSH agent too (Python 3.8 and later).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time

__all__ = ["Busy", "release", "take"]

_POLL = 0.1


class Busy(Exception):
    """The lock stayed held by someone else for the whole timeout."""


def take(
    dir_fd: int,
    name: str,
    *,
    shared: bool,
    timeout: float,
    note_name: str | None = None,
    note: bytes = b"",
) -> int:
    """Hold the lock file ``name`` in the folder ``dir_fd``; its descriptor."""
    deadline = time.monotonic() + max(timeout, 0.0)
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    while True:
        fd = os.open(
            name, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644, dir_fd=dir_fd
        )
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise Busy(name) from None
            time.sleep(_POLL)
            continue
        if not _still_there(fd, dir_fd, name):
            os.close(fd)  # released and unlinked under us: take the new one
            continue
        if note_name:
            _write_note(dir_fd, note_name, note, replace=not shared)
        return fd


def release(fd: int, dir_fd: int, name: str, *, note_name: str | None = None) -> None:
    """Let go of a lock taken with :func:`take` (see the module docstring)."""
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # alone on it?
        except BlockingIOError:
            return  # other readers hold it: their release removes it
        if _still_there(fd, dir_fd, name):
            if note_name:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(note_name, dir_fd=dir_fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dir_fd)
    finally:
        os.close(fd)


def _still_there(fd: int, dir_fd: int, name: str) -> bool:
    try:
        there = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino)


def _write_note(dir_fd: int, name: str, note: bytes, *, replace: bool) -> None:
    flags = os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC
    flags |= os.O_TRUNC if replace else os.O_EXCL
    try:
        fd = os.open(name, flags, 0o644, dir_fd=dir_fd)
    except FileExistsError:
        return  # another reader's note stays
    try:
        os.write(fd, note)
    finally:
        os.close(fd)
