"""Changing a local folder through descriptors, never through a link.

A folder is reached from the place's root without following a link (one
``openat2`` with ``RESOLVE_NO_SYMLINKS``, else one ``O_NOFOLLOW`` open per
component), and names are then changed relative to its descriptor. A rename
that must not replace (``renameat2(RENAME_NOREPLACE)``, else a hard link and
an unlink) never clobbers a file that appeared meanwhile. Also: the C
library's ``syncfs``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as st
import sys

TYPE_CHECKING = False  # typing's, without importing typing (see accord/tuples.py)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "DIR_FLAGS",
    "SYNC_FLAGS",
    "chmod_at",
    "open_folder",
    "rename_case",
    "rename_new",
    "same_folder",
    "same_item",
    "syncfs",
    "syncfs_fd",
    "walk_folder",
]

# a folder opened only to work in it (O_PATH: no read permission needed)
DIR_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC
# a folder opened for ``syncfs_fd`` (not O_PATH: syncfs needs a descriptor
# that can be read)
SYNC_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC


_RENAME_NOREPLACE = 1
# os.fsencode's own encoding, without its Python steps (a batch renames
# thousands of names)
_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()
_AT_FDCWD = -100
_renameat2: Any = None


def rename_new(
    source: str,
    target: str,
    source_fd: int | None = None,
    target_fd: int | None = None,
) -> None:
    """Rename ``source`` to ``target``, which must not exist (FileExistsError).
    Each name is relative to its folder descriptor, when one is given.

    One ``renameat2(RENAME_NOREPLACE)`` call where the kernel and file system
    offer it; else a hard link (which never replaces) and an unlink; else,
    on a file system without hard links, a check and a plain rename.
    """
    global _renameat2
    if _renameat2 is None:
        _renameat2 = getattr(_libc_handle(), "renameat2", False)
    if _renameat2:
        done = _renameat2(
            _AT_FDCWD if source_fd is None else source_fd,
            source.encode(_FS_ENCODING, _FS_ERRORS),
            _AT_FDCWD if target_fd is None else target_fd,
            target.encode(_FS_ENCODING, _FS_ERRORS),
            _RENAME_NOREPLACE,
        )
        if done == 0:
            return
        code = _ctypes_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), target)
        _renameat2 = False
    try:
        os.link(
            source,
            target,
            src_dir_fd=source_fd,
            dst_dir_fd=target_fd,
            follow_symlinks=False,
        )
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV):
            raise
        with contextlib.suppress(FileNotFoundError):
            os.stat(target, dir_fd=target_fd, follow_symlinks=False)
            raise FileExistsError(errno.EEXIST, "File exists", target) from exc
        os.rename(source, target, src_dir_fd=source_fd, dst_dir_fd=target_fd)
    else:
        os.unlink(source, dir_fd=source_fd)


def open_folder(root_fd: int, folder: str) -> int:
    """A new descriptor of ``folder`` (relative, ``/``-separated; ``""`` is
    the root itself), reached from ``root_fd`` without following any link:
    OSError ELOOP when a component is a link."""
    global _openat2
    if not folder:
        return os.dup(root_fd)
    if _openat2 is None:
        _openat2 = _make_openat2()
    if _openat2:
        fd = _openat2(root_fd, os.fsencode(folder))
        if fd >= 0:
            return int(fd)
        code = _ctypes_errno()
        if code in (errno.ENOSYS, errno.EPERM, errno.EINVAL, errno.E2BIG):
            _openat2 = False  # not offered here (old kernel, filtered)
        elif code != errno.EAGAIN:  # EAGAIN: a rename raced; walk instead
            raise OSError(code, os.strerror(code), folder)
    return walk_folder(root_fd, folder)


def walk_folder(root_fd: int, folder: str) -> int:
    """``open_folder`` one component at a time, each opened O_NOFOLLOW."""
    fd = os.dup(root_fd)
    try:
        for part in folder.split("/"):
            try:
                inner = os.open(part, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except NotADirectoryError:
                found = os.stat(part, dir_fd=fd, follow_symlinks=False)
                if st.S_ISLNK(found.st_mode):
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), part) from None
                raise
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


_openat2: Any = None
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
_SYS_OPENAT2 = 437  # the same number on every Linux architecture


def _make_openat2() -> Any:
    """``openat2(dirfd, path)`` for a folder, refusing any link on the way
    (one call for the whole path); False where it is not offered."""
    libc = _libc_handle()
    if not libc or not sys.platform.startswith("linux"):
        return False
    import ctypes

    class OpenHow(ctypes.Structure):
        _fields_ = [
            ("flags", ctypes.c_uint64),
            ("mode", ctypes.c_uint64),
            ("resolve", ctypes.c_uint64),
        ]

    how = OpenHow(DIR_FLAGS, 0, _RESOLVE_NO_SYMLINKS | _RESOLVE_BENEATH)
    size = ctypes.sizeof(how)
    ref = ctypes.byref(how)
    syscall = libc.syscall
    syscall.restype = ctypes.c_long

    def openat2(dir_fd: int, path: bytes) -> int:
        return int(syscall(_SYS_OPENAT2, dir_fd, path, ref, size))

    return openat2


def same_item(fd: int, name: str, other_fd: int, other: str) -> bool:
    """True when both names (each in its folder) are one item on disk."""
    try:
        a = os.stat(name, dir_fd=fd, follow_symlinks=False)
        b = os.stat(other, dir_fd=other_fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def rename_case(
    fd: int, name: str, new_fd: int, new_name: str, temp: str | None = None
) -> None:
    """Give an item a name that differs only by case, where the file system
    takes both for one name: through a temporary name (``temp``, in the
    folder ``fd``), so that the new spelling is the one stored. Put back
    under its old name if that fails."""
    if temp is None:
        temp = f".accord-case-{os.urandom(4).hex()}"
    os.rename(name, temp, src_dir_fd=fd, dst_dir_fd=fd)
    try:
        rename_new(temp, new_name, fd, new_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.rename(temp, name, src_dir_fd=fd, dst_dir_fd=fd)
        raise


def same_folder(one: int, other: int) -> bool:
    """True when both descriptors are the same folder."""
    a, b = os.fstat(one), os.fstat(other)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def chmod_at(fd: int, name: str, mode: int) -> None:
    """chmod ``name`` in the folder ``fd``, not following a link there."""
    try:
        os.chmod(name, mode, dir_fd=fd, follow_symlinks=False)
    except (NotImplementedError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno not in (
            errno.ENOTSUP,
            errno.EOPNOTSUPP,
        ):
            raise
        os.chmod(name, mode, dir_fd=fd)


_libc: Any = None


def _ctypes_errno() -> int:
    import ctypes

    return ctypes.get_errno()


def _libc_handle() -> Any:
    """The C library (for syncfs and renameat2), or False where unavailable."""
    global _libc
    if _libc is None:
        import ctypes

        try:
            _libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            _libc = False
    return _libc


def syncfs(path: str) -> None:
    """Flush the file system holding the folder ``path`` (one call for many
    files); OSError when the file system could not write something back."""
    fd = os.open(path, SYNC_FLAGS)
    try:
        syncfs_fd(fd)
    finally:
        os.close(fd)


def syncfs_fd(fd: int) -> None:
    """Flush the file system of the open descriptor ``fd``. OSError (EIO,
    ENOSPC...) when writing back failed for any file of it since ``fd`` was
    opened, or since the last call on ``fd`` said so: a descriptor opened
    before a run writes, and kept, is told of every failure that run may
    have met, even one another program's flush saw first (the kernel tells
    each open descriptor once)."""
    libc = _libc_handle()
    if not libc or not hasattr(libc, "syncfs"):
        os.sync()  # no syncfs (not Linux): writes everything, tells nothing
        return
    if libc.syncfs(fd) != 0:
        code = _ctypes_errno()
        raise OSError(code, os.strerror(code))
