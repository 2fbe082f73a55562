"""What a local item is: its entry, made from a stat result, and its version.

A file's version is its stat stamp ``dev:ino:size:mtime_ns:ctime_ns``; a
folder's is its mode, a link's its target.
"""

from __future__ import annotations

import os
import stat as st

from accord.model import DIR, FILE, LINK, Entry, permissions

__all__ = ["file_stamp", "local_persistent_id", "stamp", "stat_entry"]


def stat_entry(
    key: str,
    stat: os.stat_result,
    path: str,
    dir_fd: int | None = None,
    digest: str | None = None,
) -> Entry | None:
    """The entry for a stat result (a file's with ``digest``, when its
    content's is known); None for special files."""
    mode = stat.st_mode
    if st.S_ISREG(mode):
        size, mtime = stat.st_size, stat.st_mtime_ns
        return Entry(key, FILE, size, mtime, permissions(mode), stamp(stat), digest)
    if st.S_ISDIR(mode):
        return Entry(key, DIR, 0, 0, permissions(mode), f"d{mode & 0o7777:o}")
    if st.S_ISLNK(mode):
        target = os.readlink(path, dir_fd=dir_fd)
        return Entry(key, LINK, 0, stat.st_mtime_ns, 0, f"l{target}", None, target)
    return None


def stamp(stat: os.stat_result) -> str:
    """A file's version: its stat stamp ``dev:ino:size:mtime_ns:ctime_ns``."""
    return (
        f"{stat.st_dev}:{stat.st_ino}:{stat.st_size}:"
        f"{stat.st_mtime_ns}:{stat.st_ctime_ns}"
    )


def local_persistent_id(version: str) -> str | None:
    """A local file's version without its ctime: a rename keeps the device,
    inode, size and mtime, and changes only the ctime. (The inode alone is
    not enough: a file system gives a deleted file's inode to the next new
    one, whose mtime differs.)"""
    stamp, sep, _ = version.rpartition(":")
    return stamp if sep and stamp.count(":") == 3 else None


def file_stamp(fd: int, name: str) -> str | None:
    """The stamp of the file ``name`` in the folder ``fd`` now (not
    following a link), or None when no file is there."""
    try:
        found = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return stamp(found) if st.S_ISREG(found.st_mode) else None
