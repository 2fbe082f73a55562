"""An SSH connection of paramiko's own, for plain SFTP (and the agent
where the system has no usable ``ssh``), with OpenSSH's rules: keys from
the place's settings and the SSH agent, ``known_hosts`` checked; an unknown
host key is refused with its fingerprint unless the URL accepts new keys
(a *changed* key is always refused).
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from accord.errors import (
    ConfigError,
    PermissionDenied,
    Unreachable,
    connection_reason,
)
from accord.registry import url_host
from accord.replicas.sftp_client import load_paramiko, no_delay

if TYPE_CHECKING:
    import paramiko

    from accord.replicas.sftp import SFTPReplica

__all__ = ["open_client"]


def open_client(place: SFTPReplica) -> paramiko.SSHClient:
    """Connect to ``place``'s server."""
    paramiko = load_paramiko()
    client = paramiko.SSHClient()
    with contextlib.suppress(OSError):
        client.load_system_host_keys()
    if place.known_hosts:
        with contextlib.suppress(FileNotFoundError):
            client.load_host_keys(os.path.expanduser(place.known_hosts))
    policy = _Remember(place.known_hosts) if place.accept_new_host_key else _Refuse()
    client.set_missing_host_key_policy(policy)
    keys = [os.path.expanduser(k) for k in place.identities]
    try:
        client.connect(
            place.host,
            port=place.port,
            username=place.user,
            key_filename=[k for k in keys if os.path.exists(k)] or None,
            timeout=15,
            banner_timeout=15,
            auth_timeout=15,
        )
    except _UnknownHost as exc:
        raise ConfigError(
            f"the host key of {_address(place.host, place.port)} is not known "
            f"({exc.key_type} {exc.fingerprint}); nothing was done",
            hint="check the fingerprint with the server's owner, then add "
            "?accept_new_host_key=true to the URL once (or ssh to it)",
        ) from None
    except paramiko.BadHostKeyException as exc:
        raise ConfigError(
            f"the host key of {place.host} CHANGED: someone may be "
            "impersonating the server; nothing was done",
            hint="if the server was reinstalled, remove its old key from "
            f"known_hosts ({exc.expected_key.get_name()} key expected)",
        ) from None
    except paramiko.AuthenticationException as exc:
        raise PermissionDenied(
            f"the server refused our keys for user {place.user}: {exc}",
            where=place.url,
            hint="check the user, the key (IdentityFile) and the SSH agent",
        ) from None
    except (OSError, paramiko.SSHException, EOFError) as exc:
        raise Unreachable(
            f"cannot connect to {_address(place.host, place.port)}: "
            f"{connection_reason(exc) or exc}",
            where=place.url,
            hint="check the host name, the port and the network",
        ) from None
    no_delay(client)
    return client


def _address(host: str, port: int) -> str:
    """``host:port``, an IPv6 address in brackets."""
    return f"{url_host(host)}:{port}"


class _UnknownHost(Exception):
    def __init__(self, key: paramiko.PKey) -> None:
        super().__init__("unknown host key")
        self.key_type = key.get_name()
        self.fingerprint = key.fingerprint  # SHA256:...


class _Refuse:
    """Unknown host keys are refused, with the fingerprint to check."""

    def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
        raise _UnknownHost(key)


class _Remember:
    """Accept a new host key (asked for explicitly) and record it."""

    def __init__(self, path: str | None) -> None:
        self.path = os.path.expanduser(path or "~/.ssh/known_hosts")

    def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        folder = os.path.dirname(self.path)
        with contextlib.suppress(OSError):
            os.makedirs(folder, mode=0o700, exist_ok=True)
            with open(self.path, "a", encoding="ascii") as handle:
                handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
