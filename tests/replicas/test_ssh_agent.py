"""accord's agent on an SSH server: start, cache, fallback, streams, faults.

Against the real OpenSSH sshd of the ``sshd`` fixture; the agent runs under
the server's own Python (``python3``, or one named with ``?python=``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from _surroundings import DEPTH, OnServer

import accord
from accord.errors import PreconditionFailed, Unreachable
from accord.model import FILE, Entry
from accord.registry import open_replica
from accord.replicas import ssh, ssh_launch
from accord.replicas.ssh import AgentReplica, SSHProcess, SSHReplica, agent_bundle
from accord.replicas.wire import WINDOW

PYENV = Path("/root/.pyenv/versions")


def _python(version: str) -> str:
    """A pyenv interpreter of this machine kind, or skip (with the reason)."""
    found = sorted(PYENV.glob(f"{version}.*/bin/python"))
    if not found:
        pytest.skip(f"no Python {version} on this machine to run the agent with")
    return str(found[0])


def _open(url: str) -> SSHReplica:
    place = open_replica(url)
    assert isinstance(place, SSHReplica)
    place.open(create=True)
    return place


def _like(key: str, data: bytes) -> Entry:
    return Entry(key, FILE, len(data), 1_700_000_000_123_456_789, 0o640, "")


class TestAgentOnOldestPython(OnServer):
    """The whole contract, with the agent on the oldest Python it supports."""

    @pytest.fixture
    def place_url(self, sshd, top):
        url = sshd.url(f"{top}/{DEPTH}")
        return f"{url}&python={_python('3.8')}&agent=on"


class TestAgentOverParamiko(OnServer):
    """The whole contract, with the agent on paramiko's own channel (what
    runs where there is no ``ssh`` command on the client)."""

    options = "&agent=on"

    @pytest.fixture(autouse=True)
    def _no_ssh_command(self, monkeypatch):
        monkeypatch.setattr(ssh, "ssh_command", lambda sftp: None)


class TestPlainSFTP(OnServer):
    """The whole contract over plain SFTP (no agent)."""

    options = "&agent=off"


def test_the_agent_serves_by_default_with_exact_times(sshd) -> None:
    place = _open(sshd.url())
    try:
        assert isinstance(place.via, AgentReplica)
        assert isinstance(place.via.link.channel, SSHProcess)  # the system's ssh
        assert place.notices == ()
        assert place.capabilities.mtime_precision_ns == 1
        new = place.write(
            "a.txt", io.BytesIO(b"x"), like=_like("a.txt", b"x"), expect=None
        )
        assert new.mtime_ns == 1_700_000_000_123_456_789  # SFTP keeps whole seconds
    finally:
        place.close()


def test_the_modules_are_sent_once_and_checked_each_time(sshd) -> None:
    cache = sshd.root.parent / "cache" / "accord"
    digest, bundle = agent_bundle()
    home = cache / f"agent-{digest[:32]}"
    shutil.rmtree(home, ignore_errors=True)
    _open(sshd.url()).close()
    manifest = (home / "MANIFEST").read_bytes()
    assert hashlib.sha256(manifest).hexdigest() == digest
    module = home / "accord" / "replicas" / "agent.py"
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        assert module.read_bytes() == archive.read("accord/replicas/agent.py")
    stamp = module.stat().st_mtime_ns
    _open(sshd.url()).close()
    assert module.stat().st_mtime_ns == stamp, "not sent again"
    assert list(home.rglob("__pycache__")), "compiled once, kept"
    module.write_bytes(b"raise SystemExit('not the agent')")  # damaged, or planted
    place = _open(sshd.url())
    try:
        assert isinstance(place.via, AgentReplica)
    finally:
        place.close()
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        assert module.read_bytes() == archive.read("accord/replicas/agent.py")


@pytest.mark.parametrize(
    ("python", "reason"),
    [
        ("/nowhere/python3", "No such file"),
        ("2.7", "Python 2.7"),
        ("3.6", "Python 3.6"),
    ],
)
def test_without_a_usable_python_it_falls_back_to_sftp(sshd, python, reason) -> None:
    if not python.startswith("/"):
        python = _python(python)
    place = _open(f"{sshd.url()}&python={python}")
    try:
        assert not isinstance(place.via, AgentReplica)
        (notice,) = place.notices
        assert "plain SFTP" in notice and reason in notice, notice
        new = place.write(
            "a.txt", io.BytesIO(b"x"), like=_like("a.txt", b"x"), expect=None
        )
        assert place.stat("a.txt") == new._replace(digest=None)
    finally:
        place.close()


def test_agent_on_refuses_to_fall_back(sshd) -> None:
    place = open_replica(f"{sshd.url()}&python=/nowhere/python3&agent=on")
    with pytest.raises(Unreachable, match="agent did not start") as caught:
        place.open(create=True)
    place.close()
    assert "agent=off" in (caught.value.hint or "")


def test_without_paramiko_a_failed_ssh_says_what_ssh_said(monkeypatch) -> None:
    # the system's ssh cannot connect (nothing listens on the port) and
    # paramiko is not installed (``pip install .`` leaves it out): the error
    # is ssh's, not "needs paramiko", which would meet the same closed port
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setitem(sys.modules, "paramiko", None)  # import paramiko fails
    place = open_replica(f"sftp://root@127.0.0.1:{port}/nowhere")
    with pytest.raises(Unreachable, match="ssh could not connect") as caught:
        place.open()
    place.close()
    assert "Connection refused" in caught.value.message
    assert f"ssh -p {port} root@127.0.0.1" in (caught.value.hint or "")
    assert "paramiko" in (caught.value.hint or "")


def test_the_fallback_notice_reaches_the_user(sshd, tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_text("a\n")
    url = f"{sshd.url()}&python=/nowhere/python3"
    done = subprocess.run(
        [sys.executable, "-m", "accord", "mirror", str(local), url, "--yes"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    said = done.stdout + done.stderr
    assert said.count("using plain SFTP") == 1, said
    assert (sshd.path(url) / "a.txt").read_text() == "a\n"


def test_big_streams_both_ways_and_a_read_closed_early(sshd) -> None:
    place = _open(sshd.url())
    data = os.urandom(3 * WINDOW + 12345)  # more than the window: credit flows
    try:
        new = place.write("big", io.BytesIO(data), like=_like("big", data), expect=None)
        assert new.digest == "sha256:" + hashlib.sha256(data).hexdigest()
        with place.open_read("big") as stream:
            assert stream.read(1000) == data[:1000]  # then closed early
        with place.open_read("big") as stream:
            assert stream.read() == data
        assert place.stat("big") == new._replace(digest=None)
    finally:
        place.close()


class _Changing(io.RawIOBase):
    """A source that changes under the copy after its first block."""

    def __init__(self) -> None:
        self.sent = 0

    def read(self, n: int = -1) -> bytes:
        if self.sent:
            raise PreconditionFailed("the source changed", key="x")
        self.sent = 1
        return b"y" * (2 << 20)


def test_a_source_that_changes_mid_copy_leaves_nothing(sshd) -> None:
    url = sshd.url()
    place = _open(url)
    try:
        like = Entry("x", FILE, 4 << 20, 0, 0o644, "")
        with pytest.raises(PreconditionFailed):
            place.write("x", _Changing(), like=like, expect=None)  # type: ignore[arg-type]
        assert place.stat("x") is None
        # the link still serves calls after the cancelled one
        place.write("y", io.BytesIO(b"y"), like=_like("y", b"y"), expect=None)
    finally:
        place.close()
    temps = sshd.path(url) / ".accord" / "tmp"
    assert not [p for p in temps.rglob("*") if p.is_file()]


def test_errors_keep_their_kind_and_name_the_place(sshd) -> None:
    url = sshd.url()
    place = _open(url)
    try:
        first = place.write("a", io.BytesIO(b"1"), like=_like("a", b"1"), expect=None)
        with pytest.raises(PreconditionFailed) as caught:
            place.write("a", io.BytesIO(b"2"), like=_like("a", b"2"), expect=None)
        assert caught.value.key == "a" and caught.value.where == place.url
        stale = first._replace(version="1:2:3:4:5")
        with pytest.raises(PreconditionFailed):
            place.delete("a", expect=stale)
        assert place.stat("a") == first._replace(digest=None)
    finally:
        place.close()


def test_two_way_sync_through_the_agent(sshd, tmp_path: Path) -> None:
    local, url = tmp_path / "local", sshd.url()
    remote = sshd.path(url)
    local.mkdir()
    (local / "docs").mkdir()
    (local / "docs" / "a.txt").write_text("a\n")
    assert accord.sync(str(local), url).ok
    (remote / "docs" / "b.txt").write_text("from the server\n")
    (local / "docs" / "a.txt").write_text("a, edited\n")
    report = accord.sync(str(local), url)
    assert report.ok, report.summary()
    assert (local / "docs" / "b.txt").read_text() == "from the server\n"
    assert (remote / "docs" / "a.txt").read_text() == "a, edited\n"
    assert accord.sync(str(local), url).summary()["changed"] == 0


def _agents(sshd) -> set[int]:
    """The agents this test's sshd runs: processes below it, not others'
    (other suites on this machine run agents of their own)."""
    server = int((sshd.root.parent / "server.pid").read_text())
    found = subprocess.run(
        ["pgrep", "-f", "from accord.replicas.agent import main"],
        capture_output=True,
        text=True,
    ).stdout
    return {int(pid) for pid in found.split() if _below(int(pid), server)}


def _below(pid: int, ancestor: int) -> bool:
    try:
        while pid > 1:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent
            if pid == ancestor:
                return True
    except (OSError, ValueError, IndexError):
        pass  # gone meanwhile
    return False


def test_the_agent_killed_mid_run(sshd, tmp_path: Path) -> None:
    """The server-side process dies during a copy: the run stops with a
    clear error, nothing is half-written, and the next run completes."""
    local, url = tmp_path / "local", sshd.url()
    remote = sshd.path(url)
    local.mkdir()
    for index in range(40):
        (local / f"f{index:02}.bin").write_bytes(os.urandom(1 << 20))
    before = _agents(sshd)
    done = threading.Event()

    def kill_when_copying() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not done.is_set():
            if len(list(remote.glob("f*.bin"))) >= 3:
                killed = False
                for pid in _agents(sshd) - before:
                    with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                        os.kill(pid, signal.SIGKILL)
                        killed = True
                if killed:
                    return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_when_copying, daemon=True)
    killer.start()
    report = accord.mirror(str(local), url)
    done.set()
    killer.join()
    assert report.aborted and "lost" in report.aborted, report.aborted
    for copied in remote.glob("f*.bin"):
        assert copied.read_bytes() == (local / copied.name).read_bytes()
    # the lock left by the dead link names this (live) process: break it
    command = ["mirror", str(local), url, "-y", "-q", "--break-lock"]
    again = subprocess.run(
        [sys.executable, "-m", "accord", *command],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(p.name for p in remote.glob("f*.bin")) == sorted(
        p.name for p in local.glob("f*.bin")
    )
    assert not [p for p in (remote / ".accord" / "tmp").rglob("*") if p.is_file()]


def test_switching_transport_changes_nothing(sshd, tmp_path: Path) -> None:
    """The agent keeps nanosecond times, plain SFTP whole seconds: a run
    with the other transport re-reads digests and changes nothing (it must
    not take the truncated times for edits and push them back)."""
    local, url = tmp_path / "local", sshd.url()
    local.mkdir()
    (local / "a.txt").write_text("a\n")
    os.utime(local / "a.txt", ns=(1_700_000_000_123_456_789,) * 2)
    assert accord.sync(str(local), url).ok
    for transport in ("&agent=off", ""):
        report = accord.sync(str(local), url + transport)
        assert report.ok and report.summary()["changed"] == 0, report.summary()
        assert (local / "a.txt").stat().st_mtime_ns == 1_700_000_000_123_456_789


def test_agents_of_other_versions_unused_for_30_days_are_removed(sshd) -> None:
    cache = sshd.root.parent / "cache" / "accord"
    _open(sshd.url()).close()  # the cache folder exists
    stale, recent = cache / "agent-0000", cache / "agent-1111"
    old_zip = cache / "agent-2222.zip"  # as accord 0.1 kept them
    long_ago = time.time() - 40 * 86400
    for folder in (stale, recent):
        folder.mkdir()
        (folder / "MANIFEST").write_bytes(b"an agent of another accord")
    old_zip.write_bytes(b"an agent of another accord")
    for path in (stale / "MANIFEST", old_zip):
        os.utime(path, (long_ago, long_ago))
    _open(sshd.url()).close()
    assert not stale.exists()
    assert not old_zip.exists()
    assert recent.exists()
    digest, _ = agent_bundle()
    assert (cache / f"agent-{digest[:32]}" / "MANIFEST").exists()


def test_an_sftp_only_account_is_served_by_plain_sftp(tmp_path, monkeypatch) -> None:
    """A server that allows SFTP only (ForceCommand internal-sftp, as many
    hosting accounts): the agent cannot start; the run goes on over plain
    SFTP and says so once."""
    from fixtures._servers import start, stop

    monkeypatch.setenv("ACCORD_SSHD_EXTRA", "ForceCommand internal-sftp")
    folder = tmp_path / "sshd"
    folder.mkdir(mode=0o700)
    settings, env = start("sshd.sh", folder, "ACCORD_SSHD_DIR")
    try:
        local = tmp_path / "local"
        local.mkdir()
        (local / "a.txt").write_text("a\n")
        remote = Path(settings["SFTP_ROOT"]) / "data"
        url = (
            f"sftp://{settings['SFTP_USER']}@127.0.0.1:{settings['SFTP_PORT']}"
            f"{remote}?identity={settings['SSH_KEY']}"
            f"&known_hosts={settings['SSH_KNOWN_HOSTS']}"
        )
        done = subprocess.run(
            [sys.executable, "-m", "accord", "mirror", str(local), url, "--yes"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "allows sftp connections only" in done.stderr, done.stderr
        assert done.stderr.count("using plain SFTP") == 1
        assert (remote / "a.txt").read_text() == "a\n"
    finally:
        stop("sshd.sh", env)


def test_without_paramiko_the_agent_still_serves(sshd, tmp_path, monkeypatch) -> None:
    """paramiko is needed only for plain SFTP: the agent runs through the
    system's ssh without it, and plain SFTP says what to install."""
    from accord.errors import MissingDependency

    monkeypatch.setitem(sys.modules, "paramiko", None)  # import fails
    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_text("a\n")
    url = sshd.url()
    assert accord.mirror(str(local), url).ok
    assert (sshd.path(url) / "a.txt").read_text() == "a\n"
    place = open_replica(f"{sshd.url()}&agent=off")
    with pytest.raises(MissingDependency, match="needs paramiko") as caught:
        place.open(create=True)
    assert "accord[sftp]" in (caught.value.hint or "")


@pytest.mark.parametrize(
    "options",
    ["", "&python=python3&agent=on", "&accept_new_host_key=yes&config=/dev/null"],
)
def test_the_early_ssh_runs_what_the_place_would(sshd, options) -> None:
    """The command the CLI starts before importing the rest of accord is,
    byte for byte, the one the place would start: else it is not used."""
    url = sshd.url() + options
    place = SSHReplica.from_url(url)
    argv = ssh.ssh_command(place.sftp)
    assert argv is not None
    assert ssh_launch.url_argv(url) == [*argv, ssh_launch.boot_command(place.python)]
    assert ssh_launch.url_argv(sshd.url() + "&agent=off") is None
    assert ssh_launch.url_argv("sftp:///no-host") is None


def test_the_place_claims_the_ssh_started_early(sshd, monkeypatch) -> None:
    monkeypatch.setattr(ssh_launch, "_early", {})
    url = sshd.url()
    ssh_launch.start_early(["mirror", "/somewhere", url, "-y"])
    (early,) = ssh_launch._early.values()
    place = _open(url)
    try:
        assert isinstance(place.via, AgentReplica)
        assert place.via.link.channel is early
        assert ssh_launch._early == {}
        other = _open(url)  # later places start their own
        assert other.via.link.channel is not early
        other.close()
    finally:
        place.close()


def test_an_early_ssh_not_claimed_is_stopped_at_exit(sshd) -> None:
    """A command that ends before connecting (bad arguments, --help) leaves
    no ssh behind."""
    code = (
        "import sys; from accord.replicas import ssh_launch as s; "
        "s.start_early(sys.argv[1:]); "
        "print(next(iter(s._early.values())).process.pid)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "mirror", sshd.url()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    pid = int(done.stdout)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _as_early_ssh_starts(
    sshd, tmp_path, prints: str, *flags: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``accord mirror`` of a local folder to ``sshd`` in a new interpreter
    started with ``flags``, ``prints`` (Python, with ``argv``) run as it
    starts its ``ssh``."""
    code = (
        "import sys; import accord.replicas.ssh_launch as s; real = s.SSHProcess\n"
        "class Noted(real):\n"
        "    def __init__(self, argv):\n"
        f"{prints}"
        "        super().__init__(argv)\n"
        "s.SSHProcess = Noted\n"
        "sys.argv = ['accord', 'mirror', sys.argv[1], sys.argv[2], '--dry-run', '-q']\n"
        "from accord.__main__ import main; main()"
    )
    (tmp_path / "src").mkdir()
    done = subprocess.run(
        [sys.executable, *flags, "-c", code, str(tmp_path / "src"), sshd.url()],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ACCORD_STATE_DIR": str(tmp_path / "state"), **(env or {})},
    )
    return done


def test_the_command_starts_ssh_before_it_imports_the_cli(sshd, tmp_path) -> None:
    """``accord`` (and ``python -m accord``) start the ssh of an sftp://
    place before importing click and the commands."""
    prints = (
        "        print('cli imported' if 'accord.cli' in sys.modules else 'first')\n"
    )
    done = _as_early_ssh_starts(sshd, tmp_path, prints)
    assert done.stdout.splitlines()[:1] == ["first"], done.stderr


def test_the_early_ssh_starts_before_typing_and_shutil_load(sshd, tmp_path) -> None:
    """What runs before the early ``ssh`` starts is on the path every run
    over SSH waits for: ``import accord`` loads no ``typing``, and the
    ``ssh`` binary is found in ``$PATH`` without ``shutil``."""
    prints = (
        "        print(*[m for m in ('typing', 'shutil') if m in sys.modules])\n"
        "        print(argv[0])\n"
    )
    path = os.pathsep.join(p for p in sys.path if p)
    done = _as_early_ssh_starts(sshd, tmp_path, prints, "-S", env={"PYTHONPATH": path})
    assert done.stdout.splitlines()[:2] == ["", shutil.which("ssh")], done.stderr


def test_the_ssh_binary_is_found_as_shutil_finds_it(tmp_path, monkeypatch) -> None:
    """``$PATH`` in order: a folder named ``ssh`` and a file that may not
    be run are passed over, an empty entry is the current folder."""
    first, second, third = (tmp_path / name for name in ("a", "b", "c"))
    for folder in (first, second, third):
        folder.mkdir()
    (first / "ssh").mkdir()
    (second / "ssh").write_text("#!/bin/sh\n")  # not executable
    (third / "ssh").write_text("#!/bin/sh\n")
    (third / "ssh").chmod(0o755)
    path = os.pathsep.join(map(str, (first, second, third)))
    monkeypatch.setenv("PATH", path)
    assert ssh_launch._which("ssh") == shutil.which("ssh") == str(third / "ssh")
    monkeypatch.setenv("PATH", os.pathsep.join(map(str, (first, second))))
    assert ssh_launch._which("ssh") is shutil.which("ssh") is None
    monkeypatch.chdir(third)
    monkeypatch.setenv("PATH", os.pathsep + str(first))
    assert ssh_launch._which("ssh") == shutil.which("ssh") == "ssh"
    monkeypatch.setenv("PATH", "")
    assert ssh_launch._which("ssh") is shutil.which("ssh") is None
