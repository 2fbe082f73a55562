"""Plain SFTP, reading: the scan (folders listed by several channels at
once), stat, digests and reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import stat as st
from collections.abc import Iterator
from typing import IO, Any

from accord.errors import NotFound, ReplicaError, Unreachable
from accord.keys import IgnoreRules
from accord.model import DIR, FILE, LINK, Entry, Problem, join, permissions
from accord.replica import DIGEST, META_DIR
from accord.replicas.sftp_client import BLOCK

_LISTERS = 4  # folders listed at once while scanning

__all__ = ["Reading"]


class Reading:
    """The reading half of :class:`~accord.replicas.sftp.SFTPReplica` (which
    holds the connection: ``_sftp``, ``_errors``, ``_path``, ``_no_link``)."""

    # -- reading ----------------------------------------------------------
    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str]:
        """Folders are listed by several threads at once (one SFTP channel
        each), so the round trips of a deep tree overlap."""
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        get = known.get if known is not None else None
        with ThreadPoolExecutor(max_workers=_LISTERS) as pool:
            pending = {pool.submit(self._list, self.root): ("", self.root)}
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    prefix, folder = pending.pop(future)
                    try:
                        listing = future.result()
                    except Unreachable:
                        for other in pending:
                            other.cancel()
                        raise
                    except ReplicaError as exc:
                        yield Problem(
                            prefix, None, f"cannot list this folder: {exc.message}"
                        )
                        continue
                    for item in self._items(prefix, folder, listing, ignore):
                        if isinstance(item, Entry) and item.kind == DIR:
                            path = posixpath.join(folder, posixpath.basename(item.key))
                            pending[pool.submit(self._list, path)] = (item.key, path)
                        if (
                            get is not None
                            and isinstance(item, Entry)
                            and get(item.key) == item.version
                        ):
                            yield item.key
                        else:
                            yield item

    def _list(self, folder: str) -> list[Any]:
        with self._errors(folder):
            return list(self._sftp().listdir_attr(folder))

    def _items(
        self,
        prefix: str,
        folder: str,
        listing: list[Any],
        ignore: IgnoreRules | None,
    ) -> Iterator[Entry | Problem]:
        """The entries of one listed folder (ignored ones left out)."""
        for attrs in listing:
            name = attrs.filename
            if not prefix and name == META_DIR:
                continue
            key = join(prefix, name)
            entry = self._entry(key, attrs, posixpath.join(folder, name))
            if entry is None:
                yield Problem(key, None, "skipped: a special file", notice=True)
                continue
            if entry.kind == DIR and name == META_DIR:
                continue  # a nested place's own folder: never synced
            if ignore and ignore.matches(key, entry.kind == DIR):
                continue
            yield entry

    def _entry(self, key: str, attrs: Any, path: str) -> Entry | None:
        mode = attrs.st_mode or 0
        mtime_ns = int(attrs.st_mtime or 0) * 1_000_000_000
        if st.S_ISREG(mode):
            size = attrs.st_size or 0
            version = f"{size}:{int(attrs.st_mtime or 0)}"
            return Entry(key, FILE, size, mtime_ns, permissions(mode), version)
        if st.S_ISDIR(mode):
            return Entry(key, DIR, 0, 0, permissions(mode), f"d{mode & 0o7777:o}")
        if st.S_ISLNK(mode):
            target = self._sftp().readlink(path) or ""
            return Entry(key, LINK, 0, mtime_ns, 0, f"l{target}", None, target)
        return None

    def stat(self, key: str) -> Entry | None:
        path = self._path(key)
        with self._errors(key):
            try:
                attrs = self._sftp().lstat(path)
            except FileNotFoundError:
                return None
            return self._entry(key, attrs, path)

    def digest(self, entry: Entry) -> Entry:
        if entry.kind != FILE:
            return entry
        with self._errors(entry.key), self.open_read(entry.key) as stream:
            hasher = hashlib.sha256()
            while block := stream.read(BLOCK):
                hasher.update(block)
        now = self.stat(entry.key)
        if now is None:
            raise NotFound("vanished while being read", where=self.url, key=entry.key)
        return now._replace(digest=f"{DIGEST}:{hasher.hexdigest()}")

    def open_read(self, key: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        path = self._path(key)
        with self._errors(key):
            self._no_link(key, item=True)
            handle = self._sftp().open(path, "rb")
            handle.prefetch()
            return handle  # type: ignore[return-value]
