"""OpenSSH's settings for a host: what ``ssh -G`` says, else what
paramiko reads in ``~/.ssh/config`` (HostName, User, Port, IdentityFile).
"""

from __future__ import annotations

import os
from typing import Any

from accord.errors import ConfigError
from accord.replicas.sftp_client import load_paramiko

__all__ = ["local_user", "ssh_config", "ssh_g"]


def ssh_config(host: str, explicit: str | None) -> dict[str, Any]:
    """The ssh settings for ``host``: from OpenSSH itself (``ssh -G``) when
    it is installed, else parsed by paramiko."""
    path = explicit or os.environ.get("ACCORD_SSH_CONFIG") or "~/.ssh/config"
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        if explicit:
            raise ConfigError(f"ssh config file not found: {path}")
        path = ""
    resolved = ssh_g(host, path)
    if resolved is not None:
        return resolved
    if not path:
        return {}
    paramiko = load_paramiko()
    try:
        return dict(paramiko.SSHConfig.from_path(path).lookup(host))
    except (OSError, paramiko.SSHException) as exc:
        raise ConfigError(f"cannot read the ssh config {path}: {exc}") from exc


def ssh_g(host: str, path: str) -> dict[str, Any] | None:
    """``ssh -G host``: what OpenSSH would use; None without ``ssh``."""
    import shutil
    import subprocess

    binary = shutil.which("ssh")
    if binary is None:
        return None
    argv = [binary, "-G", *(["-F", path] if path else []), "--", host]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or ["failed"]
        raise ConfigError(f"ssh cannot read its settings for {host}: {detail[0]}")
    settings: dict[str, Any] = {"identityfile": []}
    for line in done.stdout.splitlines():
        name, _, value = line.partition(" ")
        if name == "identityfile":
            settings[name].append(value)
        elif name in ("hostname", "user", "port"):
            settings[name] = value
    return settings


def local_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "root"
