"""A local folder, read: the scan (each folder listed and stat'ed through
its descriptor, in key order), stat, digests and reads, every one reached
without following a link.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import operator
import os
import stat as st
from collections.abc import Iterator

from accord.errors import NotFound, TransientError
from accord.keys import IgnoreRules
from accord.model import DIR, FILE, LINK, Entry, Problem, parent_of, permissions
from accord.replica import META_DIR, HashingReader, check_key
from accord.replicas import local_case
from accord.replicas.local_copy import BLOCK
from accord.replicas.local_entries import file_stamp, stat_entry
from accord.replicas.local_errors import translate

TYPE_CHECKING = False  # typing's, without importing typing (see accord/tuples.py)
if TYPE_CHECKING:  # the agent runs this module on Python 3.8: no alias at run time
    from typing import IO

    #: a listed item: (name, key, version, stat, link target)
    _Item = tuple[str, str, str, os.stat_result, str | None]

__all__ = ["READ_FLAGS", "Deal", "LocalRead", "names_in"]

#: a file opened to be read: never through a link
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
#: a folder opened to be listed (its items stat'ed through the descriptor)
_LIST_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NAME = operator.itemgetter(0)
_KEY = operator.itemgetter(1)
_VERSION = operator.itemgetter(2)
_SPECIAL = {
    st.S_IFIFO: "a named pipe",
    st.S_IFSOCK: "a socket",
    st.S_IFCHR: "a character device",
    st.S_IFBLK: "a block device",
}


def names_in(fd: int) -> list[str]:
    """The names in the folder ``fd`` (which may be an ``O_PATH``
    descriptor: it is opened again for reading, through ".")."""
    listing = os.open(".", _LIST_FLAGS, dir_fd=fd)
    try:
        return os.listdir(listing)
    finally:
        os.close(listing)


class LocalRead:
    """The reading part of :class:`~accord.replicas.local.LocalReplica`
    (which holds the folders: ``_folder_of``, ``_near_folder``,
    ``_stat_at``, ``_errors``, ``_swapped``)."""

    # -- reading ----------------------------------------------------------
    def is_empty_root(self) -> bool:
        try:
            with os.scandir(self.root) as listing:
                return all(item.name == META_DIR for item in listing)
        except OSError:
            return False  # the scan reports why it cannot be listed

    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str | int]:
        """Every item, in key order (``Replica.scan_in_order``): each folder's
        names sorted, a folder's contents where ``name/`` sorts among its
        neighbours (``a``, ``a.txt``, then ``a/b``), so that the engine can
        merge the listing with the archive read in the same order. With a
        ``known`` that can pass runs of rows (``same``), a run of unchanged
        items is reported as its length."""
        # an item a killed run left under a temporary name goes back first
        yield from self.settle_names()  # the problems of those that cannot
        yield from self._walk(ignore, known, None)

    def settle_names(self) -> list[Problem]:
        """Put back every item a killed run left under a temporary name
        (``local_case``), and note the names the listing leaves out; the
        problems of those that cannot go back. ``scan`` does this first;
        a listing in shares (``scan_share``) needs it done once, before."""
        settled = local_case.settle(self._tmp, self._root)
        self._case_hidden = settled.hidden
        return list(local_case.problems(settled.stuck))

    def scan_share(
        self, ignore: IgnoreRules | None, share: int, weights: tuple[float, ...]
    ) -> tuple[Iterator[Entry | Problem], Deal]:
        """Share ``share`` of a listing made by several processes at once
        (a first copy's, with nothing archived to compare with), one share
        each, of sizes in proportion to ``weights`` (one per share), after
        ``settle_names``: every share walks all the folders by
        their names alone (no ``stat``: a fifth of a listing's work), and
        lists (stats, makes entries of) only the folders its ``Deal`` gives
        it. Its items, in key order, and the deal, whose ``entered`` and
        ``held`` tell the caller whether the shares' items make one
        listing (they do unless the tree changed between the walks)."""
        deal = Deal(share, weights)
        return self._walk(ignore, None, deal), deal  # type: ignore[return-value]

    #: the listing ``scan_share`` shares out is this class's ``scan``: a
    #: place that lists otherwise (a subclass with a ``scan`` of its own)
    #: is not listed in shares
    @classmethod
    def lists_in_shares(cls) -> bool:
        return cls.scan is LocalRead.scan

    def _walk(
        self,
        ignore: IgnoreRules | None,
        known: dict[str, str] | None,
        deal: Deal | None,
    ) -> Iterator[Entry | Problem | str | int]:
        """The listing of ``scan`` (without settling names), or with a
        ``deal`` of a ``scan_share``."""
        get = known.get if known is not None else None
        same = getattr(known, "same", None)
        pending = [self._listed("", self.root, ignore, deal)]
        while pending:
            for run in pending[-1]:
                kind = type(run)
                if kind is tuple:  # a folder's contents: (key, path)
                    pending.append(self._listed(run[0], run[1], ignore, deal))
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
                            permissions(mode),
                            version,
                        )
                    elif kind == st.S_IFDIR:
                        yield Entry(key, DIR, 0, 0, permissions(mode), version)
                    else:
                        yield Entry(
                            key, LINK, 0, stat.st_mtime_ns, 0, version, None, link
                        )
            else:
                pending.pop()

    def _listed(
        self,
        prefix: str,
        folder: str,
        ignore: IgnoreRules | None,
        deal: Deal | None = None,
    ) -> Iterator[list[_Item] | tuple[str, str] | Problem]:
        """One folder, listed and stat'ed through its descriptor, in the
        order of its keys: runs of items ``(name, key, version, stat, link
        target)``, split where the contents of a subfolder come (a
        ``(key, path)`` tuple, where ``name/`` sorts) or a problem does.
        With a ``deal`` that gives the folder to another share: only its
        subfolders, by name (``_subfolders``)."""
        items: list[_Item] = []
        add = items.append
        #: what splits the runs: subfolders' contents, problems
        splits: list[tuple[str, str, Problem | None, str | None]] = []
        split = splits.append
        base = prefix + "/" if prefix else ""
        regular, directory, symlink = st.S_IFREG, st.S_IFDIR, st.S_IFLNK
        dev, on = -1, ""  # the last disk's number, and as a version begins
        mine = None if deal is not None else True  # this share lists the folder
        try:
            fd = os.open(folder, _LIST_FLAGS | (os.O_NOFOLLOW if prefix else 0))
            try:
                with os.scandir(fd) as listing:
                    found = list(listing)
                hidden = self._case_hidden.get(prefix)
                if hidden:  # a case-only rename's temporary name: not an item
                    found = [item for item in found if item.name not in hidden]
                if deal is not None:
                    mine = deal.mine(prefix, len(found))
                    if not mine:
                        return _subfolders(base, folder, found, ignore)
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
                        if deal is not None:
                            deal.held.append(key)
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
                            why = f"skipped: {what}"
                            problem = Problem(key, None, why, notice=True)
                            split((name, key, problem, None))
            finally:
                os.close(fd)
        except OSError as exc:
            if mine is None:
                mine = deal.mine(prefix, 0)  # type: ignore[union-attr]
            if not mine:
                return iter([])
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
                fd = os.open(name, READ_FLAGS, dir_fd=folder)
        # unbuffered: the engine reads in large blocks anyway
        return os.fdopen(fd, "rb", buffering=0)

    def _open_near(self, key: str) -> tuple[int, int, str]:
        """In a copier process: a descriptor of the file ``key``, opened
        through its folder kept open (``_near_folder``), never through a
        link, which the caller closes; then that folder's descriptor and
        the file's name in it."""
        try:
            folder, name = self._near_folder(key)
            return os.open(name, READ_FLAGS, dir_fd=folder), folder, name
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise self._swapped(key, "the file") from exc
            raise translate(exc, self.url, key) from exc

    def _stamp_at(self, at: tuple[str, int, str]) -> str | None:
        """The version of the file at ``at`` (key, folder descriptor, name)
        now, looked up by its name, or None when no file is there."""
        try:
            return file_stamp(at[1], at[2])
        except OSError as exc:
            raise translate(exc, self.url, at[0]) from exc


class Deal:
    """Which share of a listing in shares (``LocalRead.scan_share``) lists
    which folder: each folder, met in key order, goes to the share that
    has the fewest items so far for its weight (the root to the first).
    Every share walks
    the same folders and deals alike, as long as the tree does not change
    meanwhile. ``entered``: the folders this share listed; ``held``: the
    subfolders it found in them. The shares' items are one listing when
    every folder was listed by exactly one share and the folders listed
    are the root and the subfolders found, no more, no fewer."""

    __slots__ = ("_loads", "_weights", "entered", "held", "share")

    def __init__(self, share: int, weights: tuple[float, ...]) -> None:
        self.share = share
        self._weights = weights
        self._loads = [0.0] * len(weights)
        self.entered: list[str] = []
        self.held: list[str] = []

    def mine(self, key: str, size: int) -> bool:
        """Whether the folder ``key``, of ``size`` items, is this share's."""
        loads = self._loads
        owner = loads.index(min(loads))
        loads[owner] += (size + 1) / self._weights[owner]
        if owner != self.share:
            return False
        self.entered.append(key)
        return True


def _subfolders(
    base: str, folder: str, found: list[os.DirEntry[str]], ignore: IgnoreRules | None
) -> Iterator[tuple[str, str]]:
    """The subfolders of a folder another share lists (``scan_share``), as
    ``_listed`` splits them, in key order, known by the listing's own kind
    of each name (no ``stat`` where the file system gives it)."""
    splits = []
    for item in found:
        name = item.name
        if name == META_DIR:
            continue  # accord's own folder (and a nested place's): never synced
        try:
            if not item.is_dir(follow_symlinks=False):
                continue
        except OSError:
            continue  # the share that lists the folder says why
        key = base + name
        if ignore and ignore.matches(key, True):
            continue
        splits.append((name + "/", key, f"{folder}/{name}"))
    splits.sort()
    return iter([(key, path) for _, key, path in splits])


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
