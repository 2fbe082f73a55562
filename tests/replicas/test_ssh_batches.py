"""A first copy over SSH in batches of small files: what goes wrong on the way.

Against the real OpenSSH sshd of the ``sshd`` fixture (the server's folder
is on this machine, so a test changes it directly). The client reads each
batch's sources whole (``LocalReplica.read_small``), the agent writes the
new files by descriptors (``LocalReplica.write_batch``): a source changed
after it was listed is left for the next run, a name that appeared on the
server meanwhile is not overwritten, and a connection lost mid-batch leaves
no half-written file under a real name; the next run completes each time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from test_ssh_agent import _agents

import accord
from accord.replicas.local import LocalReplica
from accord.replicas.ssh import AgentReplica


def _tree(local: Path, count: int, size: int = 3000) -> None:
    for index in range(count):
        folder = local / f"d{index // 50:02}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{index:04}.txt").write_bytes(os.urandom(size))


def _same(local: Path, remote: Path) -> None:
    mine = sorted(p.relative_to(local) for p in local.rglob("*") if p.is_file())
    theirs = sorted(
        p.relative_to(remote)
        for p in remote.rglob("*")
        if p.is_file() and ".accord" not in p.relative_to(remote).parts
    )
    assert mine == theirs
    for name in mine:
        assert (local / name).read_bytes() == (remote / name).read_bytes(), name


def test_a_source_changed_after_listing_waits_for_the_next_run(
    sshd, tmp_path: Path, monkeypatch
) -> None:
    local, url = tmp_path / "local", sshd.url()
    _tree(local, 200)
    changed = local / "d01" / "f0060.txt"
    read_small = LocalReplica.read_small

    def changing(self, entries):  # type: ignore[no-untyped-def]
        if any(e.key == "d01/f0060.txt" for e in entries):
            with open(changed, "ab") as handle:
                handle.write(b"grown after it was listed")
        return read_small(self, entries)

    monkeypatch.setattr(LocalReplica, "read_small", changing)
    report = accord.mirror(str(local), url)
    assert [o.action.key for o in report.skipped] == ["d01/f0060.txt"]
    assert len(report.done) == 200 - 1 + 4  # and the four folders
    remote = sshd.path(url)
    assert not (remote / "d01" / "f0060.txt").exists()
    monkeypatch.undo()
    again = accord.mirror(str(local), url)
    assert again.ok and again.summary()["changed"] == 1, again.summary()
    _same(local, remote)


def test_a_name_that_appeared_on_the_server_is_not_overwritten(
    sshd, tmp_path: Path, monkeypatch
) -> None:
    local, url = tmp_path / "local", sshd.url()
    remote = sshd.path(url)
    _tree(local, 120)
    write_batch = AgentReplica.write_batch

    def appearing(self, items):  # type: ignore[no-untyped-def]
        for item in items:
            if item.key == "d01/f0070.txt":
                (remote / item.key).write_bytes(b"made on the server meanwhile")
        return write_batch(self, items)

    monkeypatch.setattr(AgentReplica, "write_batch", appearing)
    report = accord.mirror(str(local), url)
    assert [o.action.key for o in report.skipped] == ["d01/f0070.txt"]
    assert (
        remote / "d01" / "f0070.txt"
    ).read_bytes() == b"made on the server meanwhile"
    monkeypatch.undo()
    assert not [p for p in (remote / ".accord" / "tmp").rglob("*") if p.is_file()]
    again = accord.mirror(str(local), url)  # a mirror replaces it now, trashed
    assert again.ok, again.summary()
    _same(local, remote)


def test_a_connection_lost_mid_batch_leaves_no_half_written_file(
    sshd, tmp_path: Path
) -> None:
    """The agent dies while batches of small files arrive and are written:
    every file under a real name is whole, and the next run completes and
    removes any temporary file left."""
    local, url = tmp_path / "local", sshd.url()
    remote = sshd.path(url)
    _tree(local, 3000, size=20_000)
    before = _agents(sshd)
    done = threading.Event()

    def kill_when_copying() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not done.is_set():
            if len(list(remote.glob("d0*/f*.txt"))) >= 300:
                killed = False
                for pid in _agents(sshd) - before:
                    with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                        os.kill(pid, signal.SIGKILL)
                        killed = True
                if killed:
                    return
            time.sleep(0.002)

    killer = threading.Thread(target=kill_when_copying, daemon=True)
    killer.start()
    report = accord.mirror(str(local), url)
    done.set()
    killer.join()
    assert report.aborted and "lost" in report.aborted, report.aborted
    copied = [p for p in remote.rglob("f*.txt") if ".accord" not in p.parts]
    assert 300 <= len(copied) < 3000
    for path in copied:
        assert path.read_bytes() == (local / path.relative_to(remote)).read_bytes()
    command = ["mirror", str(local), url, "-y", "-q", "--break-lock"]
    again = subprocess.run(
        [sys.executable, "-m", "accord", *command],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    _same(local, remote)
    assert not [p for p in (remote / ".accord" / "tmp").rglob("*") if p.is_file()]
