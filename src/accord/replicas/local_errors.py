"""A local disk's OSError as accord's error, translated once at the boundary."""

from __future__ import annotations

import errno

from accord.errors import (
    NoSpace,
    NotFound,
    PermissionDenied,
    ReplicaError,
    TransientError,
    Unreachable,
)

__all__ = ["translate", "unflushed"]


def translate(exc: OSError, where: str, key: str) -> ReplicaError:
    code = exc.errno
    text = exc.strerror or str(exc)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return NoSpace(
            "no space left",
            where=where,
            key=key,
            hint="free some space; nothing was half-written, run again afterwards",
        )
    if code == errno.EROFS:
        return PermissionDenied(
            "read-only file system",
            where=where,
            key=key,
            hint="this place is mounted read-only; remount it read-write to change it",
        )
    if code in (errno.EACCES, errno.EPERM):
        return PermissionDenied(
            text.lower(),
            where=where,
            key=key,
            hint="check the permissions of this item and its folder",
        )
    if code in (errno.ENOENT, errno.ENOTDIR):
        return NotFound("not found", where=where, key=key)
    if code in (errno.EIO, errno.ENXIO, errno.ENODEV, errno.ESTALE):
        return Unreachable(
            f"input/output error ({text})",
            where=where,
            key=key,
            hint="is the disk still mounted?",
        )
    if code in (errno.EINTR, errno.EAGAIN, errno.EBUSY):
        return TransientError(text, where=where, key=key)
    return ReplicaError(text, where=where, key=key)


def unflushed(exc: OSError, where: str, hint: str | None = None) -> ReplicaError:
    """A flush (``syncfs``) that failed: the file system could not write
    back what this run (or another program) wrote to it since the run
    began. Nothing written since the last flush may be recorded as synced.
    ``hint``: what to do, where a run's own (run again) is not it."""
    text = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpace(
            "the disk ran out of space while writing back what was copied",
            where=where,
            hint=hint or f"free some space, then run again: {_AGAIN}",
        )
    return ReplicaError(
        f"the file system could not write back what was copied ({text.lower()})",
        where=where,
        hint=hint or f"check the disk (the system log, 'dmesg', says more); {_AGAIN}",
    )


#: why running again after a failed flush loses nothing
_AGAIN = (
    "nothing since the last flush was recorded as synced, so the next run "
    "checks it and copies it again"
)
