"""The SFTP place against a real OpenSSH sshd on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _trees import files as tree

import accord
from accord.errors import ConfigError
from accord.registry import open_replica
from fixtures.cli import run_accord as cli
from fixtures.disks import mount_tmpfs


def test_two_way_round_trips(sshd, tmp_path: Path) -> None:
    local, url = tmp_path / "local", sshd.url()
    remote = sshd.path(url)
    local.mkdir()
    (local / "a.txt").write_text("a\n")
    (local / "docs").mkdir()
    (local / "docs" / "b.txt").write_text("b\n")
    os.symlink("a.txt", local / "link")
    report = (
        accord.sync(str(local), url, yes=True)
        if False
        else accord.sync(str(local), url)
    )
    assert report.ok, report.summary()
    assert tree(remote) == tree(local)
    assert os.readlink(remote / "link") == "a.txt"
    # edits on both sides, a deletion, a rename, a conflict
    (remote / "docs" / "b.txt").write_text("b from the server\n")
    (local / "new.txt").write_text("new locally\n")
    (local / "a.txt").rename(local / "renamed.txt")
    (local / "c.txt").write_text("local c\n")
    (remote / "c.txt").write_text("server c, longer\n")
    time.sleep(1.1)  # SFTP mtimes are whole seconds
    report = accord.sync(str(local), url)
    assert not report.failed, [o.message for o in report.failed]
    assert tree(remote) == tree(local)
    assert (local / "docs" / "b.txt").read_text() == "b from the server\n"
    assert (remote / "renamed.txt").exists() and not (remote / "a.txt").exists()
    conflicts = [n for n in tree(local) if n.startswith("c.conflict-")]
    assert len(conflicts) == 1
    # nothing left to do
    plan = accord.sync(str(local), url, dry_run=True)
    assert plan.is_empty


def test_overwritten_and_deleted_files_go_to_the_remote_trash(sshd, tmp_path) -> None:
    local, url = tmp_path / "local", sshd.url()
    local.mkdir()
    (local / "keep.txt").write_text("v1\n")
    (local / "drop.txt").write_text("doomed\n")
    accord.sync(str(local), url)
    (local / "keep.txt").write_text("v2, longer\n")
    (local / "drop.txt").unlink()
    accord.sync(str(local), url)
    place = open_replica(url)
    place.open()
    try:
        kept = {item.key for item in place.trash_list()}
    finally:
        place.close()
    assert kept == {"keep.txt", "drop.txt"}


def test_mirror_by_the_cli(sshd, tmp_path: Path) -> None:
    local, url = tmp_path / "src", sshd.url()
    local.mkdir()
    for i in range(50):
        (local / f"f{i}.bin").write_bytes(os.urandom(3000))
    done = cli("mirror", str(local), url, "--yes", "-q")
    assert done.returncode == 0, done.stderr
    assert tree(sshd.path(url)) == tree(local)
    again = cli("mirror", str(local), url, "--yes")
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_a_saved_plan_opens_the_server_with_the_urls_options(sshd, tmp_path) -> None:
    """The plan shows the place without its options, and keeps the URL it
    was made with (its identity file, known hosts) to apply it; a source
    gone since, copied in a batch through the agent, is skipped."""
    local, url = tmp_path / "src", sshd.url()
    local.mkdir()
    for i in range(20):
        (local / f"f{i}.txt").write_text(f"{i}\n")
    plan = tmp_path / "plan.json"
    made = cli("plan", str(local), url, "-o", str(plan))
    assert made.returncode in (0, 6), made.stderr
    saved = json.loads(plan.read_text())
    assert "?" not in saved["right"] and saved["open"] == {"right": url}
    (local / "f3.txt").unlink()
    done = cli("apply", str(plan), "--yes")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "skipped: the source is gone since it was listed" in done.stderr
    assert "f3.txt" in done.stderr and "failed" not in done.stderr
    assert len(tree(sshd.path(url))) == 19


def test_database_mirror_with_marker_and_lock(sshd, tmp_path: Path) -> None:
    local, url = tmp_path / "db", sshd.url()
    remote = sshd.path(url)
    for root in (local, remote):
        (root / "scan").mkdir(parents=True)
        (root / "romidb").write_text("")
    (local / "scan" / "img.png").write_bytes(b"png" * 1000)
    cmd = [
        sys.executable,
        "-m",
        "accord",
        "mirror",
        str(local),
        url,
        "--marker",
        "romidb",
        "--db-lock",
        "lock",
        "--yes",
        "-q",
    ]
    (remote / "lock").write_text("busy")
    busy = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert busy.returncode == 1 and "is busy" in busy.stderr
    assert not (local / "lock").exists()
    (remote / "lock").unlink()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (remote / "scan" / "img.png").read_bytes() == b"png" * 1000
    assert not (remote / "lock").exists() and not (local / "lock").exists()


def test_unknown_host_key_is_refused_with_its_fingerprint(sshd, tmp_path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    url = sshd.url().replace(sshd.known_hosts, str(empty))
    with pytest.raises(ConfigError) as caught:
        open_replica(url).open(create=True)
    assert "SHA256:" in caught.value.message
    assert "accept_new_host_key" in (caught.value.hint or "")
    accepted = open_replica(url + "&accept_new_host_key=true")
    accepted.open(create=True)
    accepted.close()
    assert "ssh-ed25519" in empty.read_text()  # recorded (maybe hashed, as ssh does)
    known = open_replica(url)
    known.open(create=True)  # known now
    known.close()


def test_unreachable_port_is_a_clear_error(sshd, tmp_path) -> None:
    url = sshd.url().replace(f":{sshd.port}/", ":1/")
    done = cli("mirror", str(tmp_path), url, "--yes")
    assert done.returncode == 1
    assert "cannot connect" in done.stderr and "Traceback" not in done.stderr
    # the system's words, not an exception's ("[Errno None] Unable to ...")
    assert "Connection refused" in done.stderr and "Errno" not in done.stderr


def test_a_key_file_that_is_not_there_is_named(sshd, tmp_path) -> None:
    # ssh only warns of it; then "No authentication methods available",
    # with a hint to check the network
    url = sshd.url().replace(f"identity={sshd.key}", "identity=/no/such/key")
    done = cli("mirror", str(tmp_path), url, "--yes")
    assert done.returncode in (1, 2), done.stderr
    assert "no key file /no/such/key (?identity= of sftp://" in done.stderr
    assert "Traceback" not in done.stderr and "network" not in done.stderr


def test_a_failed_connection_is_told_in_the_systems_words() -> None:
    import errno

    from paramiko.ssh_exception import NoValidConnectionsError

    from accord.errors import connection_reason

    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    both = NoValidConnectionsError({("::1", 1): refused, ("127.0.0.1", 1): refused})
    assert str(both).startswith("[Errno None]")  # what paramiko says
    assert connection_reason(both) == "Connection refused"  # once, not per address
    unknown = OSError(-2, "Name or service not known")
    assert connection_reason(unknown) == "Name or service not known"
    try:
        try:
            raise TimeoutError(errno.ETIMEDOUT, "Connection timed out")
        except TimeoutError as inner:
            raise RuntimeError("a wrapper that says nothing") from inner
    except RuntimeError as wrapped:
        assert connection_reason(wrapped) == "Connection timed out"
    assert connection_reason(EOFError()) is None
    # only quoted in a library's text, as ldap3 says it
    ldap3 = Exception("error while opening: [Errno 111] Connection refused")
    assert connection_reason(ldap3) == "Connection refused"
    assert connection_reason(Exception("([Errno -2] Name or service not known)")) == (
        "Name or service not known"
    )


def test_an_ipv6_place_is_shown_as_a_url_can_be_written(tmp_path) -> None:
    place = open_replica("sftp://someone@[::1]:1/srv/x")
    assert place.url == "sftp://someone@[::1]:1/srv/x"
    assert place.identity == "sftp://someone@::1:1/srv/x"  # archives keep their name
    done = cli(
        "mirror", str(tmp_path), "sftp://someone@[::1]:1/srv/x?agent=off", "--yes"
    )
    assert done.returncode == 1
    assert "[::1]:1" in done.stderr and "Traceback" not in done.stderr


def test_read_only_remote_folder_fails_that_item_only(sshd, tmp_path) -> None:
    local, url = tmp_path / "local", sshd.url()
    remote = sshd.path(url)
    local.mkdir()
    (local / "sub").mkdir()
    (local / "sub" / "x.txt").write_text("x\n")
    accord.sync(str(local), url)
    (local / "sub" / "y.txt").write_text("y\n")
    (local / "ok.txt").write_text("ok\n")
    frozen = subprocess.run(["chattr", "+i", str(remote / "sub")], capture_output=True)
    if frozen.returncode != 0:
        pytest.fail(f"cannot make a folder read-only: {frozen.stderr!r}")
    try:
        report = accord.sync(str(local), url)
        failed = [o.action.key for o in report.failed]
        assert failed == ["sub/y.txt"], [o.message for o in report.failed]
        message = report.failed[0].message
        assert "permission denied" in message or "not permitted" in message
        assert (remote / "ok.txt").exists()
    finally:
        subprocess.run(["chattr", "-i", str(remote / "sub")], capture_output=True)
    assert accord.sync(str(local), url).ok
    assert (remote / "sub" / "y.txt").read_text() == "y\n"


def _session_pids(port: int) -> set[int]:
    """sshd processes serving a connection on ``port`` (not the listener)."""
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
    ).stdout
    pids = set()
    for part in out.split("pid=")[1:]:
        pids.add(int(part.split(",", 1)[0]))
    return pids


@pytest.mark.parametrize("transport", ["", "&agent=off"], ids=["agent", "sftp"])
def test_connection_dropped_mid_transfer(sshd, tmp_path: Path, transport) -> None:
    local, url = tmp_path / "local", sshd.url() + transport
    remote = sshd.path(url)
    local.mkdir()
    (local / "big.bin").write_bytes(os.urandom(64 << 20))
    killer_done = threading.Event()

    def kill_when_copying() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            temps = list((remote / ".accord" / "tmp").glob("*"))
            if temps and any(t.stat().st_size > 0 for t in temps):
                for pid in _session_pids(sshd.port):
                    # one may have ended since ss saw it: kill the others
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        killer_done.set()

    threading.Thread(target=kill_when_copying, daemon=True).start()
    report = accord.mirror(str(local), url)
    killer_done.wait(30)
    # the sender's broken pipe or ssh's own last words ("Connection to ...
    # closed by remote host"), whichever the run hears first
    assert report.aborted and "connection" in report.aborted.lower(), report.aborted
    assert [o.status for o in report.outcomes] == ["failed"]
    assert not (remote / "big.bin").exists(), "nothing half-written under its name"
    # the next run completes (the lock of the dead connection's run is
    # ours: same host and pid, so it is released or stale)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "accord",
            "mirror",
            str(local),
            url,
            "--yes",
            "-q",
            "--break-lock",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (remote / "big.bin").read_bytes() == (local / "big.bin").read_bytes()
    assert not list((remote / ".accord" / "tmp").glob("*"))


@pytest.mark.parametrize("transport", ["", "&agent=off"], ids=["agent", "sftp"])
def test_a_full_disk_on_the_server(sshd, tmp_path: Path, transport) -> None:
    """A small file system mounted on the server: the copy that does not fit
    fails with a clear error, nothing is half-written, and once there is
    room the next run completes."""
    url = sshd.url() + transport
    remote = sshd.path(url)
    remote.mkdir(parents=True)
    mount_tmpfs(remote, "2m")
    try:
        local = tmp_path / "local"
        local.mkdir()
        (local / "small.txt").write_text("fits\n")
        (local / "big.bin").write_bytes(os.urandom(4 << 20))
        done = cli("mirror", str(local), url, "--yes")
        assert done.returncode == 3, done.stdout + done.stderr
        said = done.stdout + done.stderr
        assert "disk full" in said or "no space left" in said
        assert "Traceback" not in done.stderr
        assert not (remote / "big.bin").exists()
        subprocess.run(["mount", "-o", "remount,size=20m", str(remote)], check=True)
        again = cli("mirror", str(local), url, "--yes", "-q")
        assert again.returncode == 0, again.stderr
        assert (remote / "big.bin").read_bytes() == (local / "big.bin").read_bytes()
    finally:
        subprocess.run(["umount", "-l", str(remote)], capture_output=True)


def test_wrong_credentials_are_refused_clearly(sshd, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
        check=True,
    )
    url = sshd.url().replace(sshd.key, str(stranger))
    done = subprocess.run(
        [sys.executable, "-m", "accord", "mirror", str(tmp_path), url, "--yes"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SSH_AUTH_SOCK": ""},
    )
    assert done.returncode == 1
    assert "refused our keys" in done.stderr and "hint:" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("transport", ["", "&agent=off"], ids=["agent", "sftp"])
def test_a_new_remote_root_is_made_only_in_a_folder_that_is_there(
    sshd, tmp_path: Path, transport
) -> None:
    # as a local one: a mistyped server path is not made with every folder
    # above it
    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_text("a\n")
    base = sshd.url()
    url = base.replace("?", "/notes?", 1) + transport
    missing = sshd.path(base)
    for verb in ("mirror", "sync"):
        done = cli(verb, str(local), url, "--yes")
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"the folder {missing} does not exist" in done.stderr
        assert "Traceback" not in done.stderr and not missing.exists()
    missing.mkdir()
    made = cli("mirror", str(local), url, "--yes", "-q")
    assert made.returncode == 0, made.stderr
    assert (missing / "notes" / "a.txt").read_text() == "a\n"
