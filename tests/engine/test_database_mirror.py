"""Mirroring a file-system database: marker at both roots, its own lock file.

Runs the real CLI (subprocess) on local folders; the SFTP variant lives with
the SFTP place's tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ACCORD = [sys.executable, "-m", "accord"]


def run(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ACCORD, *args], capture_output=True, text=True, timeout=60, **kwargs
    )


@pytest.fixture
def dbs(tmp_path: Path) -> tuple[Path, Path]:
    source, target = tmp_path / "lab", tmp_path / "server"
    for root in (source, target):
        (root / "scan1").mkdir(parents=True)
        (root / "romidb").write_text("")
    (source / "scan1" / "image.png").write_bytes(b"x" * 5000)
    (source / "users.json").write_text("{}")
    return source, target


def mirror(source: Path, target: Path, *extra: str) -> subprocess.CompletedProcess:
    return run(
        "mirror",
        str(source),
        str(target),
        "--marker",
        "romidb",
        "--db-lock",
        "lock",
        "--yes",
        *extra,
    )


def test_copies_and_releases_both_locks(dbs: tuple[Path, Path]) -> None:
    source, target = dbs
    done = mirror(source, target)
    assert done.returncode == 0, done.stderr
    assert (target / "scan1" / "image.png").read_bytes() == b"x" * 5000
    assert not (source / "lock").exists() and not (target / "lock").exists()
    assert "Traceback" not in done.stderr


def test_missing_marker_refuses_and_copies_nothing(dbs: tuple[Path, Path]) -> None:
    source, target = dbs
    (target / "romidb").unlink()
    done = mirror(source, target)
    assert done.returncode == 1
    assert "is not a 'romidb' database" in done.stderr
    assert not (target / "scan1" / "image.png").exists()
    assert not (source / "lock").exists(), "the source lock must not be left"


def test_missing_target_is_not_created(dbs: tuple[Path, Path], tmp_path) -> None:
    source, _ = dbs
    done = mirror(source, tmp_path / "nowhere")
    assert done.returncode == 1
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("busy", ["source", "target"])
def test_busy_database_refuses(dbs: tuple[Path, Path], busy: str) -> None:
    source, target = dbs
    held = (source if busy == "source" else target) / "lock"
    held.write_text("pid 4242")
    done = mirror(source, target)
    assert done.returncode == 1
    assert "is busy" in done.stderr and "lock" in done.stderr
    assert held.read_text() == "pid 4242", "someone else's lock is never removed"
    assert not (target / "scan1" / "image.png").exists()
    other = (target if busy == "source" else source) / "lock"
    assert not other.exists(), "the lock taken on the other side is released"


def test_lock_and_marker_are_not_copied(dbs: tuple[Path, Path]) -> None:
    source, target = dbs
    (source / "romidb").write_text("source marker")
    assert mirror(source, target).returncode == 0
    assert (target / "romidb").read_text() == ""


def _state(pid: int) -> str:
    """The state letter of a process (``T``: stopped)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


def test_interrupted_run_releases_locks(dbs: tuple[Path, Path]) -> None:
    source, target = dbs
    for i in range(3000):
        (source / "scan1" / f"f{i}.bin").write_bytes(os.urandom(2000))
    proc = subprocess.Popen(
        [
            *ACCORD,
            "mirror",
            str(source),
            str(target),
            "--marker",
            "romidb",
            "--db-lock",
            "lock",
            "--yes",
            "-q",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ACCORD_STOP_AT_STEP": "100"},  # stops itself mid-copy
    )
    deadline = time.monotonic() + 60
    while _state(proc.pid) != "T" and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.01)
    assert (target / "lock").exists()
    proc.send_signal(signal.SIGINT)  # delivered when it goes on
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=60)
    # 130, or death by SIGINT itself (what a shell also shows as 130)
    assert proc.returncode in (130, -signal.SIGINT), f"not interrupted: {err}"
    assert "Traceback" not in err
    assert not (source / "lock").exists() and not (target / "lock").exists()
    again = mirror(source, target, "-q")
    assert again.returncode == 0, again.stderr
    assert len(list((target / "scan1").iterdir())) == 3001


def test_mirror_from_a_read_only_source(tmp_path: Path) -> None:
    source, view, target = tmp_path / "src", tmp_path / "ro", tmp_path / "dst"
    source.mkdir(), view.mkdir()
    (source / "a.txt").write_text("a\n")
    bound = subprocess.run(["mount", "--bind", str(source), str(view)])
    if bound.returncode != 0:
        pytest.fail("cannot bind-mount a read-only view here")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True)
        done = run("mirror", str(view), str(target), "--yes")
        assert done.returncode == 0, done.stderr
        assert (target / "a.txt").read_text() == "a\n"
        assert "not locked" in done.stdout + done.stderr
    finally:
        subprocess.run(["umount", str(view)])
