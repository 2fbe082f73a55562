"""Any fsspec filesystem as a place: ``memory://``, ``gcs://``, ``az://``, ...

A scheme that accord does not know itself but fsspec does (its registry of
known protocols) opens here. fsspec offers no conditional write and no
atomic rename in general, so this place claims only what it can honour:

* ``conditional_writes`` is off: the expected version is compared just
  before the write (a small race window remains against a concurrent writer
  of the same item; for S3 use ``s3://``, which has real conditions);
* writes go to ``.accord/tmp/`` first, and are then moved into place; on
  object stores a move is a copy and a delete, so ``atomic_replace`` is
  claimed only for filesystems fsspec marks as local;
* no symbolic links; modes are not kept; mtimes as the filesystem reports
  them (versions are ``size:mtime`` or the store's ETag/checksum when it
  gives one).

Links: a link the filesystem reports (fsspec's local filesystem does) is
skipped by the scan, with a problem, and never followed; on a local
filesystem each change and read first checks that the folder it happens in
is reached through no link (fsspec itself follows them). A key that would
leave the root is refused before any call.

Deleted and overwritten items go to ``.accord/trash/<run>/`` as elsewhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
from collections.abc import Iterator
from typing import IO, Any

import fsspec

from accord.capabilities import Capabilities
from accord.errors import (
    AlreadyExists,
    ConfigError,
    NotEmpty,
    NotFound,
    PermissionDenied,
    ReplicaError,
    Unreachable,
)
from accord.keys import IgnoreRules, nfc
from accord.model import DIR, FILE, LINK, Entry, Problem, join
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

__all__ = ["FsspecReplica", "knows"]

_SKIPPED = "skipped: a symbolic link or a special file (this place carries neither)"

_BLOCK = 1 << 20
_NAME_MAX = 255  # bytes in one name on a local file system


def knows(scheme: str) -> bool:
    """True when fsspec has an implementation registered for ``scheme``."""
    return scheme in fsspec.available_protocols()


class FsspecReplica(Replica):
    """A folder of an fsspec filesystem."""

    scheme = "fsspec"

    def __init__(self, url: str, **options: Any) -> None:
        protocol = url.partition("://")[0]
        try:
            self.fs = fsspec.filesystem(protocol, **options)
        except (ImportError, ValueError) as exc:
            raise ConfigError(
                f"fsspec cannot open '{protocol}://': {exc}",
                hint="install the fsspec backend for it (for example gcsfs, adlfs)",
            ) from exc
        self.root = self.fs._strip_protocol(url).rstrip("/") or "/"
        self.url = url.split("?", 1)[0]
        self.identity = f"{protocol}://{self.root}"
        local = "local" in getattr(self.fs, "protocol", ()) or protocol == "file"
        self._local = local  # paths are this machine's: links can be checked
        self._real_root = self.root
        self.capabilities = Capabilities(
            symlinks=False,
            modes=False,
            mtime_precision_ns=None,
            conditional_writes=False,
            atomic_replace=local,
            utf8_names=not local,
            max_name_bytes=_NAME_MAX if local else None,
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> FsspecReplica:
        return cls(url, **options)

    def _path(self, key: str) -> str:
        """The path of an item: ``key`` must name one inside the place."""
        return posixpath.join(self.root, check_key(key, self.url))

    def _own(self, rel: str) -> str:
        """The path of a folder being listed, or of accord's own files."""
        return posixpath.join(self.root, rel) if rel else self.root

    def _no_link(self, key: str, *, item: bool = False) -> None:
        """On a local filesystem, refuse ``key`` when the folder holding it
        (with ``item``: or the item itself) is reached through a link, which
        fsspec would follow, maybe out of the place."""
        check_key(key, self.url)
        if not self._local:
            return
        rel = key if item else posixpath.dirname(key)
        if rel and os.path.realpath(self._own(rel)) != posixpath.join(
            self._real_root, rel
        ):
            raise link_refused(key, self.url, item=item)

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        try:
            yield
        except ReplicaError:
            raise
        except FileNotFoundError as exc:
            raise NotFound("not found", where=self.url, key=key) from exc
        except PermissionError as exc:
            raise PermissionDenied(
                "permission denied", where=self.url, key=key
            ) from exc
        except (ConnectionError, TimeoutError) as exc:
            raise Unreachable(str(exc), where=self.url, key=key) from exc
        except OSError as exc:
            raise ReplicaError(str(exc), where=self.url, key=key) from exc

    # -- lifetime ---------------------------------------------------------
    def open(self, create: bool = False) -> None:
        with self._errors(""):
            if not self.fs.exists(self.root):
                if not create:
                    raise Unreachable("folder not found", where=self.url)
                self.fs.makedirs(self.root, exist_ok=True)
            self.fs.makedirs(self._own(f"{META_DIR}/tmp"), exist_ok=True)
            if self._local:
                self._real_root = os.path.realpath(self.root)

    def exists(self) -> bool:
        with contextlib.suppress(Exception):
            return bool(self.fs.exists(self.root))
        return True

    # -- reading ----------------------------------------------------------
    def _entry(self, key: str, info: dict[str, Any]) -> Entry:
        if info.get("type") == "directory":
            return Entry(key, DIR, 0, 0, 0o755, "d")
        size = int(info.get("size") or 0)
        mtime = info.get("mtime") or info.get("created") or info.get("LastModified")
        seconds = (
            mtime.timestamp() if hasattr(mtime, "timestamp") else float(mtime or 0)
        )
        stamp = info.get("ETag") or info.get("etag") or info.get("md5Hash")
        version = str(stamp).strip('"') if stamp else f"{size}:{seconds!r}"
        return Entry(key, FILE, size, int(seconds * 1e9), 0o644, version)

    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str]:
        get = known.get if known is not None else None
        stack = [""]
        while stack:
            prefix = stack.pop()
            try:
                with self._errors(prefix):
                    listing = self.fs.ls(self._own(prefix), detail=True)
            except ReplicaError as exc:
                yield Problem(prefix, None, f"cannot list this folder: {exc.message}")
                continue
            for info in listing:
                name = posixpath.basename(str(info["name"]).rstrip("/"))
                if (not prefix and name == META_DIR) or not name:
                    continue
                key = join(prefix, nfc(name))
                if info.get("islink") or info.get("type") not in ("file", "directory"):
                    yield Problem(key, None, _SKIPPED)
                    continue
                entry = self._entry(key, info)
                if ignore and ignore.matches(key, entry.kind == DIR):
                    continue
                if entry.kind == DIR:
                    stack.append(key)
                yield key if get is not None and get(key) == entry.version else entry

    def stat(self, key: str) -> Entry | None:
        path = self._path(key)
        with self._errors(key):
            try:
                info = self.fs.info(path)
            except FileNotFoundError:
                return None
        if info.get("islink"):  # never followed: what it leads to is not here
            return Entry(key, LINK, 0, 0, 0, "l", None, str(info.get("destination")))
        return self._entry(key, info)

    def digest(self, entry: Entry) -> Entry:
        if entry.kind != FILE:
            return entry
        hasher = hashlib.sha256()
        with self.open_read(entry.key) as stream:
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
            return self.fs.open(path, "rb")  # type: ignore[no-any-return]

    # -- writing ----------------------------------------------------------
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
        temp = self._own(f"{META_DIR}/tmp/{os.urandom(8).hex()}")
        with self._errors(key):
            hasher = hashlib.sha256()
            try:
                with self.fs.open(temp, "wb") as handle:
                    while block := data.read(_BLOCK):
                        hasher.update(block)
                        handle.write(block)
                digest = f"{DIGEST}:{hasher.hexdigest()}"
                check_digest(like, digest, self.url, key)
                self._no_link(key)
                check_expected(self.stat(key), expect, self.url)
                if expect is not None and trash:
                    self._keep(key, trash, copy=True)
                self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
                self.fs.mv(temp, path)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.fs.rm(temp)
                raise
        done = self.stat(key)
        assert done is not None
        return done._replace(digest=digest)

    def make_dir(self, key: str, *, like: Entry, expect: Entry | None) -> Entry:
        path = self._path(key)
        with self._errors(key):
            self._no_link(key)
            current = self.stat(key)
            if current is not None and current.kind != DIR:
                check_expected(current, expect, self.url)
            self.fs.makedirs(path, exist_ok=True)
        return Entry(key, DIR, 0, 0, 0o755, "d")

    def set_meta(self, key: str, *, like: Entry, expect: Entry) -> Entry:
        self._no_link(key)
        current = self.stat(key)
        check_expected(current, expect, self.url)
        assert current is not None
        return current._replace(digest=expect.digest)  # nothing to set here

    def delete(self, key: str, *, expect: Entry, trash: str | None = None) -> None:
        path = self._path(key)
        with self._errors(key):
            self._no_link(key)
            check_expected(self.stat(key), expect, self.url)
            if expect.kind == DIR:
                if self.fs.ls(path):
                    raise NotEmpty(
                        "the folder is not empty: something was added; left alone",
                        where=self.url,
                        key=key,
                    )
                self.fs.rmdir(path)
            elif trash:
                self._keep(key, trash, copy=False)
            else:
                self.fs.rm(path)

    def move(self, key: str, new_key: str, *, expect: Entry) -> Entry:
        path, new_path = self._path(key), self._path(new_key)
        with self._errors(key):
            self._no_link(key)
            self._no_link(new_key)
            check_expected(self.stat(key), expect, self.url)
            check_expected(self.stat(new_key), None, self.url)
            self.fs.makedirs(posixpath.dirname(new_path), exist_ok=True)
            self.fs.mv(path, new_path)
        done = self.stat(new_key)
        assert done is not None
        return done._replace(digest=expect.digest)

    def _keep(self, key: str, run: str, *, copy: bool) -> None:
        kept = self._own(f"{META_DIR}/trash/{check_run(run, self.url)}/{key}")
        self.fs.makedirs(posixpath.dirname(kept), exist_ok=True)
        if self.fs.exists(kept):  # trashed twice in one run: keep both
            kept = f"{kept}.{os.urandom(4).hex()}"
        if copy:
            self.fs.copy(self._path(key), kept)
        else:
            self.fs.mv(self._path(key), kept)

    # -- accord's own files -------------------------------------------------
    def _meta(self, name: str) -> str:
        return self._own(f"{META_DIR}/{name}")

    def meta_create(self, name: str, data: bytes) -> bool:
        path = self._meta(name)
        with self._errors(META_DIR):
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            try:
                with self.fs.open(path, "xb") as handle:
                    handle.write(data)
            except (FileExistsError, ValueError, NotImplementedError):
                if self.fs.exists(path):
                    return False
                with self.fs.open(path, "wb") as handle:  # no "x" mode here
                    handle.write(data)
        return True

    def meta_read(self, name: str) -> bytes | None:
        with self._errors(META_DIR):
            try:
                with self.fs.open(self._meta(name), "rb") as handle:
                    return bytes(handle.read())
            except FileNotFoundError:
                return None

    def meta_delete(self, name: str) -> None:
        with self._errors(META_DIR), contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._meta(name))

    def meta_list(self, prefix: str) -> list[str]:
        with self._errors(META_DIR):
            try:
                names = self.fs.ls(self._meta(prefix), detail=False)
            except FileNotFoundError:
                return []
        return sorted(
            join(prefix.rstrip("/"), posixpath.basename(str(n).rstrip("/")))
            for n in names
        )

    def clean_temp(self) -> None:
        with self._errors(META_DIR), contextlib.suppress(FileNotFoundError):
            for name in self.fs.ls(self._meta("tmp"), detail=False):
                self.fs.rm(name)

    # -- trash ------------------------------------------------------------
    def trash_list(self) -> Iterator[TrashItem]:
        for run in self.trash_runs():
            top = self._meta(f"trash/{run}")
            for path, info in sorted(self.fs.find(top, detail=True).items()):
                key = nfc(posixpath.relpath(self.fs._strip_protocol(path), top))
                yield TrashItem(run, key, self._entry(key, info))

    def trash_runs(self) -> list[str]:
        with self._errors(META_DIR):
            try:
                names = self.fs.ls(self._meta("trash"), detail=False)
            except FileNotFoundError:
                return []
        return sorted(posixpath.basename(str(n).rstrip("/")) for n in names)

    def trash_restore(self, item: TrashItem, key: str) -> Entry:
        path = self._path(key)
        run, old = check_run(item.run, self.url), check_key(item.key, self.url)
        with self._errors(key):
            self._no_link(key)
            if self.stat(key) is not None:
                raise AlreadyExists(
                    "something is already there",
                    where=self.url,
                    key=key,
                    hint="restore it under another name with --to",
                )
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            self.fs.mv(self._meta(f"trash/{run}/{old}"), path)
        done = self.stat(key)
        assert done is not None
        return done

    def trash_purge(self, run: str) -> int:
        top = self._meta(f"trash/{check_run(run, self.url)}")
        with self._errors(META_DIR):
            try:
                count = len(self.fs.find(top))
            except FileNotFoundError:
                return 0
            self.fs.rm(top, recursive=True)
        return count

    def forget_meta(self) -> None:
        with self._errors(META_DIR), contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._own(META_DIR), recursive=True)
