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
the expected version is checked again. The replaced file is first
hard-linked into the trash (``hardlink@openssh.com``). Each thread gets its
own SFTP channel over the one SSH connection, so several transfers are in
flight at once; reads are prefetched and writes pipelined.

SFTP has no ``openat``: the server follows symbolic links in every path it
is given. So before each change (and each read), the folder it happens in
is resolved by the server (``REALPATH``) and must be that folder itself,
inside the root: a folder that is a link (swapped in since the scan, or
sent by a peer as data) is refused, never written or read through. A key
that would leave the root is refused before any request.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import posixpath
import stat as st
import threading
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from accord.capabilities import Capabilities
from accord.errors import (
    AlreadyExists,
    ConfigError,
    MissingDependency,
    NoSpace,
    NotEmpty,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    ReplicaError,
    Unreachable,
)
from accord.keys import IgnoreRules
from accord.model import DIR, FILE, LINK, Entry, Problem, Spot, join
from accord.replica import (
    DIGEST,
    META_DIR,
    Replica,
    TrashItem,
    check_digest,
    check_expected,
    check_key,
    check_run,
    link_refused,
)

if TYPE_CHECKING:
    import paramiko

__all__ = ["SFTPReplica"]


def _paramiko() -> Any:
    """paramiko, imported when a connection of its own is needed (it costs
    30 MiB; the agent through the system's ssh does not need it)."""
    try:
        import paramiko
    except ImportError:
        raise MissingDependency(
            "this sftp:// place needs paramiko: plain SFTP (?agent=off, or a "
            "server without Python), or no usable ssh command here",
            hint="pip install 'accord[sftp]'",
        ) from None
    return paramiko


_BLOCK = 1 << 20
_LISTERS = 4  # folders listed at once while scanning
_TRUE = ("1", "true", "yes", "on")
_NAME_MAX = 255  # bytes in one name: every common server file system


class SFTPReplica(Replica):
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
        settings = _ssh_config(host, config)
        self.alias = host  # as written: the system's ssh reads its config
        self.config_path = config or os.environ.get("ACCORD_SSH_CONFIG")
        self.host = settings.get("hostname", host)
        self.user = user or settings.get("user") or _local_user()
        self.port = port or int(settings.get("port", 22))
        self.identities = [identity] if identity else settings.get("identityfile", [])
        self.known_hosts = known_hosts
        self.accept_new_host_key = accept_new_host_key
        self.root = posixpath.normpath(path or "/")
        if self.root.startswith("/~"):
            self.root = self.root[2:].lstrip("/") or "."
        self.url = f"sftp://{self.user}@{host}:{self.port}/{self.root.lstrip('/')}"
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
            port=parts.port,
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

    def connect(self) -> None:
        """Open the SSH connection (open() does, first)."""
        paramiko = _paramiko()
        if self._client is not None:
            return
        client = paramiko.SSHClient()
        with contextlib.suppress(OSError):
            client.load_system_host_keys()
        if self.known_hosts:
            with contextlib.suppress(FileNotFoundError):
                client.load_host_keys(os.path.expanduser(self.known_hosts))
        policy = _Remember(self.known_hosts) if self.accept_new_host_key else _Refuse()
        client.set_missing_host_key_policy(policy)
        keys = [os.path.expanduser(k) for k in self.identities]
        try:
            client.connect(
                self.host,
                port=self.port,
                username=self.user,
                key_filename=[k for k in keys if os.path.exists(k)] or None,
                timeout=15,
                banner_timeout=15,
                auth_timeout=15,
            )
        except _UnknownHost as exc:
            raise ConfigError(
                f"the host key of {self.host}:{self.port} is not known "
                f"({exc.key_type} {exc.fingerprint}); nothing was done",
                hint="check the fingerprint with the server's owner, then add "
                "?accept_new_host_key=true to the URL once (or ssh to it)",
            ) from None
        except paramiko.BadHostKeyException as exc:
            raise ConfigError(
                f"the host key of {self.host} CHANGED: someone may be "
                "impersonating the server; nothing was done",
                hint="if the server was reinstalled, remove its old key from "
                f"known_hosts ({exc.expected_key.get_name()} key expected)",
            ) from None
        except paramiko.AuthenticationException as exc:
            raise PermissionDenied(
                f"the server refused our keys for user {self.user}: {exc}",
                where=self.url,
                hint="check the user, the key (IdentityFile) and the SSH agent",
            ) from None
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise Unreachable(
                f"cannot connect to {self.host}:{self.port}: {exc}",
                where=self.url,
                hint="check the host name, the port and the network",
            ) from None
        self._client = client
        _no_delay(client)

    def transport(self) -> paramiko.Transport:
        """The SSH connection (open() first), for other channels on it."""
        assert self._client is not None, "open() first"
        transport = self._client.get_transport()
        assert transport is not None
        return transport

    def _sftp(self) -> paramiko.SFTPClient:
        """This thread's SFTP channel (one per thread, one SSH connection)."""
        paramiko = _paramiko()
        channel = getattr(self._local, "sftp", None)
        if channel is None:
            assert self._client is not None, "open() first"
            try:
                channel = _exact_client().from_transport(self.transport())
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
        paramiko = _paramiko()
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

    # -- reading ----------------------------------------------------------
    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str]:
        """Folders are listed by several threads at once (one SFTP channel
        each), so the round trips of a deep tree overlap."""
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        get = known.get if known is not None else None
        with ThreadPoolExecutor(max_workers=_LISTERS) as pool:
            pending = {pool.submit(self._list, self.root): ("", self.root)}
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    prefix, folder = pending.pop(future)
                    try:
                        listing = future.result()
                    except Unreachable:
                        for other in pending:
                            other.cancel()
                        raise
                    except ReplicaError as exc:
                        yield Problem(
                            prefix, None, f"cannot list this folder: {exc.message}"
                        )
                        continue
                    for item in self._items(prefix, folder, listing, ignore):
                        if isinstance(item, Entry) and item.kind == DIR:
                            path = posixpath.join(folder, posixpath.basename(item.key))
                            pending[pool.submit(self._list, path)] = (item.key, path)
                        if (
                            get is not None
                            and isinstance(item, Entry)
                            and get(item.key) == item.version
                        ):
                            yield item.key
                        else:
                            yield item

    def _list(self, folder: str) -> list[Any]:
        with self._errors(folder):
            return list(self._sftp().listdir_attr(folder))

    def _items(
        self,
        prefix: str,
        folder: str,
        listing: list[Any],
        ignore: IgnoreRules | None,
    ) -> Iterator[Entry | Problem]:
        """The entries of one listed folder (ignored ones left out)."""
        for attrs in listing:
            name = attrs.filename
            if not prefix and name == META_DIR:
                continue
            key = join(prefix, name)
            entry = self._entry(key, attrs, posixpath.join(folder, name))
            if entry is None:
                yield Problem(key, None, "skipped: a special file")
                continue
            if entry.kind == DIR and name == META_DIR:
                continue  # a nested place's own folder: never synced
            if ignore and ignore.matches(key, entry.kind == DIR):
                continue
            yield entry

    def _entry(self, key: str, attrs: Any, path: str) -> Entry | None:
        mode = attrs.st_mode or 0
        mtime_ns = int(attrs.st_mtime or 0) * 1_000_000_000
        if st.S_ISREG(mode):
            size = attrs.st_size or 0
            version = f"{size}:{int(attrs.st_mtime or 0)}"
            return Entry(key, FILE, size, mtime_ns, mode & 0o7777, version)
        if st.S_ISDIR(mode):
            return Entry(key, DIR, 0, 0, mode & 0o7777, f"d{mode & 0o7777:o}")
        if st.S_ISLNK(mode):
            target = self._sftp().readlink(path) or ""
            return Entry(key, LINK, 0, mtime_ns, 0, f"l{target}", None, target)
        return None

    def stat(self, key: str) -> Entry | None:
        path = self._path(key)
        with self._errors(key):
            try:
                attrs = self._sftp().lstat(path)
            except FileNotFoundError:
                return None
            return self._entry(key, attrs, path)

    def digest(self, entry: Entry) -> Entry:
        if entry.kind != FILE:
            return entry
        with self._errors(entry.key), self.open_read(entry.key) as stream:
            hasher = hashlib.sha256()
            while block := stream.read(_BLOCK):
                hasher.update(block)
        now = self.stat(entry.key)
        if now is None:
            raise NotFound("vanished while being read", where=self.url, key=entry.key)
        return now._replace(digest=f"{DIGEST}:{hasher.hexdigest()}")

    def open_read(self, key: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        path = self._path(key)
        with self._errors(key):
            self._no_link(key, item=True)
            handle = self._sftp().open(path, "rb")
            handle.prefetch()
            return handle  # type: ignore[return-value]

    # -- writing ----------------------------------------------------------
    def _temp(self) -> str:
        folder = posixpath.join(self._meta, "tmp")
        if not getattr(self._local, "tmp_ready", False):
            self._makedirs(folder)
            self._local.tmp_ready = True
        return posixpath.join(folder, os.urandom(8).hex())

    def _makedirs(self, path: str) -> None:
        sftp = self._sftp()
        missing = []
        while path not in ("", "/", "."):
            try:
                sftp.stat(path)
                break
            except FileNotFoundError:
                missing.append(path)
                path = posixpath.dirname(path)
        for folder in reversed(missing):
            with contextlib.suppress(OSError):
                sftp.mkdir(folder)

    def write(
        self,
        key: str,
        data: IO[bytes],
        *,
        like: Entry,
        expect: Entry | None,
        trash: str | None = None,
    ) -> Entry:
        path = self._path(key)
        sftp = self._sftp()
        with self._errors(key, writing=True):
            temp = self._temp()
            try:
                digest, size = self._upload(sftp, data, temp)
                check_digest(like, digest, self.url, key)
                seconds = like.mtime_ns // 1_000_000_000 if like.mtime_ns else None
                mode = like.mode or 0o644
                _set_attributes(sftp, temp, mode, seconds)
                self._install(sftp, temp, key, path, expect, trash)
            except BaseException:
                with contextlib.suppress(Exception):
                    sftp.remove(temp)
                raise
        if seconds is None:  # the server chose the mtime: ask it
            done = self.stat(key)
            assert done is not None
            return done._replace(digest=digest)
        # what the server now holds, known without another round trip
        return Entry(
            key, FILE, size, seconds * 1_000_000_000, mode, f"{size}:{seconds}", digest
        )

    def _upload(
        self, sftp: paramiko.SFTPClient, data: IO[bytes], temp: str
    ) -> tuple[str, int]:
        hasher = hashlib.sha256()
        size = 0
        with sftp.open(temp, "wbx") as handle:
            handle.set_pipelined(True)
            while block := data.read(_BLOCK):
                hasher.update(block)
                handle.write(block)
                size += len(block)
        return f"{DIGEST}:{hasher.hexdigest()}", size

    def _install(
        self,
        sftp: paramiko.SFTPClient,
        temp: str,
        key: str,
        path: str,
        expect: Entry | None,
        trash: str | None,
    ) -> None:
        """Put ``temp`` at ``path`` if ``path`` still holds ``expect``."""
        self._no_link(key)
        if expect is not None:
            check_expected(self.stat(key), expect, self.url)
        else:
            try:
                sftp.rename(temp, path)  # a regular file: link + unlink, never replaces
            except OSError as exc:
                if self.stat(key) is not None:
                    raise PreconditionFailed(
                        "something appeared here during the copy; left alone",
                        where=self.url,
                        key=key,
                    ) from exc
                raise
            return
        if trash:
            self._keep(key, path, trash, link=True)
        sftp.posix_rename(temp, path)

    def make_dir(self, key: str, *, like: Entry, expect: Entry | None) -> Entry:
        path = self._path(key)
        with self._errors(key, writing=True):
            self._no_link(key)
            current = self.stat(key)
            if current is None:
                self._sftp().mkdir(path)
            elif current.kind != DIR:
                check_expected(current, expect, self.url)
            if like.mode:
                self._sftp().chmod(path, like.mode)
        done = self.stat(key)
        assert done is not None
        return done

    def make_link(
        self, key: str, *, like: Entry, expect: Entry | None, trash: str | None = None
    ) -> Entry:
        path = self._path(key)
        sftp = self._sftp()
        with self._errors(key, writing=True):
            if expect is None:
                # OpenSSH renames links with rename(2), which replaces: look first
                check_expected(self.stat(key), None, self.url)
            temp = self._temp()
            sftp.symlink(like.target or "", temp)
            try:
                self._install(sftp, temp, key, path, expect, trash)
            except BaseException:
                with contextlib.suppress(Exception):
                    sftp.remove(temp)
                raise
        done = self.stat(key)
        assert done is not None
        return done

    def set_meta(self, key: str, *, like: Entry, expect: Entry) -> Entry:
        path = self._path(key)
        with self._errors(key, writing=True):
            self._no_link(key)
            check_expected(self.stat(key), expect, self.url)
            if expect.kind != LINK:
                if like.mode:
                    self._sftp().chmod(path, like.mode)
                if expect.kind == FILE and like.mtime_ns:
                    seconds = like.mtime_ns // 1_000_000_000
                    self._sftp().utime(path, (seconds, seconds))
        done = self.stat(key)
        assert done is not None
        return done._replace(digest=expect.digest)

    def delete(self, key: str, *, expect: Entry, trash: str | None = None) -> None:
        path = self._path(key)
        with self._errors(key, writing=True):
            self._no_link(key)
            check_expected(self.stat(key), expect, self.url)
            if expect.kind == DIR:
                if self._sftp().listdir(path):
                    raise NotEmpty(
                        "the folder is not empty: something was added; left alone",
                        where=self.url,
                        key=key,
                    )
                self._sftp().rmdir(path)
            elif trash:
                self._keep(key, path, trash, link=False)
            else:
                self._sftp().remove(path)

    def move(self, key: str, new_key: str, *, expect: Entry) -> Entry:
        path, new_path = self._path(key), self._path(new_key)
        with self._errors(key, writing=True):
            self._no_link(key)
            self._no_link(new_key)
            check_expected(self.stat(key), expect, self.url)
            check_expected(self.stat(new_key), None, self.url)
            self._sftp().rename(path, new_path)
        done = self.stat(new_key)
        assert done is not None
        return done._replace(digest=expect.digest)

    def _keep(self, key: str, path: str, run: str, *, link: bool) -> None:
        """Move (or hard-link) what is at ``path`` into the trash of ``run``."""
        paramiko = _paramiko()
        sftp = self._sftp()
        run = check_run(run, self.url)
        kept = posixpath.join(self._meta, "trash", run, key)
        self._makedirs(posixpath.dirname(kept))
        if self.stat_path(kept):
            kept = f"{kept}.{os.urandom(4).hex()}"
        if link:
            try:
                sftp._request(  # the OpenSSH extension, not wrapped by paramiko
                    paramiko.sftp.CMD_EXTENDED,
                    "hardlink@openssh.com",
                    _raw(path),
                    _raw(kept),
                )
                return
            except OSError:
                pass  # no hard links: keep a copy instead
            with sftp.open(path, "rb") as source, sftp.open(kept, "wbx") as copy:
                source.prefetch()
                copy.set_pipelined(True)
                while block := source.read(_BLOCK):
                    copy.write(block)
            return
        sftp.rename(path, kept)

    def stat_path(self, path: str) -> bool:
        try:
            self._sftp().lstat(path)
        except FileNotFoundError:
            return False
        return True

    # -- accord's own files -------------------------------------------------
    def meta_create(self, name: str, data: bytes) -> bool:
        path = posixpath.join(self._meta, name)
        with self._errors(META_DIR, writing=True):
            self._makedirs(posixpath.dirname(path))
            try:
                with self._sftp().open(path, "wbx") as handle:
                    handle.write(data)
            except OSError as exc:
                if isinstance(exc, PermissionError) or not self.stat_path(path):
                    raise
                return False
        return True

    def meta_read(self, name: str) -> bytes | None:
        with self._errors(META_DIR):
            try:
                with self._sftp().open(posixpath.join(self._meta, name), "rb") as f:
                    return bytes(f.read())
            except FileNotFoundError:
                return None

    def meta_delete(self, name: str) -> None:
        with self._errors(META_DIR), contextlib.suppress(FileNotFoundError):
            self._sftp().remove(posixpath.join(self._meta, name))

    def meta_list(self, prefix: str) -> list[str]:
        with self._errors(META_DIR):
            try:
                names = self._sftp().listdir(posixpath.join(self._meta, prefix))
            except FileNotFoundError:
                return []
        return sorted(join(prefix.rstrip("/"), name) for name in names)

    def clean_temp(self) -> None:
        folder = posixpath.join(self._meta, "tmp")
        with self._errors(META_DIR), contextlib.suppress(FileNotFoundError):
            for name in self._sftp().listdir(folder):
                with contextlib.suppress(OSError):
                    self._sftp().remove(posixpath.join(folder, name))

    def flush(self) -> None:
        """Ask the server to sync (``fsync@openssh.com`` is per file; the
        rename after a complete upload is what makes an item visible)."""
        return None

    # -- trash ------------------------------------------------------------
    def _walk(self, top: str) -> Iterator[tuple[str, Any]]:
        sftp = self._sftp()
        stack = [top]
        while stack:
            folder = stack.pop()
            try:
                listing = sftp.listdir_attr(folder)
            except FileNotFoundError:
                continue
            for attrs in sorted(listing, key=lambda a: a.filename):
                path = posixpath.join(folder, attrs.filename)
                if st.S_ISDIR(attrs.st_mode or 0):
                    stack.append(path)
                else:
                    yield path, attrs

    def trash_list(self) -> Iterator[TrashItem]:
        base = posixpath.join(self._meta, "trash")
        with self._errors(META_DIR):
            for run in self.trash_runs():
                top = posixpath.join(base, run)
                for path, attrs in self._walk(top):
                    key = posixpath.relpath(path, top)
                    entry = self._entry(key, attrs, path)
                    if entry is not None:
                        yield TrashItem(run, key, entry)

    def trash_runs(self) -> list[str]:
        with self._errors(META_DIR):
            try:
                return sorted(self._sftp().listdir(posixpath.join(self._meta, "trash")))
            except FileNotFoundError:
                return []

    def trash_restore(self, item: TrashItem, key: str) -> Entry:
        path = self._path(key)
        run, old = check_run(item.run, self.url), check_key(item.key, self.url)
        source = posixpath.join(self._meta, "trash", run, old)
        with self._errors(key, writing=True):
            if self.stat(key) is not None:
                raise AlreadyExists(
                    "something is already there",
                    where=self.url,
                    key=key,
                    hint="restore it under another name with --to",
                )
            self._makedirs(posixpath.dirname(path))
            self._no_link(key)
            self._sftp().rename(source, path)
        done = self.stat(key)
        assert done is not None
        return done

    def trash_purge(self, run: str) -> int:
        top = posixpath.join(self._meta, "trash", check_run(run, self.url))
        with self._errors(META_DIR):
            return self._remove_tree(top)

    def forget_meta(self) -> None:
        with self._errors(META_DIR):
            self._remove_tree(self._meta)

    def _remove_tree(self, top: str) -> int:
        sftp = self._sftp()
        count = 0
        try:
            listing = sftp.listdir_attr(top)
        except FileNotFoundError:
            return 0
        for attrs in listing:
            path = posixpath.join(top, attrs.filename)
            if st.S_ISDIR(attrs.st_mode or 0):
                count += self._remove_tree(path)
            else:
                sftp.remove(path)
                count += 1
        sftp.rmdir(top)
        return count


def _set_attributes(
    sftp: paramiko.SFTPClient, path: str, mode: int, seconds: int | None
) -> None:
    """Mode and times in one SETSTAT request (chmod + utime would be two)."""
    paramiko = _paramiko()
    attr = paramiko.SFTPAttributes()
    attr.st_mode = mode
    if seconds is not None:
        attr.st_atime = attr.st_mtime = seconds
    sftp._request(paramiko.sftp.CMD_SETSTAT, _raw(path), attr)  # one round trip


def _raw(path: str) -> bytes:
    """A path as the server spells it: a name that is not UTF-8 was kept
    as surrogate escapes, which become its own bytes again."""
    return path.encode("utf-8", "surrogateescape")


def _text(raw: bytes) -> str:
    """A name from the server, byte for byte (see ``_raw``)."""
    return raw.decode("utf-8", "surrogateescape")


@functools.cache
def _exact_client() -> Any:
    """paramiko's SFTP client with names kept byte for byte: paramiko
    encodes and decodes paths as strict UTF-8, so a name that is not UTF-8
    could neither be listed nor written. Paths go out through ``_raw``;
    listed names, link targets and resolved paths come back through
    ``_text``."""
    paramiko = _paramiko()
    sftp = paramiko.sftp

    class ExactSFTPClient(paramiko.SFTPClient):  # type: ignore[misc]
        def _adjust_cwd(self, path: Any) -> Any:
            return super()._adjust_cwd(_raw(path) if isinstance(path, str) else path)

        def symlink(self, source: Any, dest: Any) -> None:
            super().symlink(_raw(source) if isinstance(source, str) else source, dest)

        def _names(self, kind: int, path: Any) -> list[str]:
            ptype, msg = self._request(kind, self._adjust_cwd(path))
            if ptype != sftp.CMD_NAME:
                raise sftp.SFTPError("Expected name response")
            return [_text(msg.get_string()) for _ in range(msg.get_int())]

        def normalize(self, path: Any) -> str:
            names = self._names(sftp.CMD_REALPATH, path)
            if len(names) != 1:
                raise sftp.SFTPError(f"Realpath returned {len(names)} results")
            return names[0]

        def readlink(self, path: Any) -> str | None:
            names = self._names(sftp.CMD_READLINK, path)
            return names[0] if names else None

        def listdir_attr(self, path: Any = ".") -> list[Any]:
            ptype, msg = self._request(sftp.CMD_OPENDIR, self._adjust_cwd(path))
            if ptype != sftp.CMD_HANDLE:
                raise sftp.SFTPError("Expected handle")
            handle = msg.get_binary()
            found = []
            try:
                while True:
                    try:
                        ptype, msg = self._request(sftp.CMD_READDIR, handle)
                    except EOFError:
                        break
                    if ptype != sftp.CMD_NAME:
                        raise sftp.SFTPError("Expected name response")
                    for _ in range(msg.get_int()):
                        name = _text(msg.get_string())
                        longname = _text(msg.get_string())
                        attrs = paramiko.SFTPAttributes._from_msg(msg, name, longname)
                        if name not in (".", ".."):
                            found.append(attrs)
            finally:
                self._request(sftp.CMD_CLOSE, handle)
            return found

    return ExactSFTPClient


def _no_delay(client: paramiko.SSHClient) -> None:
    """Send small packets at once (requests and replies are small)."""
    import socket

    transport = client.get_transport()
    sock = getattr(transport, "sock", None)
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]


# -- ssh configuration ---------------------------------------------------------
def _ssh_config(host: str, explicit: str | None) -> dict[str, Any]:
    """The ssh settings for ``host``: from OpenSSH itself (``ssh -G``) when
    it is installed, else parsed by paramiko."""
    path = explicit or os.environ.get("ACCORD_SSH_CONFIG") or "~/.ssh/config"
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        if explicit:
            raise ConfigError(f"ssh config file not found: {path}")
        path = ""
    resolved = _ssh_g(host, path)
    if resolved is not None:
        return resolved
    if not path:
        return {}
    paramiko = _paramiko()
    try:
        return dict(paramiko.SSHConfig.from_path(path).lookup(host))
    except (OSError, paramiko.SSHException) as exc:
        raise ConfigError(f"cannot read the ssh config {path}: {exc}") from exc


def _ssh_g(host: str, path: str) -> dict[str, Any] | None:
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


def _local_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "root"


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
