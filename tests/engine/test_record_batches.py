"""The archive advances only after a flush, and a run flushes rarely.

A first copy writes its files without an fsync each and makes them
durable with one flush (a local folder: one ``syncfs``) before the archive
records them. These tests watch the order of flushes and archive writes
on real local folders, in this process and with the forked copiers.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from accord import api
from accord.engine import forked, record
from accord.errors import ReplicaError
from accord.replicas.local import LocalReplica
from accord.state.store import ArchiveStore

FILES = 600  # above the forked copiers' threshold (512)


@pytest.fixture(
    params=["in-process", pytest.param("child-processes", marks=pytest.mark.forks)]
)
def copier(request, monkeypatch):
    """Copies done in this process, and by the forked copiers."""
    monkeypatch.setattr(
        forked, "_FORK_MIN", 1_000_000 if request.param == "in-process" else 512
    )
    return request.param


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    for i in range(FILES):
        path = root / f"d{i % 7}" / f"f{i:04}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"file {i}\n".encode() * (i % 50 + 1))
    return root


@pytest.fixture
def calls(monkeypatch) -> list[tuple[str, object]]:
    """Every flush of a local place and every archive write, in order."""
    seen: list[tuple[str, object]] = []
    flush, record = LocalReplica.flush, ArchiveStore.record
    stage, commit_staged = ArchiveStore.stage, ArchiveStore.commit_staged
    staged = [0]  # rows staged in the transaction open (``ArchiveStore.stage``)

    def watched_flush(self: LocalReplica) -> None:
        flush(self)
        seen.append(("flush", self.root))

    def watched_record(self: ArchiveStore, put=(), forget=(), done=(), log=(), **kw):
        # noted once committed: the statements may run while the flush does
        committed = record(self, put, forget, done, log, **kw)
        if committed and (put or forget or done):
            seen.append(("record", len(put)))
        return committed

    def watched_stage(self: ArchiveStore, put=(), forget=(), done=(), log=()):
        stage(self, put, forget, done, log)
        staged[0] += len(put) or bool(forget or done)

    def watched_commit(self: ArchiveStore, commit_if=None) -> bool:
        committed = commit_staged(self, commit_if)
        if committed and staged[0]:
            seen.append(("record", staged[0]))
        staged[0] = 0
        return committed

    monkeypatch.setattr(LocalReplica, "flush", watched_flush)
    monkeypatch.setattr(ArchiveStore, "record", watched_record)
    monkeypatch.setattr(ArchiveStore, "stage", watched_stage)
    monkeypatch.setattr(ArchiveStore, "commit_staged", watched_commit)
    return seen


def test_a_first_copy_is_flushed_once_before_the_archive_records_it(
    copier, source: Path, tmp_path: Path, calls: list[tuple[str, object]], monkeypatch
):
    # a loaded machine may take longer than the flush interval; the count
    # of actions alone (600, where 512 used to flush) must not flush
    monkeypatch.setattr(record, "_BATCH_SECONDS", 3600.0)
    target = tmp_path / "dst"
    report = api.sync(str(source), str(target), state_dir=tmp_path / "state")
    assert report.ok
    folders = 7
    assert calls == [("flush", str(target)), ("record", FILES + folders)]


def test_a_failed_flush_records_nothing_and_the_next_run_completes(
    copier, source: Path, tmp_path: Path, calls, monkeypatch
):
    target, state = tmp_path / "dst", tmp_path / "state"
    flush = LocalReplica.flush

    def failing(self: LocalReplica) -> None:
        raise ReplicaError("the disk said no", where=self.url)

    monkeypatch.setattr(LocalReplica, "flush", failing)
    report = api.sync(str(source), str(target), state_dir=state)
    assert report.aborted and "the disk said no" in report.aborted
    assert not [call for call in calls if call[0] == "record"]

    monkeypatch.setattr(LocalReplica, "flush", flush)
    again = api.sync(str(source), str(target), state_dir=state)
    assert again.ok
    copied = sorted(p.relative_to(target) for p in target.rglob("*.txt"))
    assert copied == sorted(p.relative_to(source) for p in source.rglob("*.txt"))
    for name in copied:
        assert (target / name).read_bytes() == (source / name).read_bytes()
    third = api.sync(str(source), str(target), state_dir=state, dry_run=True)
    assert not third.actions


def test_a_big_copy_is_flushed_ahead_and_recorded_after_its_own_flush(
    copier, source: Path, tmp_path: Path, calls: list[tuple[str, object]], monkeypatch
):
    # past _AHEAD bytes copied, the target is flushed ahead (in a thread,
    # while the copy goes on); the archive still records only after the
    # batch's own flush, which comes last
    monkeypatch.setattr(record, "_BATCH_SECONDS", 3600.0)
    monkeypatch.setattr(record, "_AHEAD", 4096)
    target = tmp_path / "dst"
    report = api.sync(str(source), str(target), state_dir=tmp_path / "state")
    assert report.ok
    *flushes, last = calls
    assert last == ("record", FILES + 7)
    assert len(flushes) >= 2
    assert set(flushes) == {("flush", str(target))}


def test_a_failed_flush_ahead_records_nothing(
    copier, source: Path, tmp_path: Path, calls, monkeypatch
):
    # the kernel tells a failed write-back once: a flush ahead that heard
    # of it fails the batch's flush too, though that one succeeds
    monkeypatch.setattr(record, "_BATCH_SECONDS", 3600.0)
    monkeypatch.setattr(record, "_AHEAD", 4096)
    target, state = tmp_path / "dst", tmp_path / "state"
    flush, flushed = LocalReplica.flush, []

    def failing_once(self: LocalReplica) -> None:
        flushed.append(self.root)
        if len(flushed) == 1:
            raise ReplicaError(
                "lost async page write", where=self.url, hint="check the disk"
            )
        flush(self)

    monkeypatch.setattr(LocalReplica, "flush", failing_once)
    report = api.sync(str(source), str(target), state_dir=state)
    assert report.aborted and "lost async page write" in report.aborted
    assert report.summary()["aborted_hint"] == "check the disk"  # --json has it
    assert len(flushed) >= 2  # the batch's own flush ran, and succeeded
    assert not [call for call in calls if call[0] == "record"]
    assert _archived(state) == (0, FILES + 7)

    monkeypatch.setattr(LocalReplica, "flush", flush)
    assert api.sync(str(source), str(target), state_dir=state).ok
    assert _archived(state) == (FILES + 7, 0)


def test_the_archive_statements_run_while_the_flush_waits_not_during_the_copy(
    copier, tmp_path: Path, monkeypatch
):
    # run during the copy (2,048 actions at a time), they took the CPU the
    # copiers needed; they run once the batch's flush has started, in the
    # thread that waits for it
    monkeypatch.setattr(record, "_BATCH_SECONDS", 3600.0)
    source, target = tmp_path / "src", tmp_path / "dst"
    for i in range(2_200):
        path = source / f"d{i % 3}" / f"f{i:04}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * (i % 7))
    start, stage = record._Flush.start, ArchiveStore.stage
    flushing: list[bool] = []
    staged: list[tuple[bool, int]] = []

    def started(self) -> None:
        flushing.append(True)
        start(self)

    def watched(self: ArchiveStore, put=(), forget=(), done=(), log=()):
        staged.append((bool(flushing), len(put)))
        stage(self, put, forget, done, log)

    monkeypatch.setattr(record._Flush, "start", started)
    monkeypatch.setattr(ArchiveStore, "stage", watched)
    report = api.sync(str(source), str(target), state_dir=tmp_path / "state")
    assert report.ok
    assert staged == [(True, 2_200 + 3)]


def _archived(state: Path) -> tuple[int, int]:
    """(archive rows, journal lines) of the one pair in ``state``, read
    through a connection of its own (it sees committed transactions only)."""
    (path,) = (state / "pairs").glob("*.db")
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT count(*) FROM entries").fetchone()[0]
        lines = db.execute("SELECT count(*) FROM journal").fetchone()[0]
    return rows, lines


def test_the_archive_commits_only_once_the_flush_has_returned(
    copier, source: Path, tmp_path: Path, monkeypatch
):
    # the transaction's statements run before or while a local place is
    # flushed (in a thread): until the flush returns, nothing of them is
    # visible
    target, state = tmp_path / "dst", tmp_path / "state"
    flush, stage, seen = LocalReplica.flush, ArchiveStore.stage, []
    recording = threading.Event()

    def watched(self: ArchiveStore, *args, **kw):
        stage(self, *args, **kw)
        if kw.get("done"):
            recording.set()

    def slow(self: LocalReplica) -> None:
        seen.append(recording.wait(10))  # the statements run meanwhile
        seen.append(_archived(state))
        flush(self)

    monkeypatch.setattr(ArchiveStore, "stage", watched)
    monkeypatch.setattr(LocalReplica, "flush", slow)
    report = api.sync(str(source), str(target), state_dir=state)
    assert report.ok
    assert seen == [True, (0, FILES + 7)]
    assert _archived(state) == (FILES + 7, 0)


_KILLED_IN_FLUSH = """
import os, signal, sys, time
from accord import api
from accord.replicas.local import LocalReplica

def flush(self):
    time.sleep(0.5)  # the archive's statements run meanwhile, uncommitted
    os.kill(os.getpid(), signal.SIGKILL)

LocalReplica.flush = flush
api.sync(sys.argv[1], sys.argv[2], state_dir=sys.argv[3])
"""


def test_a_process_killed_during_the_flush_records_nothing(
    source: Path, tmp_path: Path
):
    # the archive's statements run during the flush, in the transaction the
    # kill leaves uncommitted
    target, state = tmp_path / "dst", tmp_path / "state"
    env = {**os.environ, "ACCORD_FORK_MIN": "512"}
    args = [str(source), str(target), str(state)]
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_IN_FLUSH, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr
    # every file copied, none recorded: the journal still holds every line
    assert len(list(target.rglob("*.txt"))) == FILES
    assert _archived(state) == (0, FILES + 7)
    again = api.sync(str(source), str(target), state_dir=state)
    assert again.ok
    assert _archived(state) == (FILES + 7, 0)
    assert not api.sync(str(source), str(target), state_dir=state, dry_run=True).actions
