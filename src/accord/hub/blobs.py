"""Content-addressed blob stores: a folder (default) or an S3 prefix.

A blob is named by the sha256 of its bytes, so the same content is stored
once whatever collection holds it, and a blob never changes once written.
Both stores take content as a stream and hash it as it goes (memory stays
bounded whatever the size), and install a blob only once it is whole: a
reader never sees half a blob.

Resumable uploads keep their received bytes under the upload's id
(``append`` adds a verified chunk at the recorded offset) until
``finish`` turns them into a blob.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import tempfile
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

from accord.errors import ConfigError, NoSpace, NotFound
from accord.replica import hash_stream
from accord.replicas.local_at import SYNC_FLAGS, syncfs_fd
from accord.replicas.local_errors import unflushed

__all__ = ["Blobs", "FolderBlobs", "S3Blobs", "iter_blob", "open_blobs"]

_CHUNK = 1 << 20
_names = itertools.count()  # temporary names: this process's id and a counter


class Blobs:
    """The interface both stores offer."""

    def has(self, digest: str) -> bool:
        raise NotImplementedError

    def open(self, digest: str, start: int = 0) -> IO[bytes]:
        raise NotImplementedError

    def put(self, stream: IO[bytes]) -> tuple[str, int]:
        """Store everything ``stream`` holds; ``(sha256 digest, size)``."""
        raise NotImplementedError

    def flush(self) -> None:
        """Make every blob written so far durable."""

    def close(self) -> None:
        """Let go of what the store holds open (the hub is closing)."""

    def append(self, upload: str, offset: int, stream: IO[bytes]) -> int:
        """Add ``stream`` to an upload that holds ``offset`` bytes; new size."""
        raise NotImplementedError

    def finish(self, upload: str) -> tuple[str, int]:
        """Turn a whole upload into a blob; ``(digest, size)``."""
        raise NotImplementedError

    def discard(self, upload: str) -> None:
        raise NotImplementedError


def open_blobs(url: str, folder: Path) -> Blobs:
    """The store named by ``url``: a path (relative to the hub's folder)
    or ``s3://bucket/prefix?endpoint_url=...``."""
    if url.startswith("s3://"):
        return S3Blobs.from_url(url)
    path = Path(url)
    return FolderBlobs(path if path.is_absolute() else folder / path)


def _hex(digest: str) -> str:
    hexpart = digest.split(":", 1)[-1]
    if len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise NotFound("no such content", key=digest)
    return hexpart


#: what to do after a failed write-back of the blob folder
_RESTART = (
    "check the disk (the system log, 'dmesg', says more), then restart the "
    "hub: what it could not store was not recorded, and the clients' next "
    "runs send it again"
)


class FolderBlobs(Blobs):
    """Blobs as files ``ab/cd/<sha256>`` in a folder; uploads in ``uploads/``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for name in ("tmp", "uploads"):
            (root / name).mkdir(parents=True, exist_ok=True)
        self._clean()
        # the folder opened for ``syncfs`` before any blob is written, kept:
        # the kernel tells each open descriptor once of a failed write-back,
        # so one opened later could miss a failure another flush saw first;
        # flushes take turns on it, and once one failed every later one
        # fails too (which blobs were lost cannot be told)
        self._sync_fd = os.open(root, SYNC_FLAGS)
        self._closing = weakref.finalize(self, os.close, self._sync_fd)
        self._flushing = threading.Lock()
        self._lost: OSError | None = None

    def close(self) -> None:
        """Let go of the folder (its descriptor; freeing the store does too)."""
        self._closing()

    def _clean(self) -> None:
        """Remove the temporary files of processes that died (a kill)."""
        for path in (self.root / "tmp").iterdir():
            pid = path.name.split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    path.unlink()

    def _path(self, digest: str) -> Path:
        hexpart = _hex(digest)
        return self.root / hexpart[:2] / hexpart[2:4] / hexpart

    def has(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def open(self, digest: str, start: int = 0) -> IO[bytes]:
        try:
            handle = open(self._path(digest), "rb")  # noqa: SIM115 - caller closes
        except FileNotFoundError:
            raise NotFound("the hub lost this content", key=digest) from None
        if start:
            handle.seek(start)
        return handle

    def put(self, stream: IO[bytes]) -> tuple[str, int]:
        temp = str(self.root / "tmp" / f"{os.getpid()}-{next(_names)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                digest, size = _copy_hashing(stream, out)
            self._install(temp, digest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        return digest, size

    def _install(self, temp: str, digest: str) -> None:
        final = self._path(digest)
        if final.exists():
            return
        try:
            os.replace(temp, final)
        except FileNotFoundError:  # the blob's folder is new
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, final)

    def flush(self) -> None:
        """Make the blobs written durable (one ``syncfs``). A write-back that
        failed since the hub started fails this flush and every later one
        (the hub's error, not a traceback): restart the hub once the disk
        is checked."""
        with self._flushing:
            if self._lost is None:
                try:
                    syncfs_fd(self._sync_fd)
                except OSError as exc:
                    self._lost = exc
            if self._lost is not None:
                raise unflushed(self._lost, str(self.root), _RESTART) from self._lost

    def _upload(self, upload: str) -> Path:
        return self.root / "uploads" / upload

    def append(self, upload: str, offset: int, stream: IO[bytes]) -> int:
        path = self._upload(upload)
        with open(path, "ab") as out:
            out.truncate(offset)  # bytes past the recorded offset are not ours
            out.seek(offset)
            _, size = _copy_hashing(stream, out)
            out.flush()
            os.fsync(out.fileno())
            return offset + size

    def finish(self, upload: str) -> tuple[str, int]:
        path = self._upload(upload)
        with open(path, "rb") as handle:
            digest, size = hash_stream(handle)
        self._install(str(path), digest)
        self.discard(upload)
        self.flush()
        return digest, size

    def discard(self, upload: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._upload(upload).unlink()


class S3Blobs(Blobs):
    """Blobs as objects ``<prefix>/blobs/<sha256>``; uploads as one object
    per received chunk, ``<prefix>/uploads/<id>/<offset>``."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None) -> None:
        import boto3
        import botocore.config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        config = botocore.config.Config(
            max_pool_connections=32,
            retries={"max_attempts": 5, "mode": "standard"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL"),
            config=config,
        )

    @classmethod
    def from_url(cls, url: str) -> S3Blobs:
        parts = urlsplit(url)
        if not parts.netloc:
            raise ConfigError(f"no bucket in {url!r}", hint="write s3://bucket/prefix")
        from accord.replicas.s3 import refuse_impossible_bucket

        refuse_impossible_bucket(parts.netloc)
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return cls(parts.netloc, parts.path, options.get("endpoint_url"))

    def _name(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def has(self, digest: str) -> bool:
        import botocore.exceptions

        try:
            self.client.head_object(
                Bucket=self.bucket, Key=self._name("blobs", _hex(digest))
            )
        except botocore.exceptions.ClientError:
            return False
        return True

    def open(self, digest: str, start: int = 0) -> IO[bytes]:
        import botocore.exceptions

        extra = {"Range": f"bytes={start}-"} if start else {}
        try:
            got = self.client.get_object(
                Bucket=self.bucket, Key=self._name("blobs", _hex(digest)), **extra
            )
        except botocore.exceptions.ClientError:
            raise NotFound("the hub lost this content", key=digest) from None
        return got["Body"]  # type: ignore[no-any-return]

    def put(self, stream: IO[bytes]) -> tuple[str, int]:
        with tempfile.TemporaryFile(dir=os.environ.get("ACCORD_HUB_TMP")) as spool:
            digest, size = _copy_hashing(stream, spool)
            spool.seek(0)
            self._install(spool, digest)
        return digest, size

    def _install(self, body: IO[bytes], digest: str) -> None:
        name = self._name("blobs", _hex(digest))
        if self.has(digest):
            return
        # upload_fileobj streams in parts: memory stays bounded
        self.client.upload_fileobj(body, self.bucket, name)

    def append(self, upload: str, offset: int, stream: IO[bytes]) -> int:
        with tempfile.TemporaryFile(dir=os.environ.get("ACCORD_HUB_TMP")) as spool:
            _, size = _copy_hashing(stream, spool)
            spool.seek(0)
            name = self._name("uploads", upload, f"{offset:020d}")
            self.client.upload_fileobj(spool, self.bucket, name)
        return offset + size

    def _chunks(self, upload: str) -> list[str]:
        prefix = self._name("uploads", upload) + "/"
        names = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            names.extend(item["Key"] for item in page.get("Contents", ()))
        return sorted(names)

    def finish(self, upload: str) -> tuple[str, int]:
        with tempfile.TemporaryFile(dir=os.environ.get("ACCORD_HUB_TMP")) as spool:
            hasher, size = hashlib.sha256(), 0
            for name in self._chunks(upload):
                start = int(name.rsplit("/", 1)[1])
                spool.seek(start)  # a chunk re-sent after a break overwrites
                body = self.client.get_object(Bucket=self.bucket, Key=name)["Body"]
                while block := body.read(_CHUNK):
                    spool.write(block)
            spool.truncate()
            spool.seek(0)
            while block := spool.read(_CHUNK):
                hasher.update(block)
                size += len(block)
            digest = f"sha256:{hasher.hexdigest()}"
            spool.seek(0)
            self._install(spool, digest)
        self.discard(upload)
        return digest, size

    def discard(self, upload: str) -> None:
        for name in self._chunks(upload):
            self.client.delete_object(Bucket=self.bucket, Key=name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _copy_hashing(stream: IO[bytes], out: IO[bytes]) -> tuple[str, int]:
    hasher, size = hashlib.sha256(), 0
    try:
        while block := stream.read(_CHUNK):
            hasher.update(block)
            out.write(block)
            size += len(block)
    except OSError as exc:
        if exc.errno == 28:  # ENOSPC
            raise NoSpace("the hub's disk is full") from exc
        raise
    return f"sha256:{hasher.hexdigest()}", size


def iter_blob(handle: IO[bytes], limit: int | None = None) -> Iterator[bytes]:
    """The blocks of an open blob (at most ``limit`` bytes), then close it."""
    try:
        left = limit
        while left is None or left > 0:
            block = handle.read(_CHUNK if left is None else min(_CHUNK, left))
            if not block:
                break
            if left is not None:
                left -= len(block)
            yield block
    finally:
        handle.close()
