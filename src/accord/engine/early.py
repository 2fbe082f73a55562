"""The archive of two local folders, read while accord starts.

A run between two local folders spends its first 50 ms or so starting
Python and importing its modules on one core, while the other waits;
then each side's listing reads that side's archived versions from SQLite
row by row (about a fifth of the listing's work). When the command line
is ``accord sync|mirror A B`` with two local folders, the ``accord``
command forks a child first thing (:func:`start_early`, before click and
the rest are imported) that reads the pair's archive, keys and both
sides' versions, in one SQLite transaction together with the archive's
entries stamp (``ArchiveStore.stamp_entries``), and hands them over
through a pipe (marshal: strings and lists only).

Nothing is trusted that could have changed since. The copy is read
without the places' locks; the session takes it (:func:`claim`) only
after it has locked both places, only if it is of the archive the
session opened, and only if the archive's stamp is still the one read
with it: the stamp is deleted by triggers in the same transaction as any
change of the archive's entries, by any writer, and a new one is random;
so an equal stamp means the entries are exactly the ones read. Otherwise
the copy is dropped and the listing reads SQLite as before. Archives of
more than ``MOST`` rows are not read ahead (they would be held whole;
the listing reads them as it goes).

This module imports only the standard library: it runs before the rest.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from accord.state.snapshot import Snapshot

__all__ = ["MOST", "claim", "start_early"]

#: archives of more rows than this are not read ahead (held whole meanwhile)
MOST = 50_000

#: the commands whose two places are read ahead
_COMMANDS = ("sync", "mirror")


class _Started:
    """The child reading the archive, and the pipe its copy comes through."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self.fd = fd


_started: _Started | None = None


def start_early(argv: list[str]) -> None:
    """Start reading the archive of ``accord sync|mirror A B``'s two local
    folders in a child process (``argv`` without the program's name);
    nothing for any other command line."""
    global _started
    if _started is not None or not hasattr(os, "fork"):
        return
    folders = _local_pair(argv)
    if folders is None:
        return
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read)
        _serve(folders, write)
    os.close(write)
    _started = _Started(pid, read)


def claim(path: Path) -> Snapshot | None:
    """The copy read at the start, if it is of the archive at ``path``
    (the caller checks its stamp); None otherwise. Taken once."""
    global _started
    started, _started = _started, None
    if started is None:
        return None
    import marshal

    from accord.state.snapshot import Snapshot

    try:
        data = _read_all(started.fd)
    finally:
        os.close(started.fd)
        _reap(started.pid)
    try:
        found = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        return None  # nothing, or cut short: the child was lost
    if not isinstance(found, tuple) or len(found) != len(Snapshot._fields):
        return None
    snapshot = Snapshot(*found)
    return snapshot if snapshot.path == str(path) else None


def forget() -> None:
    """Drop the copy being read, if any (tests; a process that will not
    run a session)."""
    global _started
    started, _started = _started, None
    if started is not None:
        os.close(started.fd)
        _reap(started.pid)


def _local_pair(argv: list[str]) -> tuple[str, str] | None:
    """The two folders of ``sync|mirror A B [options]``, when the first two
    words after the command that are not options name local folders."""
    if not argv or argv[0] not in _COMMANDS:
        return None
    words = [word for word in argv[1:] if not word.startswith("-")][:2]
    if len(words) != 2 or any("://" in word for word in words):
        return None
    if not all(os.path.isdir(os.path.expanduser(word)) for word in words):
        return None
    return words[0], words[1]


def _identity(folder: str) -> str:
    """A local folder's identity, as ``LocalReplica`` gives it."""
    return "file://" + os.path.realpath(os.path.abspath(os.path.expanduser(folder)))


def _serve(folders: tuple[str, str], fd: int) -> None:  # pragma: no cover - child
    """In the child: read the pair's archive, write the copy, exit at once."""
    import gc

    gc.disable()  # a few tuples per row and no cycles, then the child is gone
    try:
        payload = b""
        try:
            payload = _payload(folders)
        except Exception:  # any doubt: no copy, the run reads SQLite
            payload = b""
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:  # the parent left, or was stopped: nothing to do
        pass
    finally:
        os._exit(0)


def _payload(folders: tuple[str, str]) -> bytes:  # pragma: no cover - child
    import marshal

    from accord.state.snapshot import archive_name, read_snapshot

    left, right = (_identity(folder) for folder in folders)
    path = os.path.join(_state_dir(), "pairs", archive_name(left, right))
    if not os.path.isfile(path):
        return b""
    snapshot = read_snapshot(path, MOST)
    return b"" if snapshot is None else marshal.dumps(tuple(snapshot))


def _state_dir() -> str:
    """The state folder, as ``config.default_state_dir`` gives it (without
    importing it: that takes pathlib; a session whose archive is elsewhere
    finds the copy is not of its archive)."""
    explicit = os.environ.get("ACCORD_STATE_DIR")
    if explicit:
        return os.path.expanduser(explicit)
    xdg = os.environ.get("XDG_STATE_HOME")
    base = os.path.expanduser(xdg) if xdg else os.path.expanduser("~/.local/state")
    return os.path.join(base, "accord")


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
