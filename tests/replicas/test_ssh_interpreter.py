"""The interpreter accord's agent runs on: what ``python3`` led to last time.

A ``python3`` that is a shim (pyenv's, asdf's) costs each start of the
agent a shell script's work; accord keeps which interpreter the name led
to on that server and runs it directly next time (``ssh_launch.py``).
Against the real OpenSSH sshd of the ``sshd`` fixture.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from accord.registry import open_replica
from accord.replicas import ssh_launch
from accord.replicas.ssh import AgentReplica, SSHReplica, ssh_command
from accord.replicas.ssh_launch import recalled_python, remember_python


def _open(url: str) -> SSHReplica:
    place = open_replica(url)
    assert isinstance(place, SSHReplica)
    place.open(create=True)
    assert isinstance(place.via, AgentReplica), place.notices
    return place


def _command(place: SSHReplica) -> str:
    """The remote command the place's ssh runs."""
    assert isinstance(place.via, AgentReplica)
    return str(place.via.link.channel.argv[-1])


def _argv(url: str) -> list[str]:
    place = open_replica(url)
    assert isinstance(place, SSHReplica)
    argv = ssh_command(place.sftp)
    assert argv is not None
    return argv


def test_the_interpreter_the_name_led_to_runs_directly_next_time(sshd) -> None:
    url = sshd.url()
    place = _open(url)
    try:
        assert _command(place).startswith("python3 -S -c ")  # asked by name
        executable = place.via.executable
        assert executable.startswith("/")
    finally:
        place.close()
    argv = _argv(url)
    assert recalled_python(argv, "python3") == executable
    other = sshd.url()  # another folder of the same server: the same memory
    place = _open(other)
    try:
        assert _command(place).startswith(f"{shlex.quote(executable)} -S -c ")
        # the command line's early ssh runs exactly this, so it is claimed
        assert ssh_launch.url_argv(other) == place.via.link.channel.argv
    finally:
        place.close()


def test_a_remembered_interpreter_that_fails_is_asked_by_name_again(
    sshd, tmp_path: Path
) -> None:
    url = sshd.url()
    argv = _argv(url)
    broken = tmp_path / "python3"
    broken.write_text("#!/bin/sh\nexit 3\n")  # starts, and fails at once
    broken.chmod(0o755)
    for gone in ("/nowhere/python3", str(broken)):
        remember_python(argv, "python3", gone)
        assert recalled_python(argv, "python3") == gone
        place = _open(url)  # no fallback to plain SFTP, no notice
        try:
            assert place.notices == ()
            assert _command(place).startswith("python3 -S -c ")
            executable = place.via.executable
        finally:
            place.close()
        assert recalled_python(argv, "python3") == executable  # what works now


def test_when_only_the_name_starts_it_accord_keeps_asking_by_name(sshd) -> None:
    """The interpreter that failed run directly is the one the name leads
    to (it needs what the shim sets up): no run tries it directly again."""
    argv = _argv(sshd.url())
    remember_python(
        argv, "python3", "/opt/py/bin/python3", failed="/opt/py/bin/python3"
    )
    assert recalled_python(argv, "python3") is None
    remember_python(argv, "python3", "/opt/py/bin/python3")
    assert recalled_python(argv, "python3") is None
    remember_python(
        argv, "python3", "/opt/other/bin/python3", failed="/opt/py/bin/python3"
    )
    assert recalled_python(argv, "python3") == "/opt/other/bin/python3"


def test_a_path_or_words_are_run_as_given(sshd) -> None:
    argv = _argv(sshd.url())
    for asked in ("/usr/bin/python3", "env python3", ""):
        remember_python(argv, asked, "/opt/py/bin/python3")
        assert recalled_python(argv, asked) is None
    remember_python(argv, "python3", "relative/python3")  # not a usable answer
    assert recalled_python(argv, "python3") is None


def test_each_server_and_name_has_its_own_memory(sshd) -> None:
    argv = _argv(sshd.url())
    remember_python(argv, "python3", "/opt/py/bin/python3")
    assert recalled_python(argv, "python3.11") is None
    assert recalled_python([*argv[:-1], "elsewhere"], "python3") is None


def test_a_memory_is_used_only_for_the_command_line_it_names(sshd) -> None:
    """Memories are files named by a checksum of the ssh command line and
    the name; each holds that whole key, so another's is never taken for
    it (were two checksums ever to collide)."""
    argv = _argv(sshd.url())
    other = [*argv[:-1], "elsewhere"]
    remember_python(argv, "python3", "/opt/py/bin/python3")
    mine, _ = ssh_launch._memory(argv, "python3") or ("", "")
    theirs, _ = ssh_launch._memory(other, "python3") or ("", "")
    Path(theirs).write_bytes(Path(mine).read_bytes())  # as if they collided
    assert recalled_python(other, "python3") is None
    assert recalled_python(argv, "python3") == "/opt/py/bin/python3"


def test_the_early_ssh_reads_the_memory_without_importing_hashlib(sshd) -> None:
    """The memory is read before the command line's ssh starts, first
    thing: with the standard library's cheapest parts only."""
    url = sshd.url()
    remember_python(_argv(url), "python3", "/opt/py/bin/python3")
    code = (
        "import sys\n"
        "from accord.replicas import ssh_launch as s\n"
        "argv = s.url_argv(sys.argv[1])\n"
        "print(argv[-1].split()[0], 'hashlib' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == ["/opt/py/bin/python3", "False"]
