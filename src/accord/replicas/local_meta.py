"""What accord keeps in a local folder beside the user's items: its own
files in ``.accord``, the temporary files a killed run left behind (and
their cleaning), and lock files held for another program's protocol.
"""

from __future__ import annotations

import contextlib
import os

from accord.errors import LockHeld, ReplicaError, UnsafeName
from accord.model import join
from accord.replica import META_DIR
from accord.replicas import local_case, lockfile
from accord.replicas.local_at import open_folder
from accord.replicas.local_copy import lazy_shutil
from accord.replicas.local_errors import translate
from accord.replicas.local_read import names_in

__all__ = ["BESIDE", "BESIDE_NOTE", "LocalMeta"]

#: a temporary file made beside its target (a folder on another device
#: than ``.accord/tmp``), and the note of the folders that have them
BESIDE = ".accord-tmp-"
BESIDE_NOTE = "beside"
#: accord's own files that live only as long as the run that made them:
#: not fsync'ed (a power cut ends every run; see ``meta_create``)
_NOT_DURABLE = frozenset({"lock"})


class LocalMeta:
    """accord's own files, temporary files and lock files of
    :class:`~accord.replicas.local.LocalReplica` (which holds ``_meta``,
    ``_tmp``, ``_held``, ``_root``, ``_parent_fd`` and ``_errors``)."""

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
            with open(os.path.join(self._tmp, own, BESIDE_NOTE), "rb") as note:
                folders = note.read().split(b"\0")[:-1]
        except OSError:
            return 0
        start, found = f"{BESIDE}{own}-", 0
        for folder in dict.fromkeys(folders):
            with contextlib.suppress(OSError, ReplicaError):
                fd = open_folder(self._root(), os.fsdecode(folder))
                try:  # reached without a link; listed through "." (O_PATH)
                    for name in names_in(fd):
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
                os.unlink(os.path.join(self._tmp, own, BESIDE_NOTE))

    def forget_meta(self) -> None:
        lazy_shutil().rmtree(self._meta, ignore_errors=True)
