"""A local folder's trash: a replaced or deleted item kept (hard-linked
or moved) under ``.accord/trash/<run>``, listed, restored and purged.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

from accord.errors import AlreadyExists
from accord.model import Entry
from accord.replica import TrashItem, check_key, check_run
from accord.replicas.local_at import open_folder, rename_new
from accord.replicas.local_copy import copy_out, lazy_shutil
from accord.replicas.local_entries import stat_entry

__all__ = ["LocalTrash"]


class LocalTrash:
    """The trash of :class:`~accord.replicas.local.LocalReplica` (which
    holds ``_meta``, ``_root``, ``_folder_of``, ``_stat_at`` and
    ``_errors``)."""

    # -- trash ------------------------------------------------------------
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
