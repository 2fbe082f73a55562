"""A hub killed mid-upload or mid-commit, or stopped with SIGTERM in the
middle of a sync: nothing acknowledged is lost, no half file is ever
visible, and the next run finishes the job."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _hubs import as_machine

import accord
from accord.hub import init_hub
from accord.registry import open_replica

pytestmark = pytest.mark.slow


def fresh_hub(tmp_path: Path, **env: str):
    from fixtures.hub import HubProcess, login_admin

    folder = tmp_path / "hub"
    _, token = init_hub(folder)
    hub = HubProcess(folder, env=env).start()
    credentials = tmp_path / "admin.json"
    with as_machine(credentials):
        login_admin(hub, token)
    return hub, credentials


def listing(url: str) -> dict[str, str | None]:
    place = open_replica(url)
    place.open()
    try:
        return {e.key: e.digest for e in place.entries()}
    finally:
        place.close()


def unlock(url: str) -> None:
    """The failed run could not unlock a dead hub; it was this process."""
    place = open_replica(url)
    place.open()
    place.meta_delete("lock")
    place.close()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def restart_when_dead(hub, ended: threading.Event) -> threading.Thread:
    """Restart ``hub`` (without faults) as soon as its process dies, unless
    the test has ``ended`` (then its own stop is what killed it)."""

    def watch() -> None:
        try:
            hub.proc.wait(120)
        except subprocess.TimeoutExpired:
            return
        if not ended.is_set():
            hub.env.pop("ACCORD_HUB_FAULT", None)
            hub.start()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_killed_mid_upload_the_transfer_resumes(tmp_path) -> None:
    hub, credentials = fresh_hub(tmp_path, ACCORD_HUB_FAULT="upload:2")
    local = tmp_path / "local"
    local.mkdir()
    data = os.urandom(40 << 20)  # five chunks of 8 MiB
    (local / "big.bin").write_bytes(data)
    url = hub.place("big")
    ended = threading.Event()
    watcher = restart_when_dead(hub, ended)
    try:
        with as_machine(credentials):
            report = accord.sync(str(local), url)
            watcher.join(60)
            assert report.ok, [o.message for o in report.failed]
            assert listing(url) == {"big.bin": sha(data)}
            # the hub received each chunk once, plus the one it died on
            chunks = hub.log().count('"PATCH"')
        assert "killed" not in hub.log()
    finally:
        ended.set()
        hub.stop()
        watcher.join(60)
        hub.stop()
    assert chunks <= 6


def test_an_upload_broken_in_one_run_resumes_in_the_next(tmp_path, monkeypatch) -> None:
    from accord.replicas import hub as hub_place

    monkeypatch.setattr(hub_place, "_RESUMES", 1)
    hub, credentials = fresh_hub(tmp_path, ACCORD_HUB_FAULT="upload:3")
    local = tmp_path / "local"
    local.mkdir()
    data = os.urandom(33 << 20)
    (local / "big.bin").write_bytes(data)
    url = hub.place("big")
    try:
        with as_machine(credentials):
            report = accord.sync(str(local), url)
            assert not report.ok
            hub.proc.wait(30)
            hub.env.pop("ACCORD_HUB_FAULT")
            hub.start()
            assert listing(url) == {}  # nothing half-written is visible
            unlock(url)
            before = hub.log().count('"PATCH"')
            assert accord.sync(str(local), url).ok
            after = hub.log().count('"PATCH"')
            assert listing(url) == {"big.bin": sha(data)}
    finally:
        hub.stop()
    # 5 chunks: 2 were kept before the kill; the third is sent again
    assert after - before == 3


def test_killed_mid_commit_nothing_half_done_shows(tmp_path) -> None:
    hub, credentials = fresh_hub(tmp_path, ACCORD_HUB_FAULT="commit:3")
    local = tmp_path / "local"
    for folder in range(4):
        (local / f"d{folder}").mkdir(parents=True)
        for number in range(100):
            (local / f"d{folder}" / f"f{number}.txt").write_text(f"{folder}/{number}\n")
    url = hub.place("many")
    try:
        with as_machine(credentials):
            report = accord.sync(str(local), url)
            assert not report.ok
            hub.proc.wait(30)
            hub.env.pop("ACCORD_HUB_FAULT")
            hub.start()
            seen = listing(url)
            # what the hub shows is whole: every listed file has its content
            for key, digest in seen.items():
                if digest:
                    assert digest == sha((local / key).read_bytes())
            assert 0 < len(seen) < 404
            unlock(url)
            assert accord.sync(str(local), url).ok
            assert len(listing(url)) == 404
            other = tmp_path / "other"
            assert accord.sync(str(other), url).ok
        assert sorted(p.relative_to(other) for p in other.rglob("*.txt")) == sorted(
            p.relative_to(local) for p in local.rglob("*.txt")
        )
    finally:
        hub.stop()


def test_sigterm_mid_sync_loses_no_acknowledged_write(tmp_path) -> None:
    hub, credentials = fresh_hub(tmp_path)
    local = tmp_path / "local"
    local.mkdir()
    for number in range(3000):
        (local / f"f{number:04}.txt").write_text(f"{number}\n" * 20)
    url = hub.place("term")
    env = {**os.environ, "ACCORD_HUB_CREDENTIALS": str(credentials)}
    try:
        sync = subprocess.Popen(
            [sys.executable, "-m", "accord", "sync", str(local), url, "--yes", "-q"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while hub.log().count("/batch") < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hub.stop() == 0  # a clean stop, requests in flight finished
        sync.communicate(timeout=300)
        hub.start()
        with as_machine(credentials):
            seen = listing(url)
            for key, digest in seen.items():
                assert digest == sha((local / key).read_bytes())
            # what the first run recorded as done is on the hub: the next
            # run deletes nothing from the local side and completes
            report = accord.sync(str(local), url)
            assert report.ok
            assert not [o for o in report.done if o.action.op == "delete"]
            assert len(listing(url)) == 3000
        assert len(list(local.glob("f*.txt"))) == 3000
    finally:
        hub.stop()


def test_big_files_stream_with_bounded_memory(tmp_path) -> None:
    """A file bigger than the hub's memory needs: the server's peak RSS
    stays far below the file's size, up and down."""
    hub, credentials = fresh_hub(tmp_path)
    local, back = tmp_path / "local", tmp_path / "back"
    local.mkdir()
    hasher = hashlib.sha256()
    with open(local / "huge.bin", "wb") as out:
        for _ in range(40):
            block = os.urandom(8 << 20)
            hasher.update(block)
            out.write(block)  # 320 MiB
    url = hub.place("huge")
    try:
        with as_machine(credentials):
            assert accord.sync(str(local), url).ok
            assert accord.mirror(url, str(back)).ok
        peak_kib = int(
            next(
                line.split()[1]
                for line in Path(f"/proc/{hub.proc.pid}/status")
                .read_text()
                .splitlines()
                if line.startswith("VmHWM:")
            )
        )
    finally:
        hub.stop()
    with open(back / "huge.bin", "rb") as copy:
        assert hashlib.file_digest(copy, "sha256").hexdigest() == hasher.hexdigest()
    assert peak_kib < 160 * 1024, f"hub peak RSS {peak_kib} KiB for a 320 MiB file"
