"""The FSDB mode over SFTP, against a real OpenSSH sshd on 127.0.0.1.

accord's agent runs accord's own code on the server, so it takes plantdb's
scan locks there with flock; plain SFTP cannot, and says so.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from plantdb_db import contents

from fixtures.cli import run_accord

pytestmark = [
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_accord(*args, timeout=180)


@pytest.fixture
def remote(sshd, made) -> tuple[str, Path]:
    """An empty plantdb database on the SSH server: its URL and its path."""
    url = sshd.url()
    path = sshd.path(url)
    shutil.copytree(made[1], path, symlinks=True)
    return url, path


def test_ignores_plantdb_locks__over_sftp_the_agent_takes_them(
    source, remote, plantdb_holds
) -> None:
    url, path = remote
    holder = plantdb_holds(path, "scan_000")
    done = cli("mirror", str(source), url, "--yes", "--lock-timeout", "1")
    assert done.returncode != 0
    assert "scan 'scan_000'" in done.stderr and "plantdb-user" in done.stderr
    assert not [p for p in path.iterdir() if p.name.startswith("scan_")]
    holder.release()
    done = cli("mirror", str(source), url, "--yes")
    assert done.returncode == 0, done.stderr
    assert contents(path) == contents(source)
    assert not list((path / ".locks").glob("*.lock"))
    assert (path / "users.json").read_bytes() != (source / "users.json").read_bytes()


def test_plain_sftp_cannot_lock_so_refuses_unless_no_scan_locks(source, remote) -> None:
    url, path = remote
    plain = url + "&agent=off"
    done = cli("mirror", str(source), plain, "--yes")
    assert done.returncode != 0
    assert "cannot take plantdb's scan locks" in done.stderr
    assert "--no-scan-locks" in done.stderr
    assert not [p for p in path.iterdir() if p.name.startswith("scan_")]
    done = cli("mirror", str(source), plain, "--yes", "--no-scan-locks")
    assert done.returncode == 0, done.stderr
    assert contents(path) == contents(source)
    assert not list(path.glob(".accord-new-*"))
