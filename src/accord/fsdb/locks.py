"""plantdb's locks, both generations, taken for the length of a run's changes.

plantdb 0.15 and later lock each scan with ``flock`` on ``.locks/<scan>.lock``
(and a fileset on ``.locks/<scan>_<fileset>.lock``), with a ``.info`` note
saying who holds it. accord takes a shared lock on each scan it reads and an
exclusive one on each scan it writes (and on each fileset it writes), in one
order (scan, then fileset; by name), waiting up to a timeout like plantdb.
plantdb 0.14 and older lock the whole database with a ``lock`` file at the
root: accord creates it exclusively on each side it writes, and refuses to
read a database that holds one. Only the locks accord took are removed.
"""

from __future__ import annotations

import io
import json
import os
import time
from typing import Any

from accord.errors import (
    AccordError,
    AlreadyExists,
    ConfigError,
    LockHeld,
    PreconditionFailed,
    Unsupported,
)
from accord.fsdb import layout
from accord.model import FILE, Entry

__all__ = ["Needs", "ScanLocks", "needs_of"]


class Needs:
    """Which scans (and filesets) of one place a run reads and writes."""

    def __init__(self) -> None:
        self.read: set[str] = set()
        self.written: set[str] = set()
        self.filesets: set[tuple[str, str]] = set()

    def __bool__(self) -> bool:
        return bool(self.read or self.written)


def needs_of(actions: Any, side: Any) -> Needs:
    """The locks ``side`` needs for ``actions`` (plan actions)."""
    needs = Needs()
    for action in actions:
        if action.side is None or action.op in ("mark_equal", "forget"):
            continue
        keys = [k for k in (action.key, action.new_key) if k]
        if action.side is side:
            for key in keys:
                needs.written.add(layout.scan_of(key))
                parts = key.split("/")
                if len(parts) >= 3 and parts[1] != "metadata":
                    needs.filesets.add((parts[0], parts[1]))
        elif action.op in ("copy", "keep_both"):
            needs.read.add(layout.scan_of(action.key))
    needs.read -= needs.written
    return needs


class ScanLocks:
    """The locks one run holds, released in reverse order."""

    def __init__(self, who: str, timeout: float, *, break_lock: bool = False) -> None:
        self.who = who
        self.timeout = timeout
        self.break_lock = break_lock
        self._held: list[tuple[Any, str]] = []
        self._root: list[tuple[Any, Entry]] = []

    # -- plantdb 0.15 and later ----------------------------------------------
    def take(self, place: Any, needs: Needs) -> None:
        """Lock every scan and fileset of ``needs`` in ``place``, in order.
        A database only read, that no plantdb 0.15 or later ever opened (no
        ``.locks/``: plantdb makes it when it opens one), is left as it is."""
        if not needs.written and place.stat(layout.LOCKS) is None:
            return
        for scan in sorted(needs.read | needs.written):
            shared = scan not in needs.written
            self._hold(place, scan, "scan", layout.scan_lock(scan), shared)
            for fileset in sorted(f for s, f in needs.filesets if s == scan):
                lock = layout.fileset_lock(scan, fileset)
                self._hold(place, f"{scan}/{fileset}", "fileset", lock, False)

    def _hold(
        self, place: Any, resource: str, level: str, lock: tuple[str, str], shared: bool
    ) -> None:
        key, note_key = lock
        note = layout.holder_note(
            resource,
            level,
            shared=shared,
            user=self.who,
            now=time.time(),
            pid=os.getpid(),
        )
        try:
            token = place.hold_lock(
                key, shared=shared, timeout=self.timeout, note_key=note_key, note=note
            )
        except Unsupported as exc:
            raise ConfigError(
                f"{place.url} cannot take plantdb's scan locks (flock): plain SFTP "
                "has no way to; nothing was changed",
                hint="let accord start its agent on the server (python3 there, "
                "no ?agent=off), or, when no plantdb program uses this database "
                "during the run, pass --no-scan-locks",
            ) from exc
        except LockHeld as exc:
            raise LockHeld(
                f"the {level} '{resource}' of {place.url} is busy: "
                f"{_holder(place, note_key)}; waited {self.timeout:g} s; "
                "nothing was changed",
                hint="run again when the plantdb program is done with it; "
                "--lock-timeout SECONDS waits longer",
            ) from exc
        self._held.append((place, token))

    # -- plantdb 0.14 and older: one lock file at the root ------------------------
    def check_root(self, place: Any) -> None:
        """Refuse to read a database an old plantdb holds."""
        if place.stat(layout.ROOT_LOCK) is not None:
            raise _root_busy(place)

    def take_root(self, place: Any) -> None:
        """Create the root lock file for the run (refused when it exists)."""
        mine = {
            "by": "accord",
            "who": self.who,
            "host": os.uname().nodename,
            "pid": os.getpid(),
        }
        data = json.dumps(mine).encode()
        like = Entry(layout.ROOT_LOCK, FILE, len(data), time.time_ns(), 0o644, "")
        stale = self._stale_root(place)
        try:
            entry = place.write(
                layout.ROOT_LOCK, io.BytesIO(data), like=like, expect=stale
            )
        except (PreconditionFailed, AlreadyExists) as exc:
            raise _root_busy(place) from exc
        self._root.append((place, entry))

    def _stale_root(self, place: Any) -> Entry | None:
        """accord's own root lock left by a run that is gone (this host, its
        process no longer running; or any of accord's with ``--break-lock``):
        the entry to replace; else None (a lock there stays: busy)."""
        entry = place.stat(layout.ROOT_LOCK)
        if entry is None:
            return None
        try:
            with place.open_read(layout.ROOT_LOCK) as stream:
                note = json.loads(stream.read(4096).decode("utf-8"))
        except (AccordError, ValueError, OSError):
            return None
        if not isinstance(note, dict) or note.get("by") != "accord":
            return None
        if self.break_lock:
            return entry
        if note.get("host") == os.uname().nodename and not _alive(note.get("pid")):
            return entry
        return None

    # -- letting go ---------------------------------------------------------------
    def release(self) -> list[str]:
        """Release everything taken, newest first; what could not be, as notices."""
        notices = []
        while self._held:
            place, token = self._held.pop()
            try:
                place.drop_lock(token)
            except AccordError as exc:
                notices.append(f"could not release a scan lock of {place.url}: {exc}")
        while self._root:
            place, entry = self._root.pop()
            try:
                place.delete(entry.key, expect=entry, trash=None)
            except AccordError:
                notices.append(
                    f"the lock file '{entry.key}' of {place.url} was changed by "
                    "someone else during the run; left in place"
                )
        return notices


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True  # cannot tell: busy
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _root_busy(place: Any) -> LockHeld:
    return LockHeld(
        f"the database at {place.url} is busy: its lock file "
        f"'{layout.ROOT_LOCK}' exists (plantdb 0.14 or older has it open); "
        "nothing was changed",
        hint="wait until the program using it is done; if none is, remove the "
        f"file '{layout.ROOT_LOCK}' at its root",
    )


def _holder(place: Any, note_key: str) -> str:
    """Who holds a lock, from its ``.info`` note, in words."""
    try:
        with place.open_read(note_key) as stream:
            note = json.loads(stream.read().decode("utf-8"))
    except (AccordError, ValueError, OSError):
        return "held by another program (it left no note)"
    user = note.get("user", "?")
    since = note.get("timestamp")
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(since)))
        if isinstance(since, (int, float))
        else "an unknown time"
    )
    kind, pid = note.get("lock_type", "a"), note.get("pid", "?")
    return f"{kind} lock held by user '{user}' (process {pid}) since {when}"
