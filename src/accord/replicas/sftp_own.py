"""Plain SFTP: accord's own files (``.accord/`` on the server) and the
trash of each run.
"""

from __future__ import annotations

import contextlib
import posixpath
import stat as st
from collections.abc import Iterator
from typing import Any

from accord.errors import AlreadyExists
from accord.model import Entry, join
from accord.replica import META_DIR, TrashItem, check_key, check_run

__all__ = ["OwnFiles"]


class OwnFiles:
    """accord's own files and the trash of
    :class:`~accord.replicas.sftp.SFTPReplica`."""

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
        """Nothing left to do: SFTP has no call that syncs a file system,
        and each upload was synced as it was closed, before its rename
        (``fsync@openssh.com``: ``Writing._close_synced``)."""
        return None

    def finish(self) -> list[str]:
        """Whether this run wrote files the server did not sync to disk."""
        if not self._unsynced:
            return []
        self._unsynced = False
        return [
            f"{self.url}: the server cannot sync files to disk (no "
            "fsync@openssh.com): what this run wrote is recorded before the "
            "server's disk has it; a power cut there could lose it"
        ]

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
