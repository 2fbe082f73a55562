"""A folder on a local disk (``/path``, ``~/path`` or ``file:///path``):
``LocalReplica``, its lifetime, and the items it writes through a
temporary file (files one by one or in batches, links).

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
before the change from the root without following a link
(``local_folders``): a folder replaced by a link after the scan is refused,
never written through. A forked copier process keeps that descriptor while
consecutive items are in the same folder (``_near_folder``); a delete, move
or new folder drops it.

Names are kept byte for byte: a key is the name as ``os`` lists it (an NFD
spelling stays NFD; bytes that are not UTF-8 are surrogate escapes), and a
new item is created under exactly that spelling.

The rest of the place is in its siblings, one part each, combined here:
``local_probe`` (its capabilities), ``local_folders`` (reaching an item),
``local_read`` (scan, stat, digests, reads), ``local_tree`` (folders,
metadata, deletes, moves), ``local_meta`` (accord's own files, a killed
run's temporary files, lock files) and ``local_trash``.
"""

from __future__ import annotations

import contextlib
import errno
import io
import itertools
import os
from collections.abc import Callable

from accord.capabilities import Capabilities
from accord.errors import (
    AccordError,
    NotFound,
    PreconditionFailed,
    ReplicaError,
    Unreachable,
)
from accord.model import FILE, Entry, Spot, parent_of, permissions
from accord.replica import (
    META_DIR,
    Replica,
    Touched,
    Watching,
    WriteItem,
    check_digest,
    check_expected,
    check_key,
    source_changed,
    source_gone,
)
from accord.replicas import local_case
from accord.replicas.local_at import (
    DIR_FLAGS,
    SYNC_FLAGS,
    rename_new,
    same_folder,
    syncfs_fd,
)
from accord.replicas.local_copy import (
    BIG,
    copy_exact,
    copy_into,
    fill_new,
    read_exact,
    write_all,
)
from accord.replicas.local_entries import file_stamp as _file_stamp
from accord.replicas.local_entries import local_persistent_id, stamp
from accord.replicas.local_errors import translate, unflushed
from accord.replicas.local_folders import LocalFolders
from accord.replicas.local_meta import BESIDE as _BESIDE
from accord.replicas.local_meta import BESIDE_NOTE as _BESIDE_NOTE
from accord.replicas.local_meta import LocalMeta
from accord.replicas.local_probe import LocalProbes
from accord.replicas.local_read import READ_FLAGS as _READ_FLAGS
from accord.replicas.local_read import LocalRead
from accord.replicas.local_trash import LocalTrash
from accord.replicas.local_tree import LocalTree
from accord.replicas.where import local_spots

TYPE_CHECKING = False  # typing's, without importing typing (see accord/tuples.py)
if TYPE_CHECKING:
    from typing import IO, Any

__all__ = ["LocalReplica"]

#: a temporary file, new: never one that is there, never through a link
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW


class LocalReplica(
    LocalProbes, LocalRead, LocalTree, LocalMeta, LocalTrash, LocalFolders, Replica
):
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
        #: the root opened for ``syncfs`` when the place is opened (before this
        #: run writes), kept: told of every write-back failure since
        self._sync_fd: int | None = None
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

    def missing_parent(self) -> str | None:
        parent = os.path.dirname(self.root.rstrip(os.sep)) or os.sep
        return None if os.path.isdir(parent) else parent

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
        self._close_sync()
        with self._errors(""):
            self._sync_fd = os.open(self.root, SYNC_FLAGS)
        self._caps = None
        self._had_meta = os.path.isdir(self._meta)

    def _close_sync(self) -> None:
        if self._sync_fd is not None:
            fd, self._sync_fd = self._sync_fd, None
            with contextlib.suppress(OSError):
                os.close(fd)

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
            written = -1
            try:
                digest, written = copy_into(data, temp, like, self.url, key, temp_fd)
                with self._folder_of(key) as (fd, name):
                    self._install(temp, temp_fd, key, fd, name, expect, trash)
                stat = os.fstat(written)  # the rename moved its ctime: after it
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=temp_fd)
                raise
            finally:
                if written >= 0:
                    os.close(written)
                if temp_fd is not None:
                    os.close(temp_fd)
        return _new_entry(key, stat, digest)

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
        written = -1
        try:
            try:
                digest, written = copy_into(data, temp, like, self.url, key, temp_fd)
                fd, name = self._near_folder(key)
                self._install(temp, temp_fd, key, fd, name, expect, trash, beside=False)
                stat = os.fstat(written)  # the rename moved its ctime: after it
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=temp_fd)
                raise
            finally:
                if written >= 0:
                    os.close(written)
        except ReplicaError:
            raise
        except OSError as exc:
            raise translate(exc, self.url, key) from exc
        return _new_entry(key, stat, digest)

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
        try:
            reading, folder, name = source._open_near(key)
        except NotFound as exc:
            raise source_gone(source.url, key) from exc
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
                    raise source_changed(source.url, key)
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
            raise source_changed(self.url, key)
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

    def flush(self) -> None:
        """Make what was written durable (one ``syncfs``). A write-back that
        failed since the place was opened, on any file of its file system,
        fails the flush: nothing since the last flush is recorded."""
        try:
            if self._sync_fd is None:  # not opened (a place used bare)
                self._sync_fd = os.open(self.root, SYNC_FLAGS)
            syncfs_fd(self._sync_fd)
        except OSError as exc:
            raise unflushed(exc, self.url) from exc

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
        self._close_sync()
        with contextlib.suppress(OSError), os.scandir(self._tmp) as listing:
            for folder in listing:
                self._drop_beside_note(folder.name)
                with contextlib.suppress(OSError):
                    os.rmdir(folder.path)  # only empty ones go


def _new_entry(key: str, stat: os.stat_result, digest: str) -> Entry:
    """The entry of a file this place has just written and named (``stat``
    of its own descriptor, taken after it got its name)."""
    size, mtime, mode = stat.st_size, stat.st_mtime_ns, permissions(stat.st_mode)
    return Entry(key, FILE, size, mtime, mode, stamp(stat), digest)
