"""An S3 bucket prefix (AWS or any S3-compatible store): ``s3://bucket/prefix``.

Configuration is the usual AWS one (environment, ``~/.aws``, profiles with
``?profile=NAME``, ``AWS_ENDPOINT_URL`` or ``?endpoint_url=`` for
S3-compatible stores, ``?region=``).

Each item is an object under the prefix; a folder is a zero-byte
``name/`` marker (so empty folders survive), and folders implied by longer
keys are reported too. Versions are ETags. The content digest (sha256),
mtime and mode travel in the object's metadata (``x-amz-meta-accord-*``),
so nothing is downloaded just to compare it.

Writes are conditional: ``If-None-Match: *`` when nothing may be there,
``If-Match: <etag>`` when replacing, so a concurrent writer is never
clobbered (the server answers 412 and the action is skipped). Objects up to
``_SINGLE_PUT`` bytes are hashed in memory and sent in one PUT; bigger ones
are uploaded in parallel parts to a temporary key under ``.accord/tmp/``
and then copied into place under the same condition, so the real key never
holds a half-written object. Deleted and overwritten objects are copied
into ``.accord/trash/<run>/`` first. Each thread shares one client (boto3
clients are thread-safe) with a connection pool sized for many transfers.

Keys are UTF-8 and at most 1,024 bytes with the prefix (and room kept for
the trash's longer names): the capabilities say so, and the engine refuses
a longer name before it is planned. A key that would leave the prefix
(``..``, an empty part...) is refused before any request: some servers and
proxies resolve ``..`` in a request's path.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import botocore.config
import botocore.exceptions

from accord.capabilities import Capabilities
from accord.errors import (
    AlreadyExists,
    ConfigError,
    NotEmpty,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    ReplicaError,
    TransientError,
    Unreachable,
    UnsafeName,
    connection_reason,
)
from accord.keys import IgnoreRules, in_meta
from accord.model import DIR, FILE, Entry, Problem, Spot, parent_of
from accord.replica import (
    DIGEST,
    META_DIR,
    Replica,
    TrashItem,
    check_digest,
    check_expected,
    check_key,
    check_run,
    read_all,
)

__all__ = ["S3Replica", "bucket_name_problem", "refuse_impossible_bucket"]

_SINGLE_PUT = 64 << 20
_PART = 16 << 20
_META_DIGEST = "accord-sha256"
_META_MTIME = "accord-mtime-ns"
_META_MODE = "accord-mode"
_KEY_MAX = 1024  # bytes in an object's key, as S3 allows
# what the trash adds to a key: ".accord/trash/<run stamp>/" and ".<8 hex>"
_TRASH_ROOM = len(f"{META_DIR}/trash/20260101T000000Z-aaaaaa/") + 9


_BUCKET_RULES = (
    "a bucket name has 3-63 characters: lowercase letters, digits, dots and "
    "hyphens; it begins and ends with a letter or digit"
)
_BUCKET_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_RESERVED_STARTS = ("xn--", "sthree-")
# (".mrap": a Multi-Region Access Point's alias, which no request takes as
# a bucket; "-s3alias", "--ol-s3" and "--x-s3" end names that requests do
# take as one: access point aliases and directory buckets)
_RESERVED_ENDS = (".mrap",)
#: a name some store may still hold though the rules above refuse it: AWS
#: serves buckets made before March 2018 in us-east-1 whose names have
#: capitals and underscores, up to 255 characters (botocore lets the same
#: through); such a name is tried, and told as invalid if it is not there
_POSSIBLE = re.compile(r"[A-Za-z0-9._-]{3,255}")


def bucket_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an S3 bucket's name, or None when it can.

    AWS's rules for general purpose buckets: 3 to 63 characters, only
    lowercase letters, digits, dots and hyphens, beginning and ending with a
    letter or digit, no two dots in a row, not shaped like an IP address,
    not beginning with ``xn--`` or ``sthree-``, not ending with ``.mrap``.
    Nothing stricter, so no bucket of an S3-compatible store (MinIO, Ceph,
    moto) that AWS would allow is refused; and the other names AWS keeps
    from new buckets stay allowed
    (``-s3alias`` and ``--ol-s3`` end access point aliases, ``--x-s3``
    directory buckets: each is used where a bucket's name goes). Pure: no
    request is made.
    """
    if len(name) < 3 or len(name) > 63:
        return f"it has {len(name)} characters; a bucket name has 3 to 63"
    wrong = sorted(set(name) - _BUCKET_CHARS, key=name.index)
    if wrong:
        shown = ", ".join(repr(c) for c in wrong)
        return (
            f"it contains {shown}; only lowercase letters, digits, '.' and '-' "
            "are allowed"
        )
    for end, char in (("begins", name[0]), ("ends", name[-1])):
        if not char.isalnum():
            return f"it {end} with {char!r}, not a letter or digit"
    if ".." in name:
        return "it has two dots in a row"
    if _IPV4.fullmatch(name):
        return "it is shaped like an IP address"
    for start in _RESERVED_STARTS:
        if name.startswith(start):
            return f"it begins with {start!r}, which S3 keeps for itself"
    for tail in _RESERVED_ENDS:
        if name.endswith(tail):
            return f"it ends with {tail!r}, which S3 keeps for itself"
    return None


def refuse_impossible_bucket(name: str) -> None:
    """ConfigError for a bucket's name no store can hold (not even an old
    AWS bucket: ``_POSSIBLE``), naming the rule it breaks."""
    reason = bucket_name_problem(name)
    if reason is not None and not _POSSIBLE.fullmatch(name):
        raise ConfigError(
            f"{name!r} is not a valid S3 bucket name: {reason}", hint=_BUCKET_RULES
        )


class S3Replica(Replica):
    """A prefix of an S3 bucket."""

    scheme = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        profile: str | None = None,
        region: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._base = f"{self.prefix}/" if self.prefix else ""
        self._endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        self._profile = profile
        self._region = region
        where = f"{bucket}/{self.prefix}".rstrip("/")
        self.url = f"s3://{where}"
        self.identity = f"s3://{self._endpoint or 'aws'}/{where}"
        self.capabilities = Capabilities(
            symlinks=False,
            utf8_names=True,
            max_key_bytes=_KEY_MAX - len(self._base.encode()) - _TRASH_ROOM,
        )
        self._client: Any = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> S3Replica:
        parts = urlsplit(url)
        if not parts.netloc:
            raise ConfigError(f"no bucket in {url!r}", hint="write s3://bucket/prefix")
        refuse_impossible_bucket(parts.netloc)
        for name, values in parse_qs(parts.query).items():
            if name not in ("endpoint_url", "profile", "region"):
                raise ConfigError(f"unknown s3:// option {name!r}")
            options.setdefault(name, values[-1])
        return cls(parts.netloc, unquote(parts.path), **options)

    def persistent_id(self, version: str) -> str | None:
        """The ETag: it names the content (a copy keeps it)."""
        return version or None

    def spots(self) -> tuple[Spot, ...]:
        """The bucket and prefix at the endpoint (AWS when none is given)."""
        endpoint = (self._endpoint or "aws").rstrip("/").lower()
        parts = tuple(p for p in self.prefix.split("/") if p)
        return (Spot(f"s3://{endpoint}", (self.bucket, *parts)),)

    # -- lifetime ---------------------------------------------------------
    def open(self, create: bool = False) -> None:
        try:
            session = boto3.session.Session(
                profile_name=self._profile, region_name=self._region
            )
        except botocore.exceptions.ProfileNotFound as exc:
            raise ConfigError(str(exc), hint="check ~/.aws/config") from None
        config = botocore.config.Config(
            max_pool_connections=32,
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        try:
            self._client = session.client(
                "s3", endpoint_url=self._endpoint, config=config
            )
        except (ValueError, botocore.exceptions.BotoCoreError) as exc:
            raise self._bad_endpoint(exc) from None  # no scheme, a bad region
        with self._errors(""):
            self._client.head_bucket(Bucket=self.bucket)

    def close(self) -> None:
        self._client = None

    # -- keys and errors ------------------------------------------------------
    def _name(self, key: str) -> str:
        """The object's key: the prefix and ``key``, which must stay inside it
        and be UTF-8 (a name that is not is refused, never mangled)."""
        check_key(key, self.url)
        if not key.isascii() and self.capabilities.unfit_reason(key) is not None:
            raise UnsafeName(
                f"refused: {self.capabilities.unfit_reason(key)}; nothing was done",
                where=self.url,
                key=key,
            )
        return self._base + key

    def _key(self, name: str) -> str:
        return name[len(self._base) :]

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        try:
            yield
        except ReplicaError:
            raise
        except botocore.exceptions.ClientError as exc:
            raise self._translate(exc, key) from exc
        except botocore.exceptions.EndpointResolutionError as exc:
            raise self._bad_endpoint(exc) from exc  # "was not a valid URI"
        except botocore.exceptions.NoCredentialsError as exc:
            raise ConfigError(
                "no AWS credentials were found",
                hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile "
                "with ?profile=NAME",
            ) from exc
        except (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ReadTimeoutError,
            botocore.exceptions.ConnectTimeoutError,
        ) as exc:
            why = connection_reason(exc)
            raise Unreachable(
                f"cannot reach the S3 endpoint: {exc}" + (f" ({why})" if why else ""),
                where=self.url,
                key=key,
                hint="check --endpoint-url / AWS_ENDPOINT_URL and the network; "
                "nothing is half-written",
            ) from exc

    def _bad_endpoint(self, exc: Exception) -> ConfigError:
        return ConfigError(
            f"cannot use the S3 endpoint {self._endpoint!r} (for {self.url}): {exc}",
            hint="write --endpoint-url / AWS_ENDPOINT_URL as "
            "http(s)://HOST[:PORT], a port from 1 to 65535",
        )

    def _translate(self, exc: Any, key: str) -> ReplicaError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = error.get("Message") or code
        if (
            code in ("PreconditionFailed", "ConditionalRequestConflict")
            or status == 412
        ):
            return PreconditionFailed(
                "the object changed since the plan was made; left alone",
                where=self.url,
                key=key,
            )
        if code in ("NoSuchBucket", "InvalidBucketName") or (not key and status == 404):
            reason = bucket_name_problem(self.bucket)
            if reason is not None:  # a legacy name tried (``_POSSIBLE``)
                return Unreachable(
                    f"no bucket {self.bucket} here, and {self.bucket!r} is not "
                    f"a valid S3 bucket name: {reason}",
                    where=self.url,
                    hint=_BUCKET_RULES,
                )
            return Unreachable(
                f"the bucket {self.bucket} does not exist",
                where=self.url,
                hint="create it first, or check the name and the endpoint",
            )
        if code in ("NoSuchKey", "404", "NotFound") or status == 404:
            return NotFound("not found", where=self.url, key=key)
        if (
            code
            in (
                "AccessDenied",
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "403",
            )
            or status == 403
        ):
            return PermissionDenied(
                f"access denied ({code})",
                where=self.url,
                key=key,
                hint="check the credentials (AWS_ACCESS_KEY_ID, profile) and the "
                "bucket policy",
            )
        if code in ("SlowDown", "ServiceUnavailable", "InternalError") or (
            status and status >= 500
        ):
            return TransientError(
                f"the server is busy ({code})", where=self.url, key=key
            )
        return ReplicaError(f"{code}: {message}", where=self.url, key=key)

    # -- reading ----------------------------------------------------------
    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str]:
        meta = self._base + META_DIR + "/"
        folders: set[str] = set()
        reported: set[str] = set()
        get = known.get if known is not None else None
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors(""):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._base):
                for item in page.get("Contents", ()):
                    name = item["Key"]
                    if name.startswith(meta) or name == self._base:
                        continue
                    key = self._key(name)
                    if in_meta(key):  # a nested place's own folder
                        continue
                    if ignore and ignore.excludes(key.rstrip("/"), name.endswith("/")):
                        continue
                    parent = parent_of(key.rstrip("/"))
                    while parent and parent not in folders:
                        folders.add(parent)
                        parent = parent_of(parent)
                    if name.endswith("/"):
                        folders.add(key.rstrip("/"))
                        continue
                    entry = self._listed(key, item)
                    yield (
                        key if get is not None and get(key) == entry.version else entry
                    )
        for folder in sorted(folders - reported):
            if ignore and ignore.excludes(folder, True):
                continue
            version = "d"
            if get is not None and get(folder) == version:
                yield folder
            else:
                yield Entry(folder, DIR, 0, 0, 0o755, version)

    def _listed(self, key: str, item: dict[str, Any]) -> Entry:
        stamp: datetime = item["LastModified"]
        return Entry(
            key,
            FILE,
            int(item["Size"]),
            int(stamp.timestamp() * 1e9),
            0o644,
            item["ETag"].strip('"'),
        )

    def stat(self, key: str) -> Entry | None:
        with self._errors(key):
            try:
                head = self._client.head_object(Bucket=self.bucket, Key=self._name(key))
            except botocore.exceptions.ClientError as exc:
                if self._translate(exc, key).__class__ is not NotFound:
                    raise
                head = None
            if head is not None:
                return self._headed(key, head)
            if self._has_folder(key):
                return Entry(key, DIR, 0, 0, 0o755, "d")
        return None

    def _has_folder(self, key: str) -> bool:
        listed = self._client.list_objects_v2(
            Bucket=self.bucket, Prefix=self._name(key) + "/", MaxKeys=1
        )
        return bool(listed.get("KeyCount"))

    def _headed(self, key: str, head: dict[str, Any]) -> Entry:
        meta = head.get("Metadata", {})
        stamp: datetime = head["LastModified"]
        mtime = int(meta.get(_META_MTIME) or stamp.timestamp() * 1e9)
        mode = int(meta.get(_META_MODE) or "644", 8)
        digest = meta.get(_META_DIGEST)
        return Entry(
            key,
            FILE,
            int(head["ContentLength"]),
            mtime,
            mode,
            head["ETag"].strip('"'),
            f"{DIGEST}:{digest}" if digest else None,
        )

    def digest(self, entry: Entry) -> Entry:
        if entry.kind != FILE:
            return entry
        now = self.stat(entry.key)
        if now is None:
            raise NotFound("vanished", where=self.url, key=entry.key)
        if now.digest:
            return now
        with self.open_read(entry.key) as stream:
            hasher = hashlib.sha256()
            while block := stream.read(1 << 20):
                hasher.update(block)
        return now._replace(digest=f"{DIGEST}:{hasher.hexdigest()}")

    def open_read(self, key: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        with self._errors(key):
            got = self._client.get_object(Bucket=self.bucket, Key=self._name(key))
            # a listing tells upload times only: the GET tells the mtime and
            # mode kept in metadata, and the engine copies those
            return _Download(got["Body"], self._headed(key, got))  # type: ignore[return-value]

    # -- writing ----------------------------------------------------------
    @staticmethod
    def _condition(expect: Entry | None) -> dict[str, str]:
        if expect is None:
            return {"IfNoneMatch": "*"}
        return {"IfMatch": f'"{expect.version}"'}

    def _metadata(self, like: Entry, digest: str) -> dict[str, str]:
        return {
            _META_DIGEST: digest.split(":", 1)[1],
            _META_MTIME: str(like.mtime_ns),
            _META_MODE: f"{like.mode or 0o644:o}",
        }

    def write(
        self,
        key: str,
        data: IO[bytes],
        *,
        like: Entry,
        expect: Entry | None,
        trash: str | None = None,
    ) -> Entry:
        check_key(key, self.url)
        with self._errors(key):
            if expect is not None and expect.kind == DIR:
                raise PreconditionFailed("a folder is there", where=self.url, key=key)
            check_expected(self.stat(key) if expect else None, expect, self.url)
            if trash and expect is not None:
                self._keep(key, expect, trash)
            if like.size <= _SINGLE_PUT:
                body = read_all(data)
                digest = f"{DIGEST}:{hashlib.sha256(body).hexdigest()}"
                self._verify(like, digest, key)
                with self._storing(key):
                    put = self._client.put_object(
                        Bucket=self.bucket,
                        Key=self._name(key),
                        Body=body,
                        Metadata=self._metadata(like, digest),
                        **self._condition(expect),
                    )
                # what a HEAD would say, known from the PUT: no extra request
                etag = put["ETag"].strip('"')
                mode = like.mode or 0o644
                return Entry(key, FILE, len(body), like.mtime_ns, mode, etag, digest)
            with self._storing(key):
                digest = self._put_big(key, data, like, expect)
        done = self.stat(key)
        assert done is not None
        return done

    @contextlib.contextmanager
    def _storing(self, key: str) -> Iterator[None]:
        """An upload answered 404 Not Found (the bucket is there: that is
        told apart) is the server refusing the name: said so, not "not
        found" (S3 takes any UTF-8 in a key; some S3-compatible servers
        refuse a newline or another control character)."""
        try:
            yield
        except botocore.exceptions.ClientError as exc:
            error = self._translate(exc, key)  # translated once, here
            if error.__class__ is not NotFound:
                raise error from exc
            raise ReplicaError(
                "the server refused to store this name (it answered the upload "
                "404 Not Found)",
                where=self.url,
                key=key,
                hint="some S3-compatible servers refuse a newline or another "
                "control character in a name; rename it at the source",
            ) from exc

    def _verify(self, like: Entry, digest: str, key: str) -> None:
        check_digest(like, digest, self.url, key)

    def _put_big(
        self, key: str, data: IO[bytes], like: Entry, expect: Entry | None
    ) -> str:
        """Upload to a temporary key in parts, then copy into place."""
        temp = f"{self._base}{META_DIR}/tmp/{os.urandom(8).hex()}"
        client = self._client
        upload = client.create_multipart_upload(Bucket=self.bucket, Key=temp)
        parts = []
        hasher = hashlib.sha256()
        try:
            number = 1
            while block := data.read(_PART):
                hasher.update(block)
                done = client.upload_part(
                    Bucket=self.bucket,
                    Key=temp,
                    UploadId=upload["UploadId"],
                    PartNumber=number,
                    Body=block,
                )
                parts.append({"PartNumber": number, "ETag": done["ETag"]})
                number += 1
            client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=temp,
                UploadId=upload["UploadId"],
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            with contextlib.suppress(Exception):
                client.abort_multipart_upload(
                    Bucket=self.bucket, Key=temp, UploadId=upload["UploadId"]
                )
            raise
        digest = f"{DIGEST}:{hasher.hexdigest()}"
        try:
            self._verify(like, digest, key)
            check_expected(self.stat(key), expect, self.url)
            client.copy_object(
                Bucket=self.bucket,
                Key=self._name(key),
                CopySource={"Bucket": self.bucket, "Key": temp},
                Metadata=self._metadata(like, digest),
                MetadataDirective="REPLACE",
            )
        finally:
            with contextlib.suppress(Exception):
                client.delete_object(Bucket=self.bucket, Key=temp)
        return digest

    def make_dir(self, key: str, *, like: Entry, expect: Entry | None) -> Entry:
        with self._errors(key):
            current = self.stat(key)
            if current is not None and current.kind != DIR:
                check_expected(current, expect, self.url)
            try:
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=self._name(key) + "/",
                    Body=b"",
                    IfNoneMatch="*",
                )
            except botocore.exceptions.ClientError as exc:
                if not isinstance(self._translate(exc, key), PreconditionFailed):
                    raise
        return Entry(key, DIR, 0, 0, 0o755, "d")

    def set_meta(self, key: str, *, like: Entry, expect: Entry) -> Entry:
        with self._errors(key):
            if expect.kind == DIR:
                return Entry(key, DIR, 0, 0, 0o755, "d")
            current = self.stat(key)
            check_expected(current, expect, self.url)
            assert current is not None
            digest = current.digest or expect.digest
            metadata = {
                _META_MTIME: str(like.mtime_ns),
                _META_MODE: f"{like.mode or 0o644:o}",
            }
            if digest:
                metadata[_META_DIGEST] = digest.split(":", 1)[1]
            self._client.copy_object(
                Bucket=self.bucket,
                Key=self._name(key),
                CopySource={"Bucket": self.bucket, "Key": self._name(key)},
                CopySourceIfMatch=f'"{expect.version}"',
                Metadata=metadata,
                MetadataDirective="REPLACE",
            )
        done = self.stat(key)
        assert done is not None
        return done

    def delete(self, key: str, *, expect: Entry, trash: str | None = None) -> None:
        with self._errors(key):
            if expect.kind == DIR:
                self._delete_folder(key)
                return
            check_expected(self.stat(key), expect, self.url)
            if trash:
                self._keep(key, expect, trash)
            self._client.delete_object(
                Bucket=self.bucket, Key=self._name(key), IfMatch=f'"{expect.version}"'
            )

    def _delete_folder(self, key: str) -> None:
        listed = self._client.list_objects_v2(
            Bucket=self.bucket, Prefix=self._name(key) + "/", MaxKeys=2
        )
        names = [item["Key"] for item in listed.get("Contents", ())]
        if [n for n in names if n != self._name(key) + "/"]:
            raise NotEmpty(
                "the folder is not empty: something was added; left alone",
                where=self.url,
                key=key,
            )
        self._client.delete_object(Bucket=self.bucket, Key=self._name(key) + "/")

    def move(self, key: str, new_key: str, *, expect: Entry) -> Entry:
        with self._errors(key):
            check_expected(self.stat(key), expect, self.url)
            check_expected(self.stat(new_key), None, self.url)
            self._client.copy_object(
                Bucket=self.bucket,
                Key=self._name(new_key),
                CopySource={"Bucket": self.bucket, "Key": self._name(key)},
                CopySourceIfMatch=f'"{expect.version}"',
            )
            self._client.delete_object(
                Bucket=self.bucket, Key=self._name(key), IfMatch=f'"{expect.version}"'
            )
        done = self.stat(new_key)
        assert done is not None
        return done

    def _keep(self, key: str, expect: Entry, run: str) -> None:
        """Copy the current object into the trash of ``run`` (server side)."""
        kept = f"{self._base}{META_DIR}/trash/{check_run(run, self.url)}/{key}"
        if self._object_exists(kept):  # trashed twice in one run: keep both
            kept = f"{kept}.{os.urandom(4).hex()}"
        self._client.copy_object(
            Bucket=self.bucket,
            Key=kept,
            CopySource={"Bucket": self.bucket, "Key": self._name(key)},
            CopySourceIfMatch=f'"{expect.version}"',
        )

    def _object_exists(self, name: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=name)
        except botocore.exceptions.ClientError as exc:
            if isinstance(self._translate(exc, name), NotFound):
                return False
            raise
        return True

    # -- accord's own files -------------------------------------------------
    def _meta_name(self, name: str) -> str:
        return f"{self._base}{META_DIR}/{name}"

    def meta_create(self, name: str, data: bytes) -> bool:
        with self._errors(META_DIR):
            try:
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=self._meta_name(name),
                    Body=data,
                    IfNoneMatch="*",
                )
            except botocore.exceptions.ClientError as exc:
                if isinstance(self._translate(exc, META_DIR), PreconditionFailed):
                    return False
                raise
        return True

    def meta_read(self, name: str) -> bytes | None:
        with self._errors(META_DIR):
            try:
                body = self._client.get_object(
                    Bucket=self.bucket, Key=self._meta_name(name)
                )
            except botocore.exceptions.ClientError as exc:
                if isinstance(self._translate(exc, META_DIR), NotFound):
                    return None
                raise
            return bytes(body["Body"].read())

    def meta_delete(self, name: str) -> None:
        with self._errors(META_DIR):
            self._client.delete_object(Bucket=self.bucket, Key=self._meta_name(name))

    def meta_list(self, prefix: str) -> list[str]:
        start = self._meta_name(prefix)
        base = self._meta_name("")
        return sorted(name[len(base) :] for name, _ in self._objects(start))

    def _objects(self, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors(META_DIR):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", ()):
                    yield item["Key"], item

    def clean_temp(self) -> None:
        temp = self._meta_name("tmp/")
        with self._errors(META_DIR):
            for name, _ in list(self._objects(temp)):
                self._client.delete_object(Bucket=self.bucket, Key=name)
            uploads = self._client.list_multipart_uploads(
                Bucket=self.bucket, Prefix=temp
            )
            for upload in uploads.get("Uploads", ()):
                self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )

    # -- trash ------------------------------------------------------------
    def trash_list(self) -> Iterator[TrashItem]:
        base = self._meta_name("trash/")
        for name, item in self._objects(base):
            run, _, rest = name[len(base) :].partition("/")
            if rest:
                yield TrashItem(run, rest, self._listed(rest, item))

    def trash_runs(self) -> list[str]:
        return sorted({item.run for item in self.trash_list()})

    def trash_restore(self, item: TrashItem, key: str) -> Entry:
        run, old = check_run(item.run, self.url), check_key(item.key, self.url)
        source = self._meta_name(f"trash/{run}/{old}")
        self._name(key)  # a name inside the place, or refused
        with self._errors(key):
            if self.stat(key) is not None:  # CopyObject has no create-only form
                raise AlreadyExists(
                    "something is already there",
                    where=self.url,
                    key=key,
                    hint="restore it under another name with --to",
                )
            try:
                self._client.copy_object(
                    Bucket=self.bucket,
                    Key=self._name(key),
                    CopySource={"Bucket": self.bucket, "Key": source},
                    IfNoneMatch="*",
                )
            except botocore.exceptions.ClientError as exc:
                if isinstance(self._translate(exc, key), PreconditionFailed):
                    raise AlreadyExists(
                        "something is already there",
                        where=self.url,
                        key=key,
                        hint="restore it under another name with --to",
                    ) from exc
                raise
            self._client.delete_object(Bucket=self.bucket, Key=source)
        done = self.stat(key)
        assert done is not None
        return done

    def trash_purge(self, run: str) -> int:
        return self._delete_all(self._meta_name(f"trash/{check_run(run, self.url)}/"))

    def forget_meta(self) -> None:
        self._delete_all(self._meta_name(""))

    def _delete_all(self, prefix: str) -> int:
        """Delete every object under ``prefix``, 1,000 per request."""
        names = [name for name, _ in self._objects(prefix)]
        with self._errors(META_DIR):
            for start in range(0, len(names), 1000):
                chunk = names[start : start + 1000]
                self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": n} for n in chunk], "Quiet": True},
                )
        return len(names)


class _Download:
    """An object's body, with the entry its GET response describes."""

    def __init__(self, body: Any, entry: Entry) -> None:
        self._body = body
        self.entry = entry

    def read(self, n: int = -1) -> bytes:
        # botocore reads all with no size (a negative size is not "all" there)
        block: bytes = self._body.read() if n is None or n < 0 else self._body.read(n)
        return block

    def close(self) -> None:
        self._body.close()

    def __enter__(self) -> _Download:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
