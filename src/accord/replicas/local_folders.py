"""How a local folder reaches its items: through a descriptor of the
item's folder, opened from the root without following a link (one
``openat2`` with ``RESOLVE_NO_SYMLINKS``, else one ``O_NOFOLLOW`` open per
component), so a folder replaced by a link after the scan is refused, never
written through; a copier process keeps the last one open
(``_near_folder``). And OSError translated into accord's errors, once, at
that boundary.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

from accord.errors import PreconditionFailed, ReplicaError
from accord.model import Entry
from accord.replica import check_key
from accord.replicas.local_at import DIR_FLAGS, open_folder
from accord.replicas.local_entries import stat_entry
from accord.replicas.local_errors import translate

__all__ = ["LocalFolders"]


class LocalFolders:
    """The folder descriptors of :class:`~accord.replicas.local.LocalReplica`
    (which holds ``root``, ``_root_fd``, ``_tmp_fd``, ``_near`` and
    ``_copier``)."""

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
