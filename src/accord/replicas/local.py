"""A folder on a local disk (``/path``, ``~/path`` or ``file:///path``).

Versions are stat stamps ``dev:ino:size:mtime_ns:ctime_ns``: while a file's
stamp is unchanged its archived digest is trusted, and any edit, even one that
keeps the size and restores the mtime, moves the ctime and so the stamp.

Writes go to a temporary file under ``.accord/tmp`` (or, across a mount
point, next to the target), are hashed while written and checked against the
source digest, get their mtime and mode, and only then replace the target:
by ``link`` when nothing may be there (so a file that appeared meanwhile is
never clobbered), by ``rename`` otherwise, after the expected version has been
re-checked. The replaced file is first hard-linked into the trash.

Every change is made through a descriptor of the item's folder, opened just
before the change from the root without following a link (one ``openat2``
with ``RESOLVE_NO_SYMLINKS``, else one ``O_NOFOLLOW`` open per component): a
folder replaced by a link after the scan is refused, never written through.
A forked copier process keeps that descriptor while consecutive items are
in the same folder (``_near_folder``); a delete, move or new folder drops it.

Names are kept byte for byte: a key is the name as ``os`` lists it (an NFD
spelling stays NFD; bytes that are not UTF-8 are surrogate escapes), and a
new item is created under exactly that spelling.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import io
import itertools
import operator
import os
import stat as st
from collections.abc import Callable, Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any

from accord.capabilities import Capabilities
from accord.errors import (
    AccordError,
    AlreadyExists,
    LockHeld,
    NotEmpty,
    NotFound,
    PreconditionFailed,
    ReplicaError,
    TransientError,
    Unreachable,
    UnsafeName,
)
from accord.keys import IgnoreRules, fold
from accord.model import DIR, FILE, LINK, Entry, Problem, Spot, join, parent_of
from accord.replica import (
    META_DIR,
    HashingReader,
    Replica,
    Touched,
    TrashItem,
    Watching,
    WriteItem,
    check_digest,
    check_expected,
    check_key,
    check_run,
)
from accord.replicas import local_case, lockfile
from accord.replicas.local_at import (
    DIR_FLAGS,
    chmod_at,
    open_folder,
    rename_case,
    rename_new,
    same_folder,
    same_item,
    syncfs,
)
from accord.replicas.local_copy import (
    BIG,
    BLOCK,
    copy_exact,
    copy_into,
    copy_out,
    fill_new,
    lazy_shutil,
    read_exact,
    write_all,
)
from accord.replicas.local_entries import local_persistent_id, stamp, stat_entry
from accord.replicas.local_errors import translate
from accord.replicas.local_probe import case_by_listing, unicode_by_listing
from accord.replicas.where import local_spots

if TYPE_CHECKING:  # the agent runs this module on Python 3.8: no alias at run time
    #: a listed item: (name, key, version, stat, link target)
    _Item = tuple[str, str, str, os.stat_result, str | None]

__all__ = ["LocalReplica"]

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
#: a temporary file made beside its target (a folder on another device
#: than ``.accord/tmp``), and the note of the folders that have them
_BESIDE = ".accord-tmp-"
_BESIDE_NOTE = "beside"
#: a temporary file, new: never one that is there, never through a link
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
_PATH_MAX = 4095  # bytes in a path the kernel takes (4096 with the final NUL)
# what a trashed item's path adds: "/trash/<run stamp>/" and ".<8 hex>"
_TRASH_ROOM = len("/trash/20260101T000000Z-aaaaaa/") + 9
#: a folder opened to be listed (its items stat'ed through the descriptor)
_LIST_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
#: accord's own files that live only as long as the run that made them:
#: not fsync'ed (a power cut ends every run; see ``meta_create``)
_NOT_DURABLE = frozenset({"lock"})
_NAME = operator.itemgetter(0)
_KEY = operator.itemgetter(1)
_VERSION = operator.itemgetter(2)
_SPECIAL = {
    st.S_IFIFO: "a named pipe",
    st.S_IFSOCK: "a socket",
    st.S_IFCHR: "a character device",
    st.S_IFBLK: "a block device",
}


def _names_in(fd: int) -> list[str]:
    """The names in the folder ``fd`` (which may be an ``O_PATH``
    descriptor: it is opened again for reading, through ".")."""
    listing = os.open(".", _LIST_FLAGS, dir_fd=fd)
    try:
        return os.listdir(listing)
    finally:
        os.close(listing)


class LocalReplica(Replica):
    """A local folder."""

    scheme = "file"

    def __init__(
        self,
        path: str,
        *,
        case_sensitive: bool | None = None,
        unicode_exact: bool | None = None,
    ) -> None:
        self.root = os.path.abspath(os.path.expanduser(path))
        self.url = self.root
        self.identity = "file://" + os.path.realpath(self.root)
        self._case_sensitive = case_sensitive
        self._unicode_exact = unicode_exact  # None: probed; False: it normalizes
        self._caps: Capabilities | None = None  # probed when first asked for
        self._had_meta = True  # accord's folder was there when the place was opened
        self._meta = os.path.join(self.root, META_DIR)
        self._base = os.path.join(self.root, "")
        self._tmp = os.path.join(self._meta, "tmp")
        self._tmp_names = itertools.count()
        self._tmp_prefix = ""
        self._beside_noted: set[str] = set()  # see _note_beside
        #: temporary names of case-only renames under way, by folder key,
        #: which the listing leaves out (see ``local_case``)
        self._case_hidden: dict[str, set[str]] = {}
        self._same_device: dict[str, bool] = {}  # folder -> on the tmp's device
        self._root_fd: int | None = None  # opened on first write, kept for the run
        # in a copier process (see forked()): the folder last read from or
        # written in, kept open for the next item, and the temporary folder
        self._copier = False
        self._near: tuple[str, int] | None = None
        self._tmp_fd: int | None = None
        #: lock files held for another program's protocol: token -> fds, names
        self._held: dict[str, tuple[int, int, str, str | None]] = {}
        #: verdicts of probe files, from an earlier run and from this one:
        #: "case" / "unicode" -> "<folder's device:inode> <1 or 0>"
        self._recalled: dict[str, str] = {}
        self._learned: dict[str, str] = {}

    @classmethod
    def from_url(cls, url: str, **options: Any) -> LocalReplica:
        path = url[len("file://") :] if url.startswith("file://") else url
        if url.startswith("file://") and "?" in path:
            path, _, query = path.partition("?")
            for item in query.split("&"):
                name, _, value = item.partition("=")
                if name in ("case_sensitive", "unicode_exact"):
                    options.setdefault(name, value.lower() in ("1", "true", "yes"))
        return cls(path, **options)

    # -- lifetime ---------------------------------------------------------
    def exists(self) -> bool:
        return os.path.isdir(self.root)

    def spots(self) -> tuple[Spot, ...]:
        return local_spots(self.root)

    def persistent_id(self, version: str) -> str | None:
        """``dev:ino:size:mtime_ns``: what a rename keeps (not the ctime)."""
        return local_persistent_id(version)

    def open(self, create: bool = False) -> None:
        if not os.path.isdir(self.root):
            if os.path.exists(self.root):
                raise Unreachable("not a folder", where=self.url)
            if not create:
                raise Unreachable(
                    "folder not found",
                    where=self.url,
                    hint="check the path; if it is on a removable disk, mount it",
                )
            with self._errors(""):
                os.makedirs(self.root, exist_ok=True)
        self._close_root()
        self._caps = None
        self._had_meta = os.path.isdir(self._meta)

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        """Probed on first use, not when opened: a run refused by a guard
        before it looks at them leaves the place untouched."""
        if self._caps is None:
            self._caps = Capabilities(
                case_sensitive=self._probe_case(),
                unicode_exact=self._probe_unicode(),
                parallel_transfers=False,
                max_name_bytes=self._name_max(),
                # the longest path the kernel takes, less the trash's own part
                max_key_bytes=_PATH_MAX - len(os.fsencode(self._meta)) - _TRASH_ROOM,
            )
        return self._caps

    def _name_max(self) -> int:
        """The longest name this disk holds, in bytes (255 almost everywhere)."""
        for folder in (self.root, os.path.dirname(self.root)):
            with contextlib.suppress(OSError, ValueError):
                return int(os.pathconf(folder, "PC_NAME_MAX"))
        return 255

    @capabilities.setter
    def capabilities(self, caps: Capabilities) -> None:
        self._caps = caps

    def _probe_case(self) -> bool:
        """Whether names differing only by case are different names here."""
        if self._case_sensitive is not None:
            return self._case_sensitive
        with contextlib.suppress(OSError):
            found = case_by_listing(self.root)
            if found is not None:
                return found
            return self._case_by_probe()
        return True

    def _case_by_probe(self) -> bool:
        """Case sensitivity told by a probe file (see ``_probe``)."""
        name = f"case-probe-{os.urandom(4).hex()}"
        return self._probe_once("case", name, name.upper())

    def _probe_unicode(self) -> bool:
        """Whether two Unicode spellings of a name (NFC, NFD) are two names
        here: told by a name at the root that is not NFC, else by a probe.
        A disk that normalizes (macOS, ZFS with ``normalization``, ext4
        casefolded folders) takes both spellings for one name."""
        if self._unicode_exact is not None:
            return self._unicode_exact
        with contextlib.suppress(OSError):
            found = unicode_by_listing(self.root)
            if found is not None:
                return found
            tag = os.urandom(4).hex()
            return self._probe_once(
                "unicode", f"nfd-probe-e\u0301-{tag}", f"nfd-probe-\u00e9-{tag}"
            )
        return True

    def recall(self, facts: Mapping[str, str]) -> None:
        self._recalled = dict(facts)

    def learned(self) -> dict[str, str]:
        return dict(self._learned)

    def _probe_once(self, what: str, name: str, other: str) -> bool:
        """``_probe``'s verdict, found on an earlier run of the pair for
        this very folder (same device and inode: not a disk mounted in its
        place, not a folder made anew), else probed now; kept for the next
        run either way (``learned``)."""
        root = os.stat(self.root)
        where = f"{root.st_dev}:{root.st_ino}"
        known = self._recalled.get(what, "")
        if known[:-2] == where and known[-2:] in (" 1", " 0"):
            verdict = known[-1] == "1"
        else:
            verdict = self._probe(name, other)
        self._learned[what] = f"{where} {int(verdict)}"
        return verdict

    def _probe(self, name: str, other: str) -> bool:
        """Create ``name`` in accord's folder, look for it as ``other``, and
        remove it (and the folder, if made for it): True when ``other`` is
        not found, so the disk tells the two names apart."""
        made = not os.path.isdir(self._meta)
        os.makedirs(self._meta, exist_ok=True)
        probe = os.path.join(self._meta, name)
        try:
            with open(probe, "x"):
                pass
            return not os.path.exists(os.path.join(self._meta, other))
        finally:
            with contextlib.suppress(OSError):
                os.unlink(probe)
            if made:
                with contextlib.suppress(OSError):
                    os.rmdir(self._meta)

    def is_empty_root(self) -> bool:
        try:
            with os.scandir(self.root) as listing:
                return all(item.name == META_DIR for item in listing)
        except OSError:
            return False  # the scan reports why it cannot be listed

    # -- paths ------------------------------------------------------------
    def _path(self, key: str) -> str:
        return self._base + key if key else self.root

    def _root(self) -> int:
        if self._root_fd is None:
            self._root_fd = os.open(self.root, DIR_FLAGS)
        return self._root_fd

    def _close_root(self) -> None:
        self._drop_near()
        if self._tmp_fd is not None:
            fd, self._tmp_fd = self._tmp_fd, None
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._root_fd is not None:
            fd, self._root_fd = self._root_fd, None
            with contextlib.suppress(OSError):
                os.close(fd)

    def _parent_fd(self, key: str) -> tuple[int, str]:
        """A new descriptor of the folder holding ``key`` (the caller closes
        it) and the item's on-disk name in it. The folder is reached from the
        root without following a link: a folder that was replaced by a link
        since the scan is refused, never written through. A key that would
        leave the root is refused before anything is opened."""
        folder, _, name = check_key(key, self.url).rpartition("/")
        with self._refusing_links(key, "a folder on the path"):
            return open_folder(self._root(), folder), name

    def _near_folder(self, key: str) -> tuple[int, str]:
        """In a copier process: ``_parent_fd``, kept open while consecutive
        reads or writes are in the same folder (a copy phase goes folder by
        folder), and not closed by the caller. It was reached from the root
        without following a link when the first of them began; anything
        else that changes folders (delete, move, make_dir) drops it first."""
        if not self._copier:
            raise AssertionError("only a copier process keeps a folder open")
        folder, _, name = check_key(key, self.url).rpartition("/")
        near = self._near
        if near is not None and near[0] == folder:
            return near[1], name
        self._drop_near()
        try:
            fd = open_folder(self._root(), folder)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise self._swapped(key, "a folder on the path") from exc
        self._near = (folder, fd)
        return fd, name

    def _drop_near(self) -> None:
        near, self._near = self._near, None
        if near is not None:
            with contextlib.suppress(OSError):
                os.close(near[1])

    @contextlib.contextmanager
    def _refusing_links(self, key: str, what: str) -> Iterator[None]:
        """A link met where ``what`` was (ELOOP from a no-follow open):
        it was swapped in since the scan, so the item is left alone."""
        try:
            yield
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise self._swapped(key, what) from exc

    def _swapped(self, key: str, what: str) -> PreconditionFailed:
        """``what`` was swapped for a link since the scan: left alone."""
        return PreconditionFailed(
            f"{what} was replaced by a link; left alone", where=self.url, key=key
        )

    @contextlib.contextmanager
    def _folder_of(self, key: str) -> Iterator[tuple[int, str]]:
        """``_parent_fd`` for the length of a ``with`` block."""
        fd, name = self._parent_fd(key)
        try:
            yield fd, name
        finally:
            os.close(fd)

    def _stat_at(
        self, key: str, fd: int, name: str, digest: str | None = None
    ) -> Entry | None:
        """The entry of ``name`` in the folder ``fd`` (a file's with
        ``digest``, when known), or None."""
        try:
            stat = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return stat_entry(key, stat, name, fd, digest)

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """Translate OSError into accord's errors, once, at the boundary."""
        try:
            yield
        except ReplicaError:
            raise
        except OSError as exc:
            raise translate(exc, self.url, key) from exc

    # -- reading ----------------------------------------------------------
    fork_safe = True
    flush_in_thread = True
    #: scan() lists in key order: see Replica.scan_in_order
    scan_in_order = True

    def forked(self) -> None:
        """Now a copier process (single-threaded, copying one phase): with
        temporary names of its own, and a folder kept open between items."""
        self._tmp_prefix = ""  # temporary names unique to this process
        self._near = self._tmp_fd = None  # the parent's, not closed here
        self._copier = True

    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str | int]:
        """Every item, in key order (``Replica.scan_in_order``): each folder's
        names sorted, a folder's contents where ``name/`` sorts among its
        neighbours (``a``, ``a.txt``, then ``a/b``), so that the engine can
        merge the listing with the archive read in the same order. With a
        ``known`` that can pass runs of rows (``same``), a run of unchanged
        items is reported as its length."""
        get = known.get if known is not None else None
        same = getattr(known, "same", None)
        # an item a killed run left under a temporary name goes back first
        settled = local_case.settle(self._tmp, self._root)
        self._case_hidden = settled.hidden
        yield from local_case.problems(settled.stuck)  # those that cannot
        pending = [self._listed("", self.root, ignore)]
        while pending:
            for run in pending[-1]:
                kind = type(run)
                if kind is tuple:  # a folder's contents: (key, path)
                    pending.append(self._listed(run[0], run[1], ignore))
                    break
                if kind is Problem:
                    yield run
                    continue
                if same is not None and same(_pairs(run)):
                    yield len(run)
                    continue
                for _, key, version, stat, link in run:
                    if get is not None and get(key) == version:
                        yield key
                        continue
                    mode = stat.st_mode
                    kind = mode & 0o170000
                    if kind == st.S_IFREG:
                        yield Entry(
                            key,
                            FILE,
                            stat.st_size,
                            stat.st_mtime_ns,
                            mode & 0o7777,
                            version,
                        )
                    elif kind == st.S_IFDIR:
                        yield Entry(key, DIR, 0, 0, mode & 0o7777, version)
                    else:
                        yield Entry(
                            key, LINK, 0, stat.st_mtime_ns, 0, version, None, link
                        )
            else:
                pending.pop()

    def _listed(
        self, prefix: str, folder: str, ignore: IgnoreRules | None
    ) -> Iterator[list[_Item] | tuple[str, str] | Problem]:
        """One folder, listed and stat'ed through its descriptor, in the
        order of its keys: runs of items ``(name, key, version, stat, link
        target)``, split where the contents of a subfolder come (a
        ``(key, path)`` tuple, where ``name/`` sorts) or a problem does."""
        items: list[_Item] = []
        add = items.append
        #: what splits the runs: subfolders' contents, problems
        splits: list[tuple[str, str, Problem | None, str | None]] = []
        split = splits.append
        base = prefix + "/" if prefix else ""
        regular, directory, symlink = st.S_IFREG, st.S_IFDIR, st.S_IFLNK
        dev, on = -1, ""  # the last disk's number, and as a version begins
        try:
            fd = os.open(folder, _LIST_FLAGS | (os.O_NOFOLLOW if prefix else 0))
            try:
                with os.scandir(fd) as listing:
                    found = list(listing)
                hidden = self._case_hidden.get(prefix)
                if hidden:  # a case-only rename's temporary name: not an item
                    found = [item for item in found if item.name not in hidden]
                for item in found:
                    name = item.name
                    if not prefix and name == META_DIR:
                        continue  # accord's own folder
                    key = base + name
                    try:
                        stat = item.stat(follow_symlinks=False)
                    except OSError as exc:
                        if exc.errno != errno.ENOENT:
                            why = f"cannot read: {exc.strerror}"
                            split((name, key, Problem(key, None, why), None))
                        continue
                    mode = stat.st_mode
                    kind = mode & 0o170000
                    if kind == regular:
                        if ignore and ignore.matches(key, False):
                            continue
                        if stat.st_dev != dev:  # one folder: one disk, mostly
                            dev = stat.st_dev
                            on = f"{dev}:"
                        version = (
                            f"{on}{stat.st_ino}:{stat.st_size}:"
                            f"{stat.st_mtime_ns}:{stat.st_ctime_ns}"
                        )
                        add((name, key, version, stat, None))
                    elif kind == directory:
                        if name == META_DIR or (ignore and ignore.matches(key, True)):
                            continue  # a nested place's own folder: never synced
                        add((name, key, f"d{mode & 0o7777:o}", stat, None))
                        split((name + "/", key, None, f"{folder}/{name}"))
                    else:
                        if ignore and ignore.matches(key, False):
                            continue
                        if kind == symlink:
                            try:
                                target = os.readlink(name, dir_fd=fd)
                            except OSError as exc:
                                if exc.errno != errno.ENOENT:
                                    why = f"cannot read: {exc.strerror}"
                                    split((name, key, Problem(key, None, why), None))
                                continue
                            add((name, key, f"l{target}", stat, target))
                        else:
                            what = _SPECIAL.get(kind, "a special file")
                            problem = Problem(key, None, f"skipped: {what}")
                            split((name, key, problem, None))
            finally:
                os.close(fd)
        except OSError as exc:
            why = f"cannot list this folder: {exc.strerror}"
            return iter([Problem(prefix, None, why)])
        items.sort(key=_NAME)  # names are unique in a folder
        if not splits:
            return iter([items] if items else [])
        return _runs(items, splits)

    def stat(self, key: str) -> Entry | None:
        near = self._near
        if near is not None and near[0] == parent_of(key):
            return self._near_stat(key, near[1])
        path = self._path(check_key(key, self.url))
        try:
            stat = os.lstat(path)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        except OSError as exc:
            raise translate(exc, self.url, key) from exc
        return stat_entry(key, stat, path)

    def _near_stat(self, key: str, fd: int) -> Entry | None:
        """``stat`` through the folder a copier process holds open."""
        name = check_key(key, self.url).rpartition("/")[2]
        try:
            return self._stat_at(key, fd, name)
        except OSError as exc:
            raise translate(exc, self.url, key) from exc

    def digest(self, entry: Entry) -> Entry:
        if entry.kind != FILE:
            return entry
        for _ in range(3):
            with self._errors(entry.key), self.open_read(entry.key) as handle:
                reader = HashingReader(handle)
                while reader.read(BLOCK):
                    pass
            now = self.stat(entry.key)
            if now is None:
                raise NotFound(
                    "vanished while being read", where=self.url, key=entry.key
                )
            if now.version == entry.version or now.size == reader.size:
                return now._replace(digest=reader.digest)
            entry = now
        raise TransientError(
            "keeps changing while being read", where=self.url, key=entry.key
        )

    def open_read(self, key: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        """The file, reached without following a link: a folder or the file
        swapped for a link since the scan is refused, so a copy never
        carries what lies outside the tree."""
        if self._copier:
            return os.fdopen(self._open_near(key)[0], "rb", buffering=0)
        # nested, not parenthesised: this module also runs under Python 3.8
        with self._errors(key), self._folder_of(key) as (folder, name):  # noqa: SIM117
            with self._refusing_links(key, "the file"):
                fd = os.open(name, _READ_FLAGS, dir_fd=folder)
        # unbuffered: the engine reads in large blocks anyway
        return os.fdopen(fd, "rb", buffering=0)

    def _open_near(self, key: str) -> tuple[int, int, str]:
        """In a copier process: a descriptor of the file ``key``, opened
        through its folder kept open (``_near_folder``), never through a
        link, which the caller closes; then that folder's descriptor and
        the file's name in it."""
        try:
            folder, name = self._near_folder(key)
            return os.open(name, _READ_FLAGS, dir_fd=folder), folder, name
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise self._swapped(key, "the file") from exc
            raise translate(exc, self.url, key) from exc

    def _stamp_at(self, at: tuple[str, int, str]) -> str | None:
        """The version of the file at ``at`` (key, folder descriptor, name)
        now, looked up by its name, or None when no file is there."""
        try:
            return _file_stamp(at[1], at[2])
        except OSError as exc:
            raise translate(exc, self.url, at[0]) from exc

    # -- writing ----------------------------------------------------------
    # Every change is made relative to a descriptor of the item's folder,
    # opened (``_parent_fd``) just before the change, without following a
    # link on the way from the root: a folder swapped for a link after the
    # scan is refused, and nothing is ever written through it.
    def _tmp_for_process(self) -> None:
        """Make this process's folder in ``.accord/tmp``: concurrent writers
        never share one."""
        own = os.path.join(self._tmp, f"{os.getpid()}-{os.urandom(4).hex()}")
        os.makedirs(own, exist_ok=True)
        self._tmp_prefix = os.path.join(own, "")
        self._beside_noted = set()

    def _temp_for(self, key: str) -> tuple[str, int | None]:
        """A fresh temporary name for an item that will become ``key``: in
        ``.accord/tmp`` (on the same file system, so the final rename is
        atomic), else next to it; then also the descriptor of that folder,
        which the caller closes."""
        if not self._tmp_prefix:
            self._tmp_for_process()
        name = f"{self._tmp_prefix}{next(self._tmp_names)}"
        folder = parent_of(key)
        same = self._same_device.get(folder)
        if same:
            return name, None
        fd, _ = self._parent_fd(key)
        try:
            if same is None:
                same = self._on_tmp_device(fd)
                self._same_device[folder] = same
            if same:
                os.close(fd)
                return name, None
            self._note_beside(folder)
        except BaseException:
            os.close(fd)
            raise
        # beside the target, where another copier may write too: named
        # after this process's own folder as well
        own = os.path.basename(os.path.dirname(name))
        return f"{_BESIDE}{own}-{os.path.basename(name)}", fd

    def _on_tmp_device(self, fd: int) -> bool:
        """Whether the folder ``fd`` is on the device of ``.accord/tmp``
        (a rename from there into it is atomic)."""
        return os.stat(self._tmp).st_dev == os.fstat(fd).st_dev

    def _note_beside(self, folder: str) -> None:
        """Note, in this process's folder of ``.accord/tmp``, that it makes
        temporary files beside its targets in ``folder`` (another device):
        a run killed while writing one leaves it there, and ``clean_temp``
        finds it through this note (it never walks the tree)."""
        if folder in self._beside_noted:
            return
        note = os.open(
            f"{self._tmp_prefix}{_BESIDE_NOTE}",
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
            0o600,
        )
        try:
            write_all(note, folder.encode("utf-8", "surrogateescape") + b"\0")
        finally:
            os.close(note)
        self._beside_noted.add(folder)

    def write(
        self,
        key: str,
        data: IO[bytes],
        *,
        like: Entry,
        expect: Entry | None,
        trash: str | None = None,
    ) -> Entry:
        check_key(key, self.url)  # before a temporary file is made
        if self._copier and self._near_tmp(key):
            return self._write_near(key, data, like, expect, trash)
        with self._errors(key):
            temp, temp_fd = self._temp_for(key)
            try:
                digest = copy_into(data, temp, like, self.url, key, temp_fd)
                with self._folder_of(key) as (fd, name):
                    self._install(temp, temp_fd, key, fd, name, expect, trash)
                    done = self._stat_at(key, fd, name)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=temp_fd)
                raise
            finally:
                if temp_fd is not None:
                    os.close(temp_fd)
        assert done is not None
        return done._replace(digest=digest)

    def _near_tmp(self, key: str) -> bool:
        """In a copier process: True when ``key``'s folder is on the device
        of ``.accord/tmp``, whose folder of this process is then open."""
        folder = parent_of(key)
        same = self._same_device.get(folder)
        if same is None:
            with self._errors(key):
                if self._tmp_fd is None:
                    self._tmp_for_process()
                    self._tmp_fd = os.open(self._tmp_prefix, DIR_FLAGS)
                fd, _ = self._near_folder(key)
                same = os.fstat(fd).st_dev == os.fstat(self._tmp_fd).st_dev
            self._same_device[folder] = same
        return same and self._tmp_fd is not None

    def _write_near(
        self,
        key: str,
        data: IO[bytes],
        like: Entry,
        expect: Entry | None,
        trash: str | None,
    ) -> Entry:
        """``write`` in a copier process: the temporary file is named in the
        process's folder in ``.accord/tmp`` through its descriptor, and the
        target's folder is the one kept open (``_near_folder``)."""
        temp, temp_fd = str(next(self._tmp_names)), self._tmp_fd
        try:
            try:
                digest = copy_into(data, temp, like, self.url, key, temp_fd)
                fd, name = self._near_folder(key)
                self._install(temp, temp_fd, key, fd, name, expect, trash, beside=False)
                done = self._stat_at(key, fd, name)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=temp_fd)
                raise
        except ReplicaError:
            raise
        except OSError as exc:
            raise translate(exc, self.url, key) from exc
        assert done is not None
        return done._replace(digest=digest)

    def copy_new(self, source: Replica, key: str, entry: Entry) -> Entry | None:
        """In a copier process, a new file copied from another local folder
        (a copier's too) by descriptors alone, without ``write``'s streams:
        exactly ``entry.size`` bytes are read and hashed into a temporary
        file, the source's stamp is then checked unchanged (a file that grew,
        shrank or was replaced since the scan is left for the next run), the
        file gets its mtime and mode and is renamed into place only if
        nothing is there. None for anything else (a big file, a target
        folder on another device than ``.accord/tmp``): ``write`` does it."""
        if not (
            self._copier
            and entry.kind == FILE
            and entry.size < BIG
            and isinstance(source, LocalReplica)
            and source._copier
            and self._near_tmp(key)
        ):
            return None
        reading, folder, name = source._open_near(key)
        try:
            return self._copy_from(reading, source, (key, folder, name), entry)
        finally:
            os.close(reading)

    def _copy_from(
        self,
        reading: int,
        source: LocalReplica,
        at: tuple[str, int, str],
        entry: Entry,
    ) -> Entry:
        """``copy_new`` once the source file is open as ``reading`` (``at``:
        its key, and its folder's descriptor and name in it, in ``source``)."""
        key = at[0]
        temp: str | None = str(next(self._tmp_names))
        temp_fd = self._tmp_fd
        try:
            fd = os.open(temp, _NEW_FLAGS, 0o600, dir_fd=temp_fd)
            try:
                digest, short = copy_exact(reading, fd, entry.size, source.url, key)
                if short or source._stamp_at(at) != entry.version:
                    raise PreconditionFailed(
                        "the source changed while it was copied; left for the next run",
                        where=source.url,
                        key=key,
                    )
                check_digest(entry, digest, self.url, key)
                if entry.mtime_ns:
                    os.utime(fd, ns=(entry.mtime_ns, entry.mtime_ns))
                os.fchmod(fd, entry.mode or 0o644)
                folder, name = self._near_folder(key)
                self._install(
                    temp, temp_fd, key, folder, name, None, None, beside=False
                )
                temp = None  # in place: nothing to remove
                stat = os.fstat(fd)  # the rename moved its ctime: after it
            finally:
                os.close(fd)
        except BaseException as exc:
            if temp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=temp_fd)
            if isinstance(exc, OSError) and not isinstance(exc, ReplicaError):
                raise translate(exc, self.url, key) from exc
            raise
        return _new_entry(key, stat, digest)

    # -- small files, many at a time (the SSH agent's batches) --------------
    def write_batch(self, items: list[WriteItem]) -> list[Entry | AccordError]:
        """Several small files, each on its own (one failure stops no other).
        A new one (nothing expected there) goes by descriptors, as
        ``copy_new``: its bytes into a new temporary file in this process's
        folder of ``.accord/tmp``, hashed and checked against
        ``like.digest``, given its mtime and mode, then renamed into its
        folder only if nothing is there; the folder, reached from the root
        without following a link, stays open while the next items are in it
        too. Any other item (one that replaces, or a folder on another
        device than ``.accord/tmp``) goes through ``write``."""
        return self._each_near(items, self._write_small, "written")

    def _write_small(self, item: WriteItem, near: list[Any]) -> Entry:
        """One item of ``write_batch``; ``near`` its folder kept open."""
        key = item.key
        folder, _, name = check_key(key, self.url).rpartition("/")
        if item.expect is None:
            try:
                fd = near[1] if near[0] == folder else self._batch_folder(key, near)
                tmp = self._own_tmp_fd()
                same = self._same_device.get(folder)
                if same is None:
                    same = os.fstat(fd).st_dev == os.fstat(tmp).st_dev
                    self._same_device[folder] = same
            except OSError as exc:
                raise translate(exc, self.url, key) from exc
            if same:
                return self._put_new(key, item.data, item.like, (tmp, fd, name))
        return self.write(
            key,
            io.BytesIO(item.data),
            like=item.like,
            expect=item.expect,
            trash=item.trash,
        )

    def _batch_folder(self, key: str, near: list[Any]) -> int:
        """A descriptor of the folder holding ``key``, reached from the root
        without following a link, held in ``near`` (in place of the one
        held before) for the next items in it."""
        if near[1] >= 0:
            os.close(near[1])
            near[:] = [None, -1]
        fd, _ = self._parent_fd(key)
        near[:] = [parent_of(key), fd]
        return fd

    def _own_tmp_fd(self) -> int:
        """A descriptor of this process's folder in ``.accord/tmp`` (made
        on first use), kept for the run."""
        if self._tmp_fd is None:
            if not self._tmp_prefix:
                self._tmp_for_process()
            self._tmp_fd = os.open(self._tmp_prefix, DIR_FLAGS)
        return self._tmp_fd

    def _put_new(
        self, key: str, data: bytes, like: Entry, at: tuple[int, int, str]
    ) -> Entry:
        """``data`` as the new file ``name`` in the folder ``fd`` (``at``:
        the temporary folder's descriptor, then those two), on the device
        of the temporary folder; its entry, from the written file's own
        stat once it is in place."""
        tmp, fd, name = at
        temp: str | None = str(next(self._tmp_names))
        try:
            out = os.open(temp, _NEW_FLAGS, 0o600, dir_fd=tmp)
            try:
                digest = fill_new(data, out, like, self.url, key)
                self._rename_fresh(key, (tmp, temp), (fd, name))
                temp = None  # in place: nothing to remove
                stat = os.fstat(out)  # the rename moved its ctime: after it
            finally:
                os.close(out)
        except BaseException as exc:
            if temp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=tmp)
            if isinstance(exc, OSError) and not isinstance(exc, ReplicaError):
                raise translate(exc, self.url, key) from exc
            raise
        return _new_entry(key, stat, digest)

    def read_small(self, entries: list[Entry]) -> list[bytes | AccordError]:
        """Each small file of ``entries`` read whole, by descriptors: its
        folder reached from the root without following a link (and kept
        open while the next files are in it too), the file opened without
        following one, exactly its listed size read, then its stamp looked
        up by name again: a file that grew, shrank or was replaced since it
        was listed is refused (PreconditionFailed), left for the next run."""
        return self._each_near(entries, self._read_small, "read")

    def _rename_fresh(
        self, key: str, source: tuple[int, str], target: tuple[int, str]
    ) -> None:
        """A new file's temporary name renamed to its name, in folders given
        by descriptor, only if nothing is there (PreconditionFailed if
        something appeared during the copy)."""
        try:
            rename_new(source[1], target[1], source[0], target[0])
        except FileExistsError as exc:
            raise PreconditionFailed(
                "something appeared here during the copy; left alone",
                where=self.url,
                key=key,
            ) from exc

    def _each_near(self, items: list[Any], one: Any, done: str) -> list[Any]:
        """``one(item, near)`` for each item, its answer or the AccordError
        that stopped it (one failure stops no other); ``near`` is the
        folder open now (its key, its descriptor), closed at the end."""
        results: list[Any] = []
        near: list[Any] = [None, -1]
        try:
            for item in items:
                try:
                    results.append(one(item, near))
                except AccordError as exc:
                    results.append(exc)
                except ValueError as exc:  # a name the system cannot encode
                    why = f"cannot be {done} here ({exc})"
                    results.append(ReplicaError(why, where=self.url, key=item.key))
        finally:
            if near[1] >= 0:
                os.close(near[1])
        return results

    def _read_small(self, entry: Entry, near: list[Any]) -> bytes:
        """One file of ``read_small``; ``near`` its folder kept open."""
        key = entry.key
        folder, _, name = check_key(key, self.url).rpartition("/")
        try:
            fd = near[1] if near[0] == folder else self._batch_folder(key, near)
            reading = os.open(name, _READ_FLAGS, dir_fd=fd)
            try:
                data = read_exact(reading, entry.size)
            finally:
                os.close(reading)
            now = _file_stamp(fd, name)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise self._swapped(key, "the file") from exc
            raise translate(exc, self.url, key) from exc
        if data is None or now != entry.version:
            raise PreconditionFailed(
                "the source changed while it was copied; left for the next run",
                where=self.url,
                key=key,
            )
        return data

    def _install(
        self,
        temp: str,
        temp_fd: int | None,
        key: str,
        fd: int,
        name: str,
        expect: Entry | None,
        trash: str | None,
        *,
        beside: bool = True,
    ) -> None:
        """Put ``temp`` at ``name`` in the folder ``fd`` if it still holds
        ``expect``. A temporary file next to the target (``temp_fd`` given
        and ``beside``) must still be in the folder the target is in now."""
        if beside and temp_fd is not None and not same_folder(temp_fd, fd):
            raise PreconditionFailed(
                "the folder was replaced during the copy; left alone",
                where=self.url,
                key=key,
            )
        if expect is None:
            self._rename_fresh(key, (temp_fd, temp), (fd, name))
            return
        check_expected(self._stat_at(key, fd, name), expect, self.url)
        if trash:
            self._keep(key, fd, name, trash, link=True)
        os.rename(temp, name, src_dir_fd=temp_fd, dst_dir_fd=fd)

    def make_dir(self, key: str, *, like: Entry, expect: Entry | None) -> Entry:
        self._drop_near()
        with self._errors(key), self._folder_of(key) as (fd, name):
            try:
                os.mkdir(name, dir_fd=fd)
            except FileExistsError:
                current = self._stat_at(key, fd, name)
                if current is None or current.kind != DIR:
                    check_expected(current, expect, self.url)
            if like.mode:
                chmod_at(fd, name, like.mode)
            done = self._stat_at(key, fd, name)
        assert done is not None
        return done

    def make_link(
        self, key: str, *, like: Entry, expect: Entry | None, trash: str | None = None
    ) -> Entry:
        check_key(key, self.url)
        with self._errors(key):
            temp, temp_fd = self._temp_for(key)
            try:
                os.symlink(like.target or "", temp, dir_fd=temp_fd)
                if like.mtime_ns:
                    os.utime(
                        temp,
                        ns=(like.mtime_ns, like.mtime_ns),
                        dir_fd=temp_fd,
                        follow_symlinks=False,
                    )
                with self._folder_of(key) as (fd, name):
                    self._install(temp, temp_fd, key, fd, name, expect, trash)
                    done = self._stat_at(key, fd, name)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=temp_fd)
                raise
            finally:
                if temp_fd is not None:
                    os.close(temp_fd)
        assert done is not None
        return done

    def set_meta(self, key: str, *, like: Entry, expect: Entry) -> Entry:
        with self._errors(key), self._folder_of(key) as (fd, name):
            check_expected(self._stat_at(key, fd, name), expect, self.url)
            times = (like.mtime_ns, like.mtime_ns)
            if expect.kind == LINK:
                os.utime(name, ns=times, dir_fd=fd, follow_symlinks=False)
            else:
                if like.mode:
                    chmod_at(fd, name, like.mode)
                if expect.kind == FILE:
                    os.utime(name, ns=times, dir_fd=fd, follow_symlinks=False)
            done = self._stat_at(key, fd, name)
        assert done is not None
        return done._replace(digest=expect.digest)

    def delete(self, key: str, *, expect: Entry, trash: str | None = None) -> None:
        self._drop_near()
        with self._errors(key), self._folder_of(key) as (fd, name):
            check_expected(self._stat_at(key, fd, name), expect, self.url)
            if expect.kind == DIR:
                try:
                    os.rmdir(name, dir_fd=fd)
                except OSError as exc:
                    if exc.errno == errno.ENOTEMPTY:
                        raise NotEmpty(
                            "the folder is not empty: something was added; left alone",
                            where=self.url,
                            key=key,
                        ) from exc
                    raise
            elif trash:
                self._keep(key, fd, name, trash, link=False)
            else:
                os.unlink(name, dir_fd=fd)

    def move(self, key: str, new_key: str, *, expect: Entry) -> Entry:
        self._drop_near()
        # nested, not parenthesised: this module also runs on the SSH
        # agent, under Python 3.8
        with self._errors(key), self._folder_of(key) as (fd, name):  # noqa: SIM117
            with self._folder_of(new_key) as (new_fd, new_name):
                self._move_at(key, new_key, expect, (fd, name), (new_fd, new_name))
                done = self._stat_at(new_key, new_fd, new_name)
        assert done is not None
        return done._replace(digest=expect.digest)

    def _move_at(
        self,
        key: str,
        new_key: str,
        expect: Entry,
        source: tuple[int, str],
        target: tuple[int, str],
    ) -> None:
        """The move, with both folders open (see ``_folder_of``)."""
        (fd, name), (new_fd, new_name) = source, target
        check_expected(self._stat_at(key, fd, name), expect, self.url)
        if fold(key) == fold(new_key) and same_item(fd, name, new_fd, new_name):
            # one item under both spellings: a case-insensitive disk
            self._rename_case(parent_of(key), (fd, name), (new_fd, new_name))
            return
        check_expected(self._stat_at(new_key, new_fd, new_name), None, self.url)
        if expect.kind == DIR:
            os.rename(name, new_name, src_dir_fd=fd, dst_dir_fd=new_fd)
        else:
            rename_new(name, new_name, fd, new_fd)

    def _rename_case(
        self, folder: str, source: tuple[int, str], target: tuple[int, str]
    ) -> None:
        """``rename_case``, noted first in this process's folder of
        ``.accord/tmp``: a run killed between its two renames leaves the
        item under a temporary name, which the next listing puts back
        (``local_case``)."""
        (fd, name), (new_fd, new_name) = source, target
        if not self._tmp_prefix:
            self._tmp_for_process()
        temp = local_case.temp_name(self._tmp_prefix, next(self._tmp_names))
        local_case.note(self._tmp_prefix, folder, temp, name)
        rename_case(fd, name, new_fd, new_name, temp)

    def _keep(self, key: str, fd: int, name: str, run: str, *, link: bool) -> None:
        """Move (or hard-link) ``name`` in the folder ``fd`` into the trash of
        ``run``."""
        kept = os.path.join(self._meta, "trash", check_run(run, self.url), key)
        os.makedirs(os.path.dirname(kept), exist_ok=True)
        if os.path.lexists(kept):
            kept = f"{kept}.{os.urandom(4).hex()}"
        if link:
            try:
                os.link(name, kept, src_dir_fd=fd, follow_symlinks=False)
            except OSError:
                copy_out(fd, name, kept)
            return
        try:
            os.rename(name, kept, src_dir_fd=fd)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            copy_out(fd, name, kept)
            os.unlink(name, dir_fd=fd)

    def flush(self) -> None:
        syncfs(self.root)

    # -- accord's own files -------------------------------------------------
    def _meta_path(self, name: str) -> str:
        path = os.path.join(self._meta, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def meta_list(self, prefix: str) -> list[str]:
        folder = os.path.join(self._meta, prefix)
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise translate(exc, self.url, META_DIR) from exc
        return sorted(join(prefix.rstrip("/"), name) for name in names)

    def meta_create(self, name: str, data: bytes) -> bool:
        """Created exclusively, written, and made durable (fsync); except
        the run's lock, which matters only while its run lives (see
        "Durability" in docs/architecture.md: a lock after a power cut)"""
        with self._errors(META_DIR):
            try:
                fd = os.open(
                    self._meta_path(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL
                )
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                if name not in _NOT_DURABLE:
                    os.fsync(handle.fileno())
        return True

    def meta_read(self, name: str) -> bytes | None:
        try:
            with open(os.path.join(self._meta, name), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise translate(exc, self.url, META_DIR) from exc

    def meta_delete(self, name: str) -> None:
        with self._errors(META_DIR), contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self._meta, name))

    def watch(self, touched: Callable[[Touched], None]) -> Watching | None:
        """The operating system's notifications (``local_watch``);
        Unreachable when the folder does not exist (yet), Unsupported when
        it cannot be watched (the system's limit of watches)."""
        if not os.path.isdir(self.root):
            raise Unreachable(
                "folder not found",
                where=self.url,
                hint="check the path; if it is on a removable disk, mount it",
            )
        from accord.replicas.local_watch import FolderWatch

        return FolderWatch(self.root, touched)

    def close(self) -> None:
        """Remove the (empty) temporary folders this run's processes made."""
        for token in list(self._held):
            self.drop_lock(token)
        if self._tmp_prefix:  # this process's case-only renames are over
            own = os.path.basename(os.path.dirname(self._tmp_prefix))
            with contextlib.suppress(OSError):
                local_case.settle(self._tmp, self._root, done=own)
        self._tmp_prefix = ""
        self._close_root()
        with contextlib.suppress(OSError), os.scandir(self._tmp) as listing:
            for folder in listing:
                self._drop_beside_note(folder.name)
                with contextlib.suppress(OSError):
                    os.rmdir(folder.path)  # only empty ones go

    # -- another program's lock files ---------------------------------------
    def hold_lock(
        self,
        key: str,
        *,
        shared: bool,
        timeout: float,
        note_key: str | None = None,
        note: bytes = b"",
    ) -> str:
        folder, _, name = key.rpartition("/")
        note_name = None
        if note_key is not None:
            note_folder, _, note_name = note_key.rpartition("/")
            if note_folder != folder:
                raise UnsafeName(
                    "a lock's note must be beside it", where=self.url, key=note_key
                )
        with self._errors(key):
            if folder and self.stat(folder) is None:
                self._make_parents(key)  # plantdb makes it too
            dir_fd, name = self._parent_fd(key)
            try:
                fd = lockfile.take(
                    dir_fd,
                    name,
                    shared=shared,
                    timeout=timeout,
                    note_name=note_name,
                    note=note,
                )
            except lockfile.Busy:
                os.close(dir_fd)
                raise LockHeld(f"'{key}' is locked by another program") from None
            except BaseException:
                os.close(dir_fd)
                raise
        token = f"{os.getpid()}-{fd}-{os.urandom(4).hex()}"
        self._held[token] = (fd, dir_fd, name, note_name)
        return token

    def drop_lock(self, token: str) -> None:
        held = self._held.pop(token, None)
        if held is None:
            return
        fd, dir_fd, name, note_name = held
        try:
            lockfile.release(fd, dir_fd, name, note_name=note_name)
        finally:
            os.close(dir_fd)

    def leave_as_found(self) -> None:
        """Remove accord's folder if this run made it and left it empty."""
        if not self._had_meta:
            for folder in (self._tmp, self._meta):
                with contextlib.suppress(OSError):
                    os.rmdir(folder)  # only empty ones go

    def clean_temp(self) -> None:
        """Remove temporary files left by an interrupted run (lock held):
        ``.accord/tmp``, and those its processes noted making beside their
        targets (``_note_beside``); put back under its old name an item it
        left half way through a case-only rename (``local_case``). Where
        that name has been taken meanwhile, ``.accord/tmp`` is kept: its
        note keeps the item out of listings."""
        with contextlib.suppress(OSError), os.scandir(self._tmp) as listing:
            for own in listing:
                self._clean_beside(own.name)
        try:
            if local_case.settle(self._tmp, self._root, all_ended=True).hidden:
                return
        except OSError:
            return  # the root cannot be opened: the notes are kept
        lazy_shutil().rmtree(os.path.join(self._meta, "tmp"), ignore_errors=True)

    def _clean_beside(self, own: str, *, remove: bool = True) -> int:
        """Remove (with ``remove``, else count) the temporary files the
        process whose folder in ``.accord/tmp`` is ``own`` made beside its
        targets: only names that process gave (``.accord-tmp-<own>-``), in
        the folders it noted; how many were found."""
        try:
            with open(os.path.join(self._tmp, own, _BESIDE_NOTE), "rb") as note:
                folders = note.read().split(b"\0")[:-1]
        except OSError:
            return 0
        start, found = f"{_BESIDE}{own}-", 0
        for folder in dict.fromkeys(folders):
            with contextlib.suppress(OSError, ReplicaError):
                fd = open_folder(self._root(), os.fsdecode(folder))
                try:  # reached without a link; listed through "." (O_PATH)
                    for name in _names_in(fd):
                        if name.startswith(start):
                            found += 1
                            if remove:
                                os.unlink(name, dir_fd=fd)
                finally:
                    os.close(fd)
        return found

    def _drop_beside_note(self, own: str) -> None:
        """At the end of a run: the note of the process ``own`` (this one,
        or a copier that has ended) goes once none of its temporary files
        is left beside a target; a copier killed mid-write leaves its note
        for the next run's ``clean_temp``."""
        if own.partition("-")[0] != str(os.getpid()) and not local_case.ended(own):
            return  # still running: its note is its own
        if not self._clean_beside(own, remove=False):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self._tmp, own, _BESIDE_NOTE))

    def forget_meta(self) -> None:
        lazy_shutil().rmtree(self._meta, ignore_errors=True)

    # -- trash ------------------------------------------------------------
    def trash_list(self) -> Iterator[TrashItem]:
        base = os.path.join(self._meta, "trash")
        if not os.path.isdir(base):
            return
        for run in sorted(os.listdir(base)):
            top = os.path.join(base, run)
            for folder, dirs, files in os.walk(top):
                dirs.sort()
                for name in sorted(files):
                    path = os.path.join(folder, name)
                    key = os.path.relpath(path, top).replace(os.sep, "/")
                    entry = stat_entry(key, os.lstat(path), path)
                    if entry is not None:
                        yield TrashItem(run, key, entry)

    def trash_runs(self) -> list[str]:
        base = os.path.join(self._meta, "trash")
        return sorted(os.listdir(base)) if os.path.isdir(base) else []

    def trash_restore(self, item: TrashItem, key: str) -> Entry:
        self._drop_near()
        check_key(key, self.url)
        run = check_run(item.run, self.url)
        source = os.path.join(self._meta, "trash", run, check_key(item.key, self.url))
        with self._errors(key):
            self._make_parents(key)
            with self._folder_of(key) as (fd, name):
                try:
                    rename_new(source, name, None, fd)
                except FileExistsError as exc:
                    raise AlreadyExists(
                        "something is already there",
                        where=self.url,
                        key=key,
                        hint="restore it under another name with --to",
                    ) from exc
                done = self._stat_at(key, fd, name)
        assert done is not None
        return done

    def _make_parents(self, key: str) -> None:
        """Create the missing folders above ``key``, following no link."""
        parts = key.split("/")[:-1]
        for depth, name in enumerate(parts):
            fd = open_folder(self._root(), "/".join(parts[:depth]))
            try:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, dir_fd=fd)
            finally:
                os.close(fd)

    def trash_purge(self, run: str) -> int:
        top = os.path.join(self._meta, "trash", check_run(run, self.url))
        count = sum(len(files) for _, _, files in os.walk(top))
        lazy_shutil().rmtree(top, ignore_errors=True)
        return count


def _new_entry(key: str, stat: os.stat_result, digest: str) -> Entry:
    """The entry of a file this place has just written and named (``stat``
    of its own descriptor, taken after it got its name)."""
    size, mtime, mode = stat.st_size, stat.st_mtime_ns, stat.st_mode & 0o7777
    return Entry(key, FILE, size, mtime, mode, stamp(stat), digest)


def _file_stamp(fd: int, name: str) -> str | None:
    """The stamp of the file ``name`` in the folder ``fd`` now (not
    following a link), or None when no file is there."""
    try:
        found = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return stamp(found) if st.S_ISREG(found.st_mode) else None


def _pairs(run: list[_Item]) -> list[tuple[str, str]]:
    """A run's ``(key, version)`` pairs, made in C (no Python step per item)."""
    return list(zip(map(_KEY, run), map(_VERSION, run)))  # noqa: B905 (3.8)


def _runs(
    items: list[_Item], splits: list[tuple[str, str, Problem | None, str | None]]
) -> Iterator[list[_Item] | tuple[str, str] | Problem]:
    """A folder's sorted items (``_listed``) as runs, with the folders to
    enter and the problems where their names sort among them (names are
    unique in a folder and none ends with ``/``: each has one place). The
    runs are slices of ``items``: no Python step per item."""
    splits.sort()
    names = list(map(_NAME, items))
    start = 0
    for name, key, problem, path in splits:
        at = bisect.bisect_left(names, name, start)
        if at > start:
            yield items[start:at]
        yield problem if problem is not None else (key, path)  # type: ignore[misc]
        start = at
    if start < len(items):
        yield items[start:]
