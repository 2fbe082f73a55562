"""Another program's flock lock files, held by a place (``hold_lock``)."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from pathlib import Path

import pytest

from accord.errors import LockHeld, Unsupported
from accord.registry import open_replica
from accord.replicas.local import LocalReplica


def flocked(path: Path, mode: int) -> int:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    fcntl.flock(fd, mode | fcntl.LOCK_NB)
    return fd


def test_exclusive_lock_with_note_then_released_by_unlinking(tmp_path) -> None:
    place = LocalReplica(str(tmp_path))
    place.open()
    note = json.dumps({"user": "me"}).encode()
    token = place.hold_lock(
        ".locks/s.lock", shared=False, timeout=1, note_key=".locks/s.info", note=note
    )
    assert (tmp_path / ".locks" / "s.info").read_bytes() == note
    with pytest.raises(BlockingIOError):
        flocked(tmp_path / ".locks" / "s.lock", fcntl.LOCK_SH)
    place.drop_lock(token)
    assert not (tmp_path / ".locks" / "s.lock").exists()
    assert not (tmp_path / ".locks" / "s.info").exists()


def test_busy_lock_waits_then_raises_and_leaves_it(tmp_path) -> None:
    (tmp_path / ".locks").mkdir()
    theirs = flocked(tmp_path / ".locks" / "s.lock", fcntl.LOCK_EX)
    place = LocalReplica(str(tmp_path))
    place.open()
    started = time.monotonic()
    with pytest.raises(LockHeld):
        place.hold_lock(".locks/s.lock", shared=True, timeout=0.5)
    assert time.monotonic() - started >= 0.5
    assert (tmp_path / ".locks" / "s.lock").exists()
    os.close(theirs)


def test_lock_unlinked_by_its_holder_is_taken_anew(tmp_path) -> None:
    """The holder releases by unlinking: the waiter must not keep a lock on
    the unlinked file (the inode re-check)."""
    (tmp_path / ".locks").mkdir()
    path = tmp_path / ".locks" / "s.lock"
    theirs = flocked(path, fcntl.LOCK_EX)

    def release() -> None:
        time.sleep(0.3)
        os.unlink(path)
        os.close(theirs)

    threading.Thread(target=release).start()
    place = LocalReplica(str(tmp_path))
    place.open()
    token = place.hold_lock(".locks/s.lock", shared=False, timeout=5)
    with pytest.raises(BlockingIOError):
        flocked(path, fcntl.LOCK_EX)  # the file at the name is the one held
    place.drop_lock(token)


def test_shared_lock_other_readers_hold_is_left_to_them(tmp_path) -> None:
    (tmp_path / ".locks").mkdir()
    path = tmp_path / ".locks" / "s.lock"
    reader = flocked(path, fcntl.LOCK_SH)
    place = LocalReplica(str(tmp_path))
    place.open()
    token = place.hold_lock(".locks/s.lock", shared=True, timeout=1)
    place.drop_lock(token)
    assert path.exists(), "another reader still holds it"
    os.close(reader)


def test_places_without_flock_say_so(tmp_path) -> None:
    place = open_replica("memory://lockless")
    with pytest.raises(Unsupported):
        place.hold_lock("x.lock", shared=False, timeout=0)
