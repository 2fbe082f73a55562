"""What every run pays whatever the tree: the probe files and the lock.

A local place asks its disk whether two Unicode spellings (or, when no name
at its root tells, two cases) are two names by writing a probe file; the
verdict is kept in the pair's archive for that very folder, so a no-op run
writes nothing to find it again, and a folder made anew (or another disk
mounted there) is probed again. The run's lock is created exclusively but
not fsync'ed (it matters only while its run lives); it still refuses a
second run while the first one holds it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from accord.engine.session import Session
from accord.errors import LockHeld
from accord.replicas import local
from accord.replicas.local import LocalReplica


def sync(left: Path, right: Path, state: Path) -> None:
    with Session(str(left), str(right), state_dir=state) as session:
        plan = session.plan()
        if not plan.is_empty:
            session.apply(plan)


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folders a probe file was written in, in order."""
    made: list[str] = []
    real = LocalReplica._probe

    def counted(self: LocalReplica, name: str, other: str) -> bool:
        made.append(self.root)
        return real(self, name, other)

    monkeypatch.setattr(LocalReplica, "_probe", counted)
    return made


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path, Path]:
    left, right = tmp_path / "left", tmp_path / "right"
    left.mkdir()
    (left / "notes.txt").write_text("n\n")  # ASCII only: no name tells Unicode
    return left, right, tmp_path / "state"


def test_a_no_op_run_reuses_the_probed_verdict(pair, probes) -> None:
    left, right, state = pair
    sync(left, right, state)
    assert sorted(probes) == sorted([str(left), str(right)])  # one per side
    probes.clear()
    sync(left, right, state)
    sync(left, right, state)
    assert probes == []  # found in the archive: no file written to find it
    for side in (left, right):
        assert not [p for p in (side / ".accord").rglob("*probe*")]


def test_a_folder_made_anew_is_probed_again(pair, probes) -> None:
    left, right, state = pair
    sync(left, right, state)
    probes.clear()
    fresh = right.with_name("fresh")
    shutil.copytree(right, fresh)  # a new folder (inode) in the old one's place
    shutil.rmtree(right)
    fresh.rename(right)
    sync(left, right, state)
    assert probes == [str(right)]  # the other side's verdict still holds
    probes.clear()
    sync(left, right, state)
    assert probes == []


def test_a_recalled_verdict_counts_only_for_its_own_folder(
    tmp_path: Path, probes
) -> None:
    (tmp_path / "Notes.txt").write_text("n\n")  # tells case; not Unicode
    root = os.stat(tmp_path)
    here = f"{root.st_dev}:{root.st_ino}"
    place = LocalReplica(str(tmp_path))
    place.open()
    place.recall({"unicode": f"{here} 0"})  # a normalizing disk, found before
    assert place.capabilities.unicode_exact is False
    assert probes == []
    place.open()
    place.recall({"unicode": f"{root.st_dev}:{root.st_ino + 1} 0"})  # elsewhere
    assert place.capabilities.unicode_exact is True  # probed: this disk keeps bytes
    assert probes == [str(tmp_path)]
    assert place.learned() == {"unicode": f"{here} 1"}
    place.close()


def test_a_dry_run_keeps_no_verdict(pair, probes) -> None:
    left, right, state = pair
    right.mkdir()
    for _ in range(2):
        probes.clear()
        with Session(str(left), str(right), state_dir=state, read_only=True) as run:
            run.plan()
        assert set(probes) == {str(left), str(right)}  # nothing was kept


def test_the_lock_is_not_fsynced_other_own_files_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(local.os, "fsync", lambda fd: synced.append(fd) or real(fd))
    place = LocalReplica(str(tmp_path))
    place.open()
    assert place.meta_create("lock", b"mine")
    assert synced == []
    assert place.meta_create("history/r1.json", b"{}")
    assert len(synced) == 1
    assert not place.meta_create("lock", b"theirs")  # still exclusive
    assert place.meta_read("lock") == b"mine"


def test_a_live_run_still_refuses_a_second_one(pair) -> None:
    left, right, state = pair
    sync(left, right, state)
    with Session(str(left), str(right), state_dir=state) as first:
        first.plan()
        second = Session(str(left), str(right), state_dir=state)
        with pytest.raises(LockHeld, match="busy"):
            second.__enter__()
        second.close()
        assert (left / ".accord" / "lock").exists()
    assert not (left / ".accord" / "lock").exists()
    sync(left, right, state)  # and the next run takes it


#: the ``accord`` command with an exit handler of its own
_WITH_HANDLER = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('handlers ran'))\n"
    "from accord.cli import main\n"
    "sys.argv = ['accord', *sys.argv[1:]]\n"
    "main()\n"
)


def test_the_command_leaves_early_after_its_exit_handlers(tmp_path: Path) -> None:
    """``accord`` skips the interpreter's teardown, not its exit handlers,
    its output or its exit status."""
    env = {**os.environ, "ACCORD_STATE_DIR": str(tmp_path / "state")}
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.txt").write_text("x")

    def accord(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", _WITH_HANDLER, *args]
        return subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    done = accord("sync", "a", "b", "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("handlers ran")
    assert "f.txt" in done.stdout
    missing = accord("sync", "a/f.txt", "b", "--yes")
    assert missing.returncode == 1
    assert "not a folder" in missing.stderr
    assert missing.stdout.rstrip().endswith("handlers ran")
