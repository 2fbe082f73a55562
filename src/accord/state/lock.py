"""The lock of a place: one run at a time, visible to every machine.

The lock is the file ``.accord/lock`` in the place itself, created
exclusively, holding its owner (user, host, pid, time, run); a place need
not make it durable (see "Durability" in docs/architecture.md). A lock whose
owner is a process on this host that no longer runs is stale: it is removed
and reported. So is a lock left by this very process for a run it no longer
holds (a long-lived process such as ``accord watch`` whose run could not
remove its lock because the place went away mid-run). So is a lock with
no readable owner (empty or damaged: a run stopped between creating and
writing it) once it has stayed so for ``UNREADABLE_GRACE`` seconds, the
time a live run has to write it. Any other lock is refused with a message
naming its owner; ``break_lock`` removes it when the user knows its owner
is gone.
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING

from accord.errors import LockHeld
from accord.tuples import NamedTuple

if TYPE_CHECKING:
    from accord.replica import Replica

__all__ = ["LockInfo", "acquire", "release"]

LOCK_NAME = "lock"
#: seconds a lock may stay without a readable owner while its run writes it
UNREADABLE_GRACE = 3.0

#: the (run, place) locks this process holds now, to tell its own leftovers
_HELD: set[tuple[str, str]] = set()


class LockInfo(NamedTuple):
    who: str
    host: str
    pid: int
    since: float
    run: str

    @classmethod
    def mine(cls, who: str, run: str) -> LockInfo:
        return cls(who, os.uname().nodename, os.getpid(), time.time(), run)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"{self.who} (pid {self.pid} on {self.host}, since {when})"


def _read(replica: Replica) -> LockInfo | None:
    data = replica.meta_read(LOCK_NAME)
    return None if data is None else _parse(data)


def _parse(data: bytes) -> LockInfo:
    try:
        return LockInfo(**json.loads(data))
    except (ValueError, TypeError):
        return _UNREADABLE


_UNREADABLE = LockInfo("unknown", "unknown", 0, 0.0, "")


def _unreadable_for_good(replica: Replica) -> bool:
    """True when the lock still has no readable owner, unchanged, after the
    grace a run has between creating its lock and writing it."""
    before = replica.meta_read(LOCK_NAME)
    time.sleep(UNREADABLE_GRACE)
    after = replica.meta_read(LOCK_NAME)
    return after is not None and after == before and _parse(after) is _UNREADABLE


def _is_stale(info: LockInfo, url: str) -> bool:
    if info.host != os.uname().nodename or info.pid <= 0:
        return False
    if info.pid == os.getpid():
        return (info.run, url) not in _HELD  # ours, from a run that has ended
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire(replica: Replica, info: LockInfo, *, break_lock: bool = False) -> list[str]:
    """Take the lock of ``replica``; the notices to show (stale locks removed)."""
    notices: list[str] = []
    payload = json.dumps(info._asdict()).encode()
    for _ in range(3):
        if replica.meta_create(LOCK_NAME, payload):
            _HELD.add((info.run, replica.url))
            return notices
        held = _read(replica)
        if held is None:
            continue
        if held is _UNREADABLE:
            if not _unreadable_for_good(replica):
                continue  # its run has written it (or let it go) since
            notices.append(
                f"removed a lock with no readable owner on {replica.url} (empty "
                f"or damaged for {UNREADABLE_GRACE:.0f}s: left by a run that "
                "stopped while taking it)"
            )
        elif _is_stale(held, replica.url):
            notices.append(
                f"removed a stale lock on {replica.url}: {held.describe()} is no "
                "longer running"
            )
        elif break_lock:
            notices.append(f"broke the lock on {replica.url} held by {held.describe()}")
        else:
            raise LockHeld(
                f"{replica.url} is busy: locked by {held.describe()}",
                hint="wait for that run to finish; if it is gone for good, "
                "run again with --break-lock",
            )
        replica.meta_delete(LOCK_NAME)
    raise LockHeld(f"could not take the lock of {replica.url}")


def release(replica: Replica, info: LockInfo) -> None:
    """Remove our lock (and only ours). Once called, the run no longer holds
    it, even when the place cannot be reached to remove it: a later run of
    this process then takes it over as stale."""
    _HELD.discard((info.run, replica.url))
    held = _read(replica)
    if held is not None and held.run == info.run and held.pid == info.pid:
        replica.meta_delete(LOCK_NAME)
