"""A file's bytes into and out of a local folder.

``copy_into`` writes a new temporary file, hashing what it writes (a big
file in a second thread, while being written) and checking the digest
against the source's before the file gets its mtime and mode;
``fill_new`` does the same for bytes already in memory (a batch's small
file), and ``read_exact`` reads a small file whole;
``copy_out`` copies an item into the trash where a hard link cannot.
"""

from __future__ import annotations

import os
import stat as st

from accord.model import Entry
from accord.replica import DIGEST, HashingReader, check_digest
from accord.replicas.local_errors import translate

TYPE_CHECKING = False  # typing's, without importing typing (see accord/tuples.py)
if TYPE_CHECKING:
    from typing import IO, Any

__all__ = [
    "BIG",
    "BIG_BLOCK",
    "BLOCK",
    "copy_exact",
    "copy_into",
    "copy_out",
    "fill_new",
    "lazy_shutil",
    "pump_overlapped",
    "read_exact",
    "write_all",
]

BLOCK = 1 << 20
BIG = 8 << 20  # files this big hash in a second thread while being written
BIG_BLOCK = 4 << 20


def copy_into(
    data: IO[bytes],
    temp: str,
    like: Entry,
    where: str,
    key: str,
    dir_fd: int | None = None,
) -> tuple[str, int]:
    """Write ``data`` to a new file ``temp``; check it against ``like.digest``.
    Its digest, and its descriptor, left open for the caller to close: the
    entry of the file it puts in place is taken from it (``os.fstat``
    after the rename), not from whatever holds the name by then."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(temp, flags, 0o600, dir_fd=dir_fd)
    try:
        if like.size >= BIG:
            digest = pump_overlapped(data, fd)
        else:
            reader = HashingReader(data)
            while block := reader.read(BLOCK):
                write_all(fd, block)
            digest = reader.digest
        check_digest(like, digest, where, key)
        if like.mtime_ns:
            os.utime(fd, ns=(like.mtime_ns, like.mtime_ns))
        os.fchmod(fd, like.mode or 0o644)
    except BaseException:
        os.close(fd)
        raise
    return digest, fd


def fill_new(data: bytes, fd: int, like: Entry, where: str, key: str) -> str:
    """Write ``data`` (all of a small file, in memory) to the new file
    ``fd``, check it against ``like.digest`` and give the file ``like``'s
    mtime and mode; its digest (one hash of the whole, no stream)."""
    import hashlib

    digest = f"{DIGEST}:{hashlib.sha256(data).hexdigest()}"
    check_digest(like, digest, where, key)
    write_all(fd, data)
    if like.mtime_ns:
        os.utime(fd, ns=(like.mtime_ns, like.mtime_ns))
    os.fchmod(fd, like.mode or 0o644)
    return digest


def read_exact(fd: int, size: int) -> bytes | None:
    """``size`` bytes from the descriptor ``fd`` (a small file read whole),
    or None when it holds fewer (it shrank since it was listed). No read
    past ``size``: whether the file grew is told by its stamp, checked after."""
    data = os.read(fd, size)
    if len(data) == size:
        return data
    parts = [data]
    left = size - len(data)
    while left > 0:
        block = os.read(fd, left)
        if not block:
            return None
        parts.append(block)
        left -= len(block)
    return b"".join(parts)


def copy_exact(
    reading: int, fd: int, size: int, source: str, key: str
) -> tuple[str, int]:
    """Copy ``size`` bytes from the descriptor ``reading`` (of ``key`` in the
    place ``source``, whose errors are told as its own) to ``fd``, hashing
    them; the digest and the bytes left unread (not 0: the source is shorter
    than ``size``). No read past ``size``: whether the source grew is told
    by its stamp, checked after (a grown file has another size)."""
    import hashlib

    hasher = hashlib.sha256()
    left = size
    while left > 0:
        try:
            block = os.read(reading, min(left, BLOCK))
        except OSError as exc:
            raise translate(exc, source, key) from exc
        if not block:
            break
        hasher.update(block)
        write_all(fd, block)
        left -= len(block)
    return f"{DIGEST}:{hasher.hexdigest()}", left


def pump_overlapped(data: IO[bytes], fd: int) -> str:
    """Copy a big stream, hashing each block in a second thread while it is
    written here: sha256 and write() both release the GIL, so the hash
    costs almost nothing on top of the write."""
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    hasher = hashlib.sha256()
    with ThreadPoolExecutor(max_workers=1) as pool:
        while block := data.read(BIG_BLOCK):
            hashed = pool.submit(hasher.update, block)
            write_all(fd, block)
            hashed.result()
    return f"{DIGEST}:{hasher.hexdigest()}"


def write_all(fd: int, block: bytes) -> None:
    written = os.write(fd, block)
    if written < len(block):
        view = memoryview(block)[written:]
        while view:
            view = view[os.write(fd, view) :]


def copy_out(fd: int, name: str, kept: str) -> None:
    """Copy ``name`` in the folder ``fd`` (a file or a link) to the path
    ``kept`` (for the trash, where a hard link is not possible)."""
    found = os.stat(name, dir_fd=fd, follow_symlinks=False)
    if st.S_ISLNK(found.st_mode):
        os.symlink(os.readlink(name, dir_fd=fd), kept)
        return
    source = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    with os.fdopen(source, "rb") as reader, open(kept, "xb") as writer:
        lazy_shutil().copyfileobj(reader, writer, BLOCK)
        os.fchmod(writer.fileno(), found.st_mode & 0o7777)
    os.utime(kept, ns=(found.st_atime_ns, found.st_mtime_ns))


def lazy_shutil() -> Any:
    """shutil, imported on first use (it is not needed by most runs)."""
    import shutil

    return shutil
