"""A folder on an SSH server: ``sftp://[user@]host[:port]/path``.

Connection settings follow OpenSSH: ``~/.ssh/config`` (HostName, User,
Port, IdentityFile; another file with ``?config=PATH`` or
``$ACCORD_SSH_CONFIG``), keys and the SSH agent, and ``known_hosts``
(``~/.ssh/known_hosts``, or ``?known_hosts=PATH``). An unknown host key is
refused with its fingerprint; ``?accept_new_host_key=true`` accepts and
records it (a *changed* key is always refused).

Versions are ``size:mtime`` (SFTP has no inode or ctime, and its mtime is
whole seconds), so the archived digest is trusted while they hold. Writes
go to ``.accord/tmp/`` on the server and are renamed into place: a plain
SFTP rename (never replaces: OpenSSH links then unlinks) for a new item,
``posix-rename@openssh.com`` (atomic replace) for an existing one, after
the expected version is checked again. Before its rename an upload is
synced to the server's disk (``fsync@openssh.com``, sent with its close);
a server without it is told once, at the end of the run. The replaced
file is first hard-linked into the trash (``hardlink@openssh.com``). Each
thread gets its own SFTP channel over the one SSH connection, so several
transfers are in flight at once; reads are prefetched and writes
pipelined.

SFTP has no ``openat``: the server follows symbolic links in every path it
is given. So before each change (and each read), the folder it happens in
is resolved by the server (``REALPATH``) and must be that folder itself,
inside the root: a folder that is a link (swapped in since the scan, or
sent by a peer as data) is refused, never written or read through. A key
that would leave the root is refused before any request.

This module holds the place's settings, its connection and its error
mapping; the rest is in ``sftp_read.py`` (scan, stat, reads),
``sftp_write.py`` (uploads, installs, deletes), ``sftp_own.py`` (accord's
own files, the trash), ``sftp_client.py`` (paramiko's client, byte-exact
names), ``sftp_connect.py`` (host keys) and ``ssh_settings.py`` (OpenSSH's
settings for a host).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat as st
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from accord.capabilities import Capabilities
from accord.errors import (
    ConfigError,
    NoSpace,
    NotFound,
    PermissionDenied,
    ReplicaError,
    Unreachable,
)
from accord.model import Spot
from accord.registry import url_host, url_port
from accord.replica import (
    META_DIR,
    Replica,
    check_key,
    link_refused,
)
from accord.replicas.sftp_client import exact_client, load_paramiko
from accord.replicas.sftp_connect import open_client
from accord.replicas.sftp_own import OwnFiles
from accord.replicas.sftp_read import Reading
from accord.replicas.sftp_write import Writing
from accord.replicas.ssh_settings import local_user, ssh_config

if TYPE_CHECKING:
    import paramiko

__all__ = ["SFTPReplica"]


_TRUE = ("1", "true", "yes", "on")
_NAME_MAX = 255  # bytes in one name: every common server file system


class SFTPReplica(Reading, Writing, OwnFiles, Replica):
    """A folder reached over SSH."""

    scheme = "sftp"

    def __init__(
        self,
        host: str,
        path: str,
        *,
        user: str | None = None,
        port: int | None = None,
        config: str | None = None,
        known_hosts: str | None = None,
        accept_new_host_key: bool = False,
        identity: str | None = None,
    ) -> None:
        if identity and not os.path.isfile(os.path.expanduser(identity)):
            # ssh only warns of it, then every key is refused or none offered
            raise ConfigError(
                f"no key file {identity} (?identity= of sftp://{url_host(host)})",
                hint="give the path of the private key to log in with",
            )
        settings = ssh_config(host, config)
        self.alias = host  # as written: the system's ssh reads its config
        self.asked = (user, port, identity)  # as the URL gives them
        self.config_path = config or os.environ.get("ACCORD_SSH_CONFIG")
        self.host = settings.get("hostname", host)
        self.user = user or settings.get("user") or local_user()
        self.port = port or int(settings.get("port", 22))
        self.identities = [identity] if identity else settings.get("identityfile", [])
        self.known_hosts = known_hosts
        self.accept_new_host_key = accept_new_host_key
        self.root = posixpath.normpath(path or "/")
        if self.root.startswith("/~"):
            self.root = self.root[2:].lstrip("/") or "."
        # an IPv6 address in brackets, as a URL writes it (the identity, which
        # names the pair's archive, stays as it always was)
        shown = url_host(host)
        self.url = f"sftp://{self.user}@{shown}:{self.port}/{self.root.lstrip('/')}"
        self.identity = f"sftp://{self.user}@{self.host}:{self.port}{self.root}"
        self.capabilities = Capabilities(
            mtime_precision_ns=1_000_000_000, max_name_bytes=_NAME_MAX
        )
        self._client: paramiko.SSHClient | None = None
        self._local = threading.local()
        self._channels: list[paramiko.SFTPClient] = []
        self._channels_lock = threading.Lock()
        self._meta = posixpath.join(self.root, META_DIR)
        self._real_root = self.root  # as the server resolves it (open() asks)
        # does the server sync an upload (fsync@openssh.com)? None: not known
        # yet on this connection; _unsynced: the run wrote a file it did not
        self._fsync: bool | None = None
        self._fsync_lock = threading.Lock()
        self._unsynced = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SFTPReplica:
        parts = urlsplit(url)
        if not parts.hostname:
            raise ConfigError(
                f"no host in {url!r}", hint="write sftp://[user@]host[:port]/path"
            )
        for name, values in parse_qs(parts.query).items():
            value = values[-1]
            if name == "accept_new_host_key":
                options.setdefault(name, value.lower() in _TRUE)
            elif name in ("config", "known_hosts", "identity"):
                options.setdefault(name, value)
            else:
                raise ConfigError(f"unknown sftp:// option {name!r}")
        return cls(
            parts.hostname,
            unquote(parts.path) or "/",
            user=unquote(parts.username) if parts.username else None,
            port=url_port(parts, url),
            **options,
        )

    # -- lifetime ---------------------------------------------------------
    def open(self, create: bool = False) -> None:
        self.connect()
        sftp = self._sftp()
        with self._errors(""):
            try:
                attrs = sftp.stat(self.root)
            except FileNotFoundError:
                if not create:
                    raise Unreachable(
                        "folder not found on the server",
                        where=self.url,
                        hint="check the path",
                    ) from None
                self._makedirs(self.root)
                attrs = sftp.stat(self.root)
            if not st.S_ISDIR(attrs.st_mode or 0):
                raise Unreachable("not a folder", where=self.url)
            self._real_root = sftp.normalize(self.root)

    @property
    def server(self) -> str:
        """The server, as the namespace of its paths (``Spot.space``)."""
        return f"sftp://{self.host.lower()}:{self.port}"

    def spots(self) -> tuple[Spot, ...]:
        """The root's path as written (a relative one lies in the user's
        home, which only the server knows), and once connected, its real
        path there (links and ``~`` resolved)."""
        parts = tuple(p for p in self.root.split("/") if p and p != ".")
        if self.root.startswith("/"):
            found = [Spot(self.server, parts)]
        else:
            found = [Spot(f"{self.server}/~{self.user}", parts)]
        if self._client is not None:
            with contextlib.suppress(OSError, ReplicaError):
                real = self._sftp().normalize(self.root)
                found.append(Spot(self.server, tuple(p for p in real.split("/") if p)))
        return tuple(found)

    def exists(self) -> bool:
        try:
            self.connect()
            self._sftp().stat(self.root)
        except FileNotFoundError:
            return False
        except OSError:
            return True  # let open() report it
        return True

    def missing_parent(self) -> str | None:
        """The server's folder above a root that is not there yet, when it
        is not there either (a relative root lies in the login folder,
        which is there)."""
        parent = posixpath.dirname(self.root.rstrip("/"))
        if not parent or parent == self.root:
            return None
        try:
            self.connect()
            attrs = self._sftp().stat(parent)
        except FileNotFoundError:
            return parent
        except OSError:
            return None  # let open() report it
        return None if st.S_ISDIR(attrs.st_mode or 0) else parent

    def connect(self) -> None:
        """Open the SSH connection (open() does, first)."""
        if self._client is None:
            self._client = open_client(self)

    def transport(self) -> paramiko.Transport:
        """The SSH connection (open() first), for other channels on it."""
        assert self._client is not None, "open() first"
        transport = self._client.get_transport()
        assert transport is not None
        return transport

    def _sftp(self) -> paramiko.SFTPClient:
        """This thread's SFTP channel (one per thread, one SSH connection)."""
        paramiko = load_paramiko()
        channel = getattr(self._local, "sftp", None)
        if channel is None:
            assert self._client is not None, "open() first"
            try:
                channel = exact_client().from_transport(self.transport())
            except (OSError, paramiko.SSHException, EOFError) as exc:
                raise Unreachable(
                    f"the connection to {self.host} was lost: {exc}", where=self.url
                ) from None
            self._local.sftp = channel
            with self._channels_lock:
                self._channels.append(channel)
        return channel

    def close(self) -> None:
        with self._channels_lock:
            for channel in self._channels:
                with contextlib.suppress(Exception):
                    channel.close()
            self._channels = []
        self._local = threading.local()
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        self._fsync = None  # the next connection asks again

    # -- paths and errors ---------------------------------------------------
    def _path(self, key: str) -> str:
        return posixpath.join(self.root, check_key(key, self.url))

    def _no_link(self, key: str, *, item: bool = False) -> None:
        """Refuse ``key`` when the folder holding it (with ``item``: or the
        item itself) is reached through a symbolic link: the server would
        follow it, maybe out of the place. One request, none at the root."""
        real = check_key(key, self.url)
        rel = real if item else posixpath.dirname(real)
        if not rel:
            return
        try:
            resolved = self._sftp().normalize(posixpath.join(self.root, rel))
        except FileNotFoundError:
            return  # nothing there to follow; the change itself will fail
        if resolved != posixpath.join(self._real_root, rel):
            raise link_refused(key, self.url, item=item)

    @contextlib.contextmanager
    def _errors(self, key: str, *, writing: bool = False) -> Iterator[None]:
        paramiko = load_paramiko()
        try:
            yield
        except ReplicaError:
            raise
        except FileNotFoundError as exc:
            raise NotFound("not found", where=self.url, key=key) from exc
        except PermissionError as exc:
            raise PermissionDenied(
                "permission denied",
                where=self.url,
                key=key,
                hint="check the permissions of this item and its folder",
            ) from exc
        except (EOFError, paramiko.SSHException, TimeoutError, ConnectionError) as exc:
            raise self._lost(exc, key) from exc
        except OSError as exc:
            if not self._connected():  # paramiko's "Socket is closed"
                raise self._lost(exc, key) from exc
            raise self._failure(exc, key, writing) from exc

    def _lost(self, exc: BaseException, key: str) -> Unreachable:
        return Unreachable(
            f"the connection to {self.host} was lost ({exc})",
            where=self.url,
            key=key,
            hint="run again when the server is reachable; nothing is half-written",
        )

    def _connected(self) -> bool:
        transport = self._client.get_transport() if self._client else None
        return transport is not None and transport.is_active()

    def _failure(self, exc: OSError, key: str, writing: bool) -> ReplicaError:
        if writing:
            return NoSpace(
                f"the server could not write ({exc}): disk full or over quota?",
                where=self.url,
                key=key,
                hint="free space on the server; nothing was half-written",
            )
        return ReplicaError(str(exc), where=self.url, key=key)
