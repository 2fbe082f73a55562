"""A local folder's changes that carry no bytes: folders made, metadata
set, items deleted (into the trash) and moved, a case-only rename on a disk
that takes both spellings for one name going through a temporary name
(``local_case``). Each is made through its folder's descriptor and checks
the version it expects first.
"""

from __future__ import annotations

import errno
import os

from accord.errors import NotEmpty
from accord.keys import fold
from accord.model import DIR, FILE, LINK, Entry, parent_of
from accord.replica import check_expected
from accord.replicas import local_case
from accord.replicas.local_at import chmod_at, rename_case, rename_new, same_item

__all__ = ["LocalTree"]


class LocalTree:
    """Folders, metadata, deletes and moves of
    :class:`~accord.replicas.local.LocalReplica` (which holds the folders,
    ``_folder_of``, ``_stat_at``, ``_drop_near``, and the trash, ``_keep``)."""

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
