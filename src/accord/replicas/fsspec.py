"""Any fsspec filesystem as a place: ``ftp://``, ``webdav://``, ``http://``...

A scheme that accord does not know itself but fsspec does opens here, the
way fsspec opens it (``fsspec_url``: ``url_to_fs``, storage options from the
query string and fsspec's configuration, a login from ``~/.netrc``). One
filesystem per thread (an FTP connection serves one request at a time).

fsspec offers no conditional write and no atomic replace in general, so the
place claims only what it can honour, and keeps accord's promises so:

* ``conditional_writes`` is off: the expected version is compared just
  before the change (a small window remains against a concurrent writer of
  the same item; for S3 use ``s3://``, which has real conditions). Where the
  filesystem can refuse to overwrite (WebDAV's ``MOVE`` with
  ``Overwrite: F``), a new item is moved into place with that refusal.
* Nothing is ever half-written under its real name: bytes go to
  ``.accord/tmp/`` and are checked against the source digest first. Where
  a rename cannot be trusted to replace in one step (``atomic_replace`` off:
  FTP, WebDAV, object stores), the old item is first moved aside (into the
  trash), then the new one moved in; a failure puts the old one back. For
  a moment the name is absent, never wrong.
* accord's own files (the lock) are created exclusively even where the
  filesystem has no exclusive create: a claim file is written, the folder
  listed, and the claim renamed into place only if no other claim is there.
* No symbolic links, no modes, mtimes as the filesystem reports them (not
  set by accord); versions are the ETag where one is given, else the size
  and mtime (and FTP's ``unique`` fact where the server gives it).
* An ``http(s)://`` folder (a directory listing page) is read-only: it can
  be the source of a mirror, nothing else.

Links: a link the filesystem reports (fsspec's local filesystem does) is
skipped by the scan, with a problem, and never followed; on a local
filesystem each change and read first checks that the folder it happens in
is reached through no link (fsspec itself follows them). A key that would
leave the root is refused before any call (``replica.check_key``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import IO, Any
from urllib.parse import unquote

from accord.capabilities import Capabilities
from accord.errors import (
    AlreadyExists,
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
from accord.replicas.fsspec_url import Target, connect, knows, parse

__all__ = ["FsspecReplica", "knows"]

_SKIPPED = "skipped: a symbolic link or a special file (this place carries neither)"

_BLOCK = 1 << 20
_NAME_MAX = 255  # bytes in one name on a local file system
#: protocols served as read-only places (a web server's listing pages)
_READ_ONLY = ("http", "https")
#: filesystems whose paths travel in URLs, where no control character may go
_URL_PATHS = ("http", "https", "webdav", "dav", "webdavs", "davs")
_CONTROL = "".join(map(chr, range(32))) + "\x7f"
_CLAIM = ".claim-"
#: filesystems whose folders are there or not (a new root's parent is checked)
_FOLDERS = ("file", "local", "ftp", "smb", *_URL_PATHS[2:])


class FsspecReplica(Replica):
    """A folder of an fsspec filesystem."""

    scheme = "fsspec"

    def __init__(self, url: str, **options: Any) -> None:
        self.target: Target = parse(url, options)
        self.root = self.target.root
        self.url = self.target.url
        where = self.target.where
        self.identity = where + ("" if where.endswith("://") else "@") + self.root
        self._local = threading.local()
        self._tmp_made = False  # .accord/tmp is known to exist
        self._urls = self.target.protocol in _READ_ONLY  # names are URLs there
        on_disk = self.target.protocol in ("file", "local")
        self._on_disk = on_disk  # paths are this machine's: links can be checked
        self._real_root = self.root
        self.capabilities = Capabilities(
            symlinks=False,
            modes=False,
            mtime_precision_ns=None,
            conditional_writes=False,
            atomic_replace=on_disk,
            read_only=self._urls,
            trash=not self._urls,
            empty_dirs=not self._urls,
            utf8_names=not on_disk,
            max_name_bytes=_NAME_MAX if on_disk else None,
            forbidden_chars=_CONTROL if self.target.protocol in _URL_PATHS else "",
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> FsspecReplica:
        return cls(url, **options)

    @property
    def fs(self) -> Any:
        """This thread's filesystem (connected on first use)."""
        fs = getattr(self._local, "fs", None)
        if fs is None:
            fs = self._local.fs = connect(self.target)
        return fs

    def persistent_id(self, version: str) -> str | None:
        """An ETag; or size, mtime and FTP's ``unique`` fact together (a
        rename keeps all three); not a bare size and mtime."""
        return None if version.count(":") == 1 else version

    def spots(self) -> tuple[Spot, ...]:
        """The root's path on this filesystem (protocol and non-secret
        options: host, port, user, base URL)."""
        return (Spot(self.target.where, tuple(p for p in self.root.split("/") if p)),)

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
        if not self._on_disk:
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
        except FileExistsError as exc:
            raise PreconditionFailed(
                "something is already there", where=self.url, key=key
            ) from exc
        except PermissionError as exc:
            raise PermissionDenied(
                "permission denied", where=self.url, key=key
            ) from exc
        except (ConnectionError, TimeoutError, EOFError) as exc:
            raise Unreachable(str(exc), where=self.url, key=key) from exc
        except OSError as exc:
            raise ReplicaError(str(exc), where=self.url, key=key) from exc
        except Exception as exc:  # a library's own error (ftplib, httpx...)
            if type(exc).__module__.split(".")[0] in ("builtins", "accord"):
                raise
            raise ReplicaError(
                f"{type(exc).__name__}: {exc}", where=self.url, key=key
            ) from exc

    def _writable(self, key: str) -> None:
        if self.capabilities.read_only:
            raise PermissionDenied(
                f"{self.target.protocol}:// places are read-only",
                where=self.url,
                key=key,
                hint="use it as the source of 'accord mirror'",
            )

    # -- lifetime ---------------------------------------------------------
    def open(self, create: bool = False) -> None:
        with self._errors(""):
            self.fs.invalidate_cache()
            if not self.fs.exists(self.root):
                if not create:
                    raise Unreachable("folder not found", where=self.url)
                self._writable("")
                self._makedirs(self.root)
            if self._on_disk:
                self._real_root = os.path.realpath(self.root)

    def close(self) -> None:
        self._local = threading.local()

    def exists(self) -> bool:
        with contextlib.suppress(Exception):
            return bool(self.fs.exists(self.root))
        return True

    def missing_parent(self) -> str | None:
        """On a filesystem with real folders (not an object store's key
        prefixes, nor memory's): the folder above a new root, when it is not
        there either."""
        if self.target.protocol not in _FOLDERS:
            return None
        parent = posixpath.dirname(self.root.rstrip("/"))
        if not parent or parent == self.root:
            return None
        with contextlib.suppress(Exception):  # else open() reports it
            if not self.fs.isdir(parent):
                return parent
        return None

    # -- reading ----------------------------------------------------------
    def _entry(self, key: str, info: dict[str, Any]) -> Entry:
        if info.get("type") == "directory":
            return Entry(key, DIR, 0, 0, 0o755, "d")
        size = int(info.get("size") or 0)
        mtime_ns = _mtime_ns(info)
        stamp = info.get("ETag") or info.get("etag") or info.get("md5Hash")
        if stamp:
            version = str(stamp).strip('"')
        else:
            unique = info.get("unique")  # FTP's MLSD: the file's identity
            version = f"{size}:{mtime_ns}" + (f":{unique}" if unique else "")
        return Entry(key, FILE, size, mtime_ns, 0o644, version)

    def _name(self, info: dict[str, Any]) -> str:
        name = posixpath.basename(str(info["name"]).rstrip("/"))
        return unquote(name) if self._urls else name

    def _listing(self, prefix: str) -> list[dict[str, Any]]:
        path = self._own(prefix)
        if self._urls:
            path += "/"  # links on a listing page are relative to the folder
        listing = self.fs.ls(path, detail=True)
        if self._urls:  # a listing page gives no sizes: ask for each file
            listing = [
                self.fs.info(i["name"]) if i.get("type") == "file" else i
                for i in listing
            ]
        return list(listing)

    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str]:
        get = known.get if known is not None else None
        with self._errors(""):
            self.fs.invalidate_cache()
        stack = [""]
        while stack:
            prefix = stack.pop()
            try:
                with self._errors(prefix):
                    listing = self._listing(prefix)
            except ReplicaError as exc:
                yield Problem(prefix, None, f"cannot list this folder: {exc.message}")
                continue
            for info in listing:
                name = self._name(info)
                if (not prefix and name == META_DIR) or not name:
                    continue
                key = join(prefix, name)
                if info.get("islink") or info.get("type") not in ("file", "directory"):
                    yield Problem(key, None, _SKIPPED, notice=True)
                    continue
                entry = self._entry(key, info)
                if entry.kind == DIR and name == META_DIR:
                    continue  # a nested place's own folder: never synced
                if ignore and ignore.matches(key, entry.kind == DIR):
                    continue
                if entry.kind == DIR:
                    stack.append(key)
                yield key if get is not None and get(key) == entry.version else entry

    def _fresh(self, path: str) -> None:
        """Forget what the filesystem remembers of ``path`` and its folder."""
        self.fs.invalidate_cache(path)
        self.fs.invalidate_cache(posixpath.dirname(path))

    def stat(self, key: str) -> Entry | None:
        path = self._path(key)
        with self._errors(key):
            self._fresh(path)
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
    def _makedirs(self, path: str) -> None:
        """Make the folder ``path`` and those above it; another thread or
        run making one meanwhile is no failure (FTP says "File exists")."""
        try:
            self.fs.makedirs(path, exist_ok=True)
        except Exception:
            self._fresh(path)
            if not self.fs.isdir(path):
                raise

    def _temp(self) -> str:
        folder = self._own(f"{META_DIR}/tmp")
        if not self._tmp_made:
            self._makedirs(folder)
            self._tmp_made = True
        return f"{folder}/{os.urandom(8).hex()}"

    def write(
        self,
        key: str,
        data: IO[bytes],
        *,
        like: Entry,
        expect: Entry | None,
        trash: str | None = None,
    ) -> Entry:
        self._writable(key)
        path = self._path(key)
        with self._errors(key):
            temp = self._temp()
            try:
                hasher = hashlib.sha256()
                with self.fs.open(temp, "wb") as handle:
                    while block := data.read(_BLOCK):
                        hasher.update(block)
                        handle.write(block)
                digest = f"{DIGEST}:{hasher.hexdigest()}"
                check_digest(like, digest, self.url, key)
                self._no_link(key)
                self._makedirs(posixpath.dirname(path))
                self._install(temp, key, expect, trash)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.fs.rm(temp)
                raise
        done = self.stat(key)
        if done is None:
            raise NotFound("vanished once written", where=self.url, key=key)
        return done._replace(digest=digest)

    def _install(
        self, temp: str, key: str, expect: Entry | None, trash: str | None
    ) -> None:
        """Move ``temp`` to ``key`` once ``key`` holds what ``expect`` says."""
        path = self._path(key)
        check_expected(self.stat(key), expect, self.url)
        if expect is None:
            self._rename(temp, path, replace=False)
            return
        if self.capabilities.atomic_replace:
            if trash:
                self._keep(key, trash, copy=True)
            self._rename(temp, path, replace=True)
            return
        # no atomic replace: the old item steps aside first, and comes back
        # if the new one cannot go in
        aside = self._keep(key, trash, copy=False) if trash else self._temp()
        if not trash:
            self._rename(path, aside, replace=False)
        try:
            self._rename(temp, path, replace=False)
        except BaseException:
            with contextlib.suppress(Exception):
                self._rename(aside, path, replace=False)
            raise
        if not trash:
            with contextlib.suppress(Exception):
                self.fs.rm(aside)

    def _rename(self, source: str, target: str, *, replace: bool) -> None:
        """Rename on the server; without ``replace``, refuse to overwrite
        where the filesystem can (WebDAV), else the caller checked first."""
        client = getattr(self.fs, "client", None)
        move = getattr(client, "move", None)
        if not replace and callable(move) and "webdav" in type(client).__module__:
            try:
                move(source, target, overwrite=False)
            except Exception as exc:
                if "exist" in str(exc).lower() or "412" in str(exc):
                    raise FileExistsError(target) from exc
                raise
        else:
            self.fs.mv(source, target)
        self._fresh(source)
        self._fresh(target)

    def make_dir(self, key: str, *, like: Entry, expect: Entry | None) -> Entry:
        self._writable(key)
        path = self._path(key)
        with self._errors(key):
            self._no_link(key)
            current = self.stat(key)
            if current is not None and current.kind != DIR:
                check_expected(current, expect, self.url)
            self._makedirs(path)
        return Entry(key, DIR, 0, 0, 0o755, "d")

    def set_meta(self, key: str, *, like: Entry, expect: Entry) -> Entry:
        self._writable(key)
        self._no_link(key)
        current = self.stat(key)
        check_expected(current, expect, self.url)
        assert current is not None
        return current._replace(digest=expect.digest)  # nothing to set here

    def delete(self, key: str, *, expect: Entry, trash: str | None = None) -> None:
        self._writable(key)
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
                self._fresh(path)
            elif trash:
                self._keep(key, trash, copy=False)
            else:
                self.fs.rm(path)
                self._fresh(path)

    def move(self, key: str, new_key: str, *, expect: Entry) -> Entry:
        self._writable(key)
        path, new_path = self._path(key), self._path(new_key)
        with self._errors(key):
            self._no_link(key)
            self._no_link(new_key)
            check_expected(self.stat(key), expect, self.url)
            check_expected(self.stat(new_key), None, self.url)
            self._makedirs(posixpath.dirname(new_path))
            self._rename(path, new_path, replace=False)
        done = self.stat(new_key)
        if done is None:
            raise NotFound("vanished once moved", where=self.url, key=new_key)
        return done._replace(digest=expect.digest)

    def _keep(self, key: str, run: str, *, copy: bool) -> str:
        """Put ``key`` (or a copy) into the trash of ``run``; where it went."""
        kept = self._own(f"{META_DIR}/trash/{check_run(run, self.url)}/{key}")
        self._makedirs(posixpath.dirname(kept))
        if self.fs.exists(kept):  # trashed twice in one run: keep both
            kept = f"{kept}.{os.urandom(4).hex()}"
        if copy:
            self.fs.copy(self._path(key), kept)
        else:
            self._rename(self._path(key), kept, replace=False)
        return kept

    # -- accord's own files -------------------------------------------------
    def _meta(self, name: str) -> str:
        return self._own(f"{META_DIR}/{name}")

    def meta_create(self, name: str, data: bytes) -> bool:
        self._writable(META_DIR)
        path = self._meta(name)
        with self._errors(META_DIR):
            self._makedirs(posixpath.dirname(path))
            if self.capabilities.atomic_replace:  # a local disk: O_EXCL
                try:
                    with self.fs.open(path, "xb") as handle:
                        handle.write(data)
                except FileExistsError:
                    return False
                return True
            return self._claim(path, data)

    def _claim(self, path: str, data: bytes) -> bool:
        """Create ``path`` only if absent, with no exclusive create at hand:
        write a claim beside it, list the claims, and rename ours into place
        only if it is alone and nothing is there. Two runs at once both see
        each other's claim and both back off; never do both go ahead."""
        if self._there(path):
            return False
        claim = f"{path}{_CLAIM}{os.urandom(6).hex()}"
        with self.fs.open(claim, "wb") as handle:
            handle.write(data)
        try:
            folder, name = posixpath.split(path)
            self._fresh(claim)
            others = [
                n
                for n in self.fs.ls(folder, detail=False)
                if posixpath.basename(str(n).rstrip("/")).startswith(name + _CLAIM)
                and posixpath.basename(str(n)) != posixpath.basename(claim)
            ]
            if others or self._there(path):
                return False
            self._rename(claim, path, replace=False)
            claim = ""
            return True
        finally:
            if claim:
                with contextlib.suppress(Exception):
                    self.fs.rm(claim)

    def _there(self, path: str) -> bool:
        self._fresh(path)
        return bool(self.fs.exists(path))

    def meta_read(self, name: str) -> bytes | None:
        with self._errors(META_DIR):
            self._fresh(self._meta(name))
            try:
                with self.fs.open(self._meta(name), "rb") as handle:
                    return bytes(handle.read())
            except FileNotFoundError:
                return None

    def meta_delete(self, name: str) -> None:
        if self.capabilities.read_only:
            return
        with self._errors(META_DIR), contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._meta(name))
            self._fresh(self._meta(name))

    def meta_list(self, prefix: str) -> list[str]:
        with self._errors(META_DIR):
            self._fresh(self._meta(prefix))
            try:
                names = self.fs.ls(self._meta(prefix), detail=False)
            except FileNotFoundError:
                return []
        return sorted(
            join(prefix.rstrip("/"), posixpath.basename(str(n).rstrip("/")))
            for n in names
            if _CLAIM not in posixpath.basename(str(n))
        )

    def clean_temp(self) -> None:
        if self.capabilities.read_only:
            return
        with self._errors(META_DIR), contextlib.suppress(FileNotFoundError):
            self._fresh(self._meta("tmp"))
            for name in self.fs.ls(self._meta("tmp"), detail=False):
                self.fs.rm(name)

    # -- trash ------------------------------------------------------------
    def trash_list(self) -> Iterator[TrashItem]:
        for run in self.trash_runs():
            top = self._meta(f"trash/{run}")
            for path, info in sorted(self.fs.find(top, detail=True).items()):
                key = posixpath.relpath(self.fs._strip_protocol(path), top)
                yield TrashItem(run, key, self._entry(key, info))

    def trash_runs(self) -> list[str]:
        if not self.capabilities.trash:
            return []
        with self._errors(META_DIR):
            self._fresh(self._meta("trash"))
            try:
                names = self.fs.ls(self._meta("trash"), detail=False)
            except FileNotFoundError:
                return []
        return sorted(posixpath.basename(str(n).rstrip("/")) for n in names)

    def trash_restore(self, item: TrashItem, key: str) -> Entry:
        self._writable(key)
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
            self._makedirs(posixpath.dirname(path))
            self._rename(self._meta(f"trash/{run}/{old}"), path, replace=False)
        done = self.stat(key)
        if done is None:
            raise NotFound("vanished once restored", where=self.url, key=key)
        return done

    def trash_purge(self, run: str) -> int:
        self._writable(META_DIR)
        top = self._meta(f"trash/{check_run(run, self.url)}")
        with self._errors(META_DIR):
            try:
                count = len(self.fs.find(top))
            except FileNotFoundError:
                return 0
            self.fs.rm(top, recursive=True)
            self.fs.invalidate_cache()
        return count

    def forget_meta(self) -> None:
        self._writable(META_DIR)
        self._tmp_made = False
        with self._errors(META_DIR), contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._own(META_DIR), recursive=True)
            self.fs.invalidate_cache()


def _mtime_ns(info: dict[str, Any]) -> int:
    """The mtime a listing gives, whatever its spelling: a datetime, seconds,
    FTP's ``modify`` (``YYYYmmddHHMMSS``), HTTP's ``Last-Modified``, ISO."""
    for name in ("mtime", "modified", "LastModified", "Last-Modified", "updated"):
        value = info.get(name)
        if value is not None:
            break
    else:
        value = info.get("modify") or info.get("created")
        if isinstance(value, str) and value[:14].isdigit():
            stamp = datetime.strptime(value[:14], "%Y%m%d%H%M%S")
            fraction = float(value[14:]) if value[14:15] == "." else 0.0
            seconds = stamp.replace(tzinfo=UTC).timestamp() + fraction
            return int(seconds * 1e9)
    if hasattr(value, "timestamp"):
        return int(value.timestamp() * 1e9)
    if isinstance(value, (int, float)):
        return int(value * 1e9)
    if isinstance(value, str):
        with contextlib.suppress(TypeError, ValueError):
            return int(parsedate_to_datetime(value).timestamp() * 1e9)
        with contextlib.suppress(ValueError):
            return int(datetime.fromisoformat(value).timestamp() * 1e9)
    return 0
