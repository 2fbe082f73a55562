"""Plain SFTP, writing: uploads to ``.accord/tmp/``, synced to the
server's disk (``fsync@openssh.com``) and renamed into place (a plain
rename for a new item, never replacing; ``posix-rename`` for an existing
one after its version is checked again), folders, links, metadata,
deletes and moves, the replaced item kept in the trash.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import tempfile
from typing import IO, TYPE_CHECKING

from accord.errors import NotEmpty, PreconditionFailed
from accord.model import DIR, FILE, LINK, Entry
from accord.replica import DIGEST, check_digest, check_expected, check_run
from accord.replicas.sftp_client import (
    BLOCK,
    FSYNC,
    close_synced,
    load_paramiko,
    raw,
    set_attributes,
)

if TYPE_CHECKING:
    import paramiko

__all__ = ["Writing"]

#: bytes of a trash copy held in memory, the rest in a local temporary file
_SPOOL = 16 << 20


class Writing:
    """The writing half of :class:`~accord.replicas.sftp.SFTPReplica`."""

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
                set_attributes(sftp, temp, mode, seconds)
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
            while block := data.read(BLOCK):
                hasher.update(block)
                handle.write(block)
                size += len(block)
            self._close_synced(sftp, handle)
        return f"{DIGEST}:{hasher.hexdigest()}", size

    def _close_synced(
        self, sftp: paramiko.SFTPClient, handle: paramiko.SFTPFile
    ) -> None:
        """Close an upload once the server has synced it to disk
        (``fsync@openssh.com``, sent with the close: no round trip more),
        before its rename makes it visible: ``flush`` has nothing left to
        do. A server that does not name the extension is not asked; one
        that refuses it is asked once per connection (uploads that end
        while the first answer is awaited wait for it), and ``finish``
        tells that what the run wrote there was not synced."""
        deciding = self._fsync is None
        with self._fsync_lock if deciding else contextlib.nullcontext():
            ask = self._fsync is not False and FSYNC in sftp.extensions
            synced = close_synced(sftp, handle, sync=ask)
            self._fsync = synced
            if not synced:
                self._unsynced = True

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
        paramiko = load_paramiko()
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
                    raw(path),
                    raw(kept),
                )
                return
            except OSError:
                pass  # no hard links: keep a copy instead
            # read whole first (in memory, or a local temporary file when
            # big), then written: a read waiting on this channel would take
            # the answers of the copy's writes in flight, which then go
            # unchecked (paramiko drops them), or wait for them forever
            with tempfile.SpooledTemporaryFile(_SPOOL) as spool:
                with sftp.open(path, "rb") as source:
                    source.prefetch()
                    while block := source.read(BLOCK):
                        spool.write(block)
                spool.seek(0)
                with sftp.open(kept, "wbx") as copy:
                    copy.set_pipelined(True)
                    while block := spool.read(BLOCK):
                        copy.write(block)
                    # whole and on disk before what it keeps is replaced
                    self._close_synced(sftp, copy)
            return
        sftp.rename(path, kept)

    def stat_path(self, path: str) -> bool:
        try:
            self._sftp().lstat(path)
        except FileNotFoundError:
            return False
        return True
