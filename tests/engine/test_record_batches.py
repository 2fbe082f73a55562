"""The archive advances only after a flush, and a run flushes rarely.

A first copy writes its files without an fsync each and makes them
durable with one flush (a local folder: one ``syncfs``) before the archive
records them. These tests watch the order of flushes and archive writes
on real local folders, in this process and with the forked copiers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from accord import api
from accord.engine import forked, record
from accord.errors import ReplicaError
from accord.replicas.local import LocalReplica
from accord.state.store import ArchiveStore

FILES = 600  # above the forked copiers' threshold (512)


@pytest.fixture(params=["in-process", "child-processes"])
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

    def watched_flush(self: LocalReplica) -> None:
        flush(self)
        seen.append(("flush", self.root))

    def watched_record(self: ArchiveStore, put=(), forget=(), done=(), log=()):
        if put or forget or done:
            seen.append(("record", len(put)))
        return record(self, put, forget, done, log)

    monkeypatch.setattr(LocalReplica, "flush", watched_flush)
    monkeypatch.setattr(ArchiveStore, "record", watched_record)
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
