"""Plain SFTP syncs each upload to the server's disk (``fsync@openssh.com``)
before its rename, so the archive never records a file a power cut on the
server could lose; a server that cannot sync is asked once per connection
and the run says so once. Against real OpenSSH sshds on 127.0.0.1 (the
server's folders are on this machine)."""

from __future__ import annotations

import os
import subprocess
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
from _trees import files as tree

import accord
from accord.replicas.sftp_client import FSYNC, exact_client, extensions
from fixtures.cli import run_accord as cli
from fixtures.disks import mount_tmpfs
from fixtures.sshd import SSHServer, serve

CMD_EXTENDED, CMD_RENAME = paramiko.sftp.CMD_EXTENDED, paramiko.sftp.CMD_RENAME


class Requests:
    """The SFTP requests of this process, per thread, as sent to the server
    (``rename`` to the name given: the ask for it can be changed)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, rename: str | None = None):
        self.sent: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        self.lock = threading.Lock()
        client = exact_client()
        original = client._async_request

        def counted(sftp: Any, fileobj: Any, t: int, *args: Any) -> int:
            with self.lock:
                self.sent[threading.get_ident()].append((t, *args))
            if rename and t == CMD_EXTENDED and args[0] == FSYNC:
                args = (rename, *args[1:])
            return original(sftp, fileobj, t, *args)

        monkeypatch.setattr(client, "_async_request", counted)

    def all(self) -> Iterator[tuple[Any, ...]]:
        for sent in self.sent.values():
            yield from sent

    def syncs(self) -> int:
        return sum(
            1 for t, *args in self.all() if t == CMD_EXTENDED and args[0] == FSYNC
        )


def _notices(report: Any) -> list[str]:
    return [notice for notice in report.notices if FSYNC in notice]


def _source(folder: Path, count: int) -> Path:
    folder.mkdir()
    (folder / "sub").mkdir()
    (folder / "empty").write_bytes(b"")
    (folder / "sub" / "big.bin").write_bytes(os.urandom(3 << 20))
    for n in range(count):
        (folder / f"f{n}.txt").write_bytes(os.urandom(100 + n * 997))
    return folder


def _mirror(local: Path, url: str, rename: str | None = None) -> tuple[Any, Requests]:
    """``accord.mirror`` of ``local`` to ``url``, its SFTP requests counted
    (``rename``: as ``Requests``); the run's report, which must be ok."""
    with pytest.MonkeyPatch.context() as mp:
        requests = Requests(mp, rename)
        report = accord.mirror(str(local), url)
    assert report.ok, report.summary()
    return report, requests


def test_each_upload_is_synced_once_before_its_rename(sshd, tmp_path) -> None:
    local = _source(tmp_path / "src", 12)
    url = sshd.url() + "&agent=off"
    report, requests = _mirror(local, url)
    assert tree(sshd.path(url)) == tree(local)
    assert requests.syncs() == 14  # one per file written, the empty one too
    assert not _notices(report)
    # in each thread, every rename of an upload follows its own sync
    for sent in requests.sent.values():
        synced = 0
        for t, *args in sent:
            if t == CMD_EXTENDED and args[0] == FSYNC:
                synced += 1
            elif t == CMD_RENAME and b"/.accord/tmp/" in args[0]:
                assert synced == 1, "an upload renamed without its sync"
                synced = 0


def test_a_server_that_refuses_the_sync_is_asked_once_and_told_once(
    sshd, tmp_path
) -> None:
    """The real server answers SSH_FX_OP_UNSUPPORTED to a name it does not
    know: the ask is sent under such a name."""
    local = _source(tmp_path / "src", 30)
    url = sshd.url() + "&agent=off"
    report, requests = _mirror(local, url, "fsync@accord.invalid")
    assert tree(sshd.path(url)) == tree(local)
    assert requests.syncs() == 1  # four workers, one ask
    place = url.split("?")[0]
    assert _notices(report) == [
        f"{place}: the server cannot sync files to disk (no fsync@openssh.com): "
        "what this run wrote is recorded before the server's disk has it; a "
        "power cut there could lose it"
    ]
    # the next run's connection asks again; a run that writes nothing is quiet
    (local / "f0.txt").write_bytes(b"changed, and longer than it was\n")
    with pytest.MonkeyPatch.context() as mp:
        requests = Requests(mp, rename="fsync@accord.invalid")
        again = accord.mirror(str(local), url)
        quiet = accord.mirror(str(local), url)
    assert again.ok and quiet.ok
    assert requests.syncs() == 1
    assert len(_notices(again)) == 1 and not _notices(quiet)
    assert tree(sshd.path(url)) == tree(local)


@pytest.fixture(scope="module")
def denying_sshd(tmp_path_factory) -> Iterator[SSHServer]:
    """An sshd that does not sync files (``-P fsync``): it does not name
    the extension then (OpenSSH 9)."""
    yield from serve(
        tmp_path_factory.mktemp("sshd-no-fsync"), "ForceCommand internal-sftp -P fsync"
    )


@pytest.fixture(scope="module")
def linkless_sshd(tmp_path_factory) -> Iterator[SSHServer]:
    """An sshd that makes no hard links (``-P hardlink``): the trash keeps
    a copy of what a run replaces."""
    yield from serve(
        tmp_path_factory.mktemp("sshd-no-hardlink"),
        "ForceCommand internal-sftp -P hardlink",
    )


def test_a_copy_kept_in_the_trash_is_whole_and_synced(linkless_sshd, tmp_path) -> None:
    """Without hard links the replaced version is copied into the trash
    before the new one takes its name: that copy is the only one left, so
    it is synced and its writes' answers checked as an upload's are."""
    local = tmp_path / "local"
    local.mkdir()
    old = os.urandom(200_000)
    (local / "f.bin").write_bytes(old)
    url = linkless_sshd.url() + "&agent=off"
    assert accord.mirror(str(local), url).ok
    (local / "f.bin").write_bytes(b"new")
    _, requests = _mirror(local, url)
    assert requests.syncs() == 2  # the upload, and the copy kept
    remote = linkless_sshd.path(url)
    assert (remote / "f.bin").read_bytes() == b"new"
    kept = [p for p in (remote / ".accord" / "trash").rglob("f.bin*")]
    assert [p.read_bytes() for p in kept] == [old]


def test_a_server_that_does_not_name_the_extension_is_not_asked(
    denying_sshd, tmp_path
) -> None:
    local = _source(tmp_path / "src", 20)
    url = denying_sshd.url() + "&agent=off"
    report, requests = _mirror(local, url)
    assert tree(denying_sshd.path(url)) == tree(local)
    assert requests.syncs() == 0
    assert len(_notices(report)) == 1
    assert _notices(report)[0].startswith(url.split("?")[0] + ": ")


def test_a_write_the_server_failed_is_not_recorded_short(sshd, tmp_path) -> None:
    """Files small enough that all their writes are still in flight at the
    close (paramiko's own close reads none of their answers): the server's
    disk fills, the run says so, and nothing is short under its name."""
    url = sshd.url() + "&agent=off"
    remote = sshd.path(url)
    remote.mkdir(parents=True)
    mount_tmpfs(remote, "512k")
    try:
        local = tmp_path / "local"
        local.mkdir()
        for n in range(3):
            (local / f"f{n}.bin").write_bytes(os.urandom(300_000))
        done = cli("mirror", str(local), url, "--yes")
        assert done.returncode == 3, done.stdout + done.stderr
        assert "disk full" in done.stdout + done.stderr
        for path in remote.glob("f*.bin"):
            assert path.read_bytes() == (local / path.name).read_bytes()
        subprocess.run(["mount", "-o", "remount,size=4m", str(remote)], check=True)
        again = cli("mirror", str(local), url, "--yes", "-q")
        assert again.returncode == 0, again.stderr
        assert tree(remote) == tree(local)
    finally:
        subprocess.run(["umount", "-l", str(remote)], capture_output=True)


def test_the_servers_extensions_are_read_from_its_version() -> None:
    def pair(name: bytes, data: bytes) -> bytes:
        return b"".join(len(s).to_bytes(4, "big") + s for s in (name, data))

    listed = pair(b"posix-rename@openssh.com", b"1") + pair(FSYNC.encode(), b"1")
    assert extensions(listed) == {"posix-rename@openssh.com": b"1", FSYNC: b"1"}
    assert extensions(b"") == {}
    for cut in range(1, len(listed)):  # a list cut short: the whole pairs
        assert set(extensions(listed[:cut])) <= {"posix-rename@openssh.com", FSYNC}
    assert list(extensions(listed[:-1])) == ["posix-rename@openssh.com"]
