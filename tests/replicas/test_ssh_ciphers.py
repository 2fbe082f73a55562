"""The cipher accord's ssh asks for: ssh's own default set with AES-GCM
first, on a CPU with AES instructions, when no file ssh reads names ciphers
(``ssh_launch.cipher_options``). The last test runs against the real OpenSSH
sshd of the ``sshd`` fixture.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import accord
from accord.registry import open_replica
from accord.replicas import ssh_launch
from accord.replicas.ssh import AgentReplica, SSHReplica, ssh_command

DEFAULT = [
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
]
X86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 {aes} avx2\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd {aes} pmull sha1\n"


@pytest.fixture
def ssh_binary() -> str:
    binary = shutil.which("ssh")
    if binary is None:
        pytest.skip("no ssh on this machine")
    return binary


@pytest.fixture
def cpu(tmp_path: Path, monkeypatch):
    """Point the module at a /proc/cpuinfo of our own; returns a setter."""

    def use(text: str) -> None:
        path = tmp_path / "cpuinfo"
        path.write_text(text)
        monkeypatch.setattr(ssh_launch, "_CPUINFO", str(path))

    use(X86.format(aes="aes"))
    return use


def _ciphers(argv: list[str]) -> list[str] | None:
    found = [word for word in argv if word.startswith("Ciphers=")]
    assert len(found) <= 1
    return found[0].split("=", 1)[1].split(",") if found else None


def test_aes_gcm_goes_first_and_nothing_else_moves() -> None:
    assert ssh_launch.gcm_first(DEFAULT) == [*DEFAULT[4:], *DEFAULT[:4]]
    assert ssh_launch.gcm_first(DEFAULT[4:] + DEFAULT[:4]) is None  # leads already
    assert ssh_launch.gcm_first(DEFAULT[:4]) is None  # none to put first


def test_aes_instructions_are_read_from_cpuinfo() -> None:
    assert ssh_launch.has_aes(X86.format(aes="aes"))
    assert not ssh_launch.has_aes(X86.format(aes="vaes"))
    assert ssh_launch.has_aes(ARM.format(aes="aes"))
    assert not ssh_launch.has_aes(ARM.format(aes=""))
    assert not ssh_launch.has_aes("")


def test_without_a_ciphers_line_the_default_set_is_asked_gcm_first(
    ssh_binary, cpu, tmp_path
) -> None:
    config = tmp_path / "config"
    config.write_text("Host *\n    ServerAliveCountMax 3\n")
    argv = ssh_launch.ssh_argv("example.org", config=str(config))
    assert argv is not None
    asked = _ciphers(argv)
    default = ssh_launch._default_ciphers(ssh_binary)
    assert default is not None and asked is not None
    assert sorted(asked) == sorted(default)  # the same set, nothing added
    assert asked[0].startswith("aes") and asked[0].endswith("-gcm@openssh.com")
    assert argv[-1] == "example.org"


@pytest.mark.parametrize(
    "text",
    [
        "Ciphers aes256-ctr\n",
        "Host elsewhere\n    ciphers=aes256-ctr\n",  # any block, any spelling
        "Host *\n  Include {folder}/more/*.conf\n",
        "Include = more/a.conf\n",  # relative: in the folder of ~/.ssh
    ],
)
def test_a_ciphers_line_anywhere_leaves_the_choice_to_ssh(
    ssh_binary, cpu, tmp_path, monkeypatch, text
) -> None:
    monkeypatch.setattr(ssh_launch, "_home", lambda: str(tmp_path))
    (tmp_path / ".ssh" / "more").mkdir(parents=True)
    (tmp_path / ".ssh" / "more" / "a.conf").write_text("Ciphers -chacha20*\n")
    config = tmp_path / "config"
    config.write_text(text.format(folder=tmp_path / ".ssh"))
    argv = ssh_launch.ssh_argv("example.org", config=str(config))
    assert argv is not None and _ciphers(argv) is None


def test_no_aes_instructions_no_change(ssh_binary, cpu, tmp_path) -> None:
    config = tmp_path / "config"
    config.write_text("")
    cpu(X86.format(aes="sse4_2"))
    argv = ssh_launch.ssh_argv("example.org", config=str(config))
    assert argv is not None and _ciphers(argv) is None


def test_an_ssh_of_its_own_build_is_left_alone(cpu) -> None:
    """Its system-wide settings may be in another folder than /etc/ssh."""
    assert ssh_launch.cipher_options("/opt/openssh/bin/ssh", None) == []


def test_a_place_connects_with_the_reordered_list(sshd, cpu, tmp_path) -> None:
    config = tmp_path / "config"
    config.write_text("Host *\n    ServerAliveCountMax 3\n")
    url = f"{sshd.url()}&config={config}"
    place = open_replica(url)
    assert isinstance(place, SSHReplica)
    argv = ssh_command(place.sftp)
    assert argv is not None
    asked = _ciphers(argv)
    assert asked is not None and asked[0].endswith("-gcm@openssh.com")
    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_bytes(b"a" * 100_000)
    assert accord.mirror(str(local), url).ok
    assert (sshd.path(url) / "a.txt").read_bytes() == b"a" * 100_000
    place.open()
    try:
        assert isinstance(place.via, AgentReplica), place.notices
        assert _ciphers(place.via.link.channel.argv) == asked
    finally:
        place.close()
