"""A collection of an accord hub: ``hub://HOST:PORT/NAME`` (``hubs://`` for
TLS; ``?ca=/path/ca.pem`` for a private CA).

The hub keeps every item's entry (kind, size, mtime, mode, sha256, link
text) and a version per item that changes with each change, so one listing
request tells everything a run needs (no per-file requests, no download to
compare). Writes name the version they replace; the hub refuses a stale
one (412) and this place raises ``PreconditionFailed``, so the engine
re-plans. Small files go many to a request (``write_batch``); bigger ones
go as resumable uploads in chunks (a broken connection or a restarted hub
resumes where the hub's copy stops, in this run or the next), and content
the hub already holds in a collection this user can read is not sent
again. Deleted and overwritten items go to the collection's trash.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, suppress
from typing import IO, Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from accord.capabilities import Capabilities
from accord.errors import (
    AccordError,
    ConfigError,
    NotFound,
    PreconditionFailed,
    ReplicaError,
    TransientError,
    Unreachable,
)
from accord.keys import IgnoreRules
from accord.model import DIR, FILE, Entry, Problem
from accord.replica import (
    Replica,
    Touched,
    TrashItem,
    Watching,
    WriteItem,
    check_key,
    check_run,
)
from accord.replicas import hub_protocol as wire
from accord.replicas.hub_client import HubClient, server_url

__all__ = ["HubReplica"]

_SMALL = 1 << 20  # a file at most this big goes in one batch request
_CHUNK = 8 << 20  # the size of an upload's chunks
_RESUMES = 6  # attempts at one chunk before giving up


class HubReplica(Replica):
    """One collection of a hub."""

    scheme = "hub"

    def __init__(self, url: str, *, ca: str | None = None) -> None:
        base, path = server_url(url)
        name = path.strip("/")
        if not name or "/" in name:
            raise ConfigError(
                f"no collection in {url!r}",
                hint="write hub://HOST:PORT/COLLECTION (one name, no sub-folder)",
            )
        self.name = name
        self._ca = ca
        scheme = "hubs" if base.startswith("https") else "hub"
        self.url = f"{scheme}://{base.split('://', 1)[1]}/{name}"
        self.identity = self.url
        self.capabilities = Capabilities(
            listed_digests=frozenset({"sha256"}),
            batch_writes=True,
            utf8_names=True,  # names travel as JSON and live in SQL text
        )
        self.client: HubClient | None = None
        self._path = f"{wire.API}/c/{quote(name)}"

    @classmethod
    def from_url(cls, url: str, **options: Any) -> HubReplica:
        parts = urlsplit(url)
        for name, values in parse_qs(parts.query).items():
            if name != "ca":
                raise ConfigError(f"unknown hub:// option {name!r}", hint="known: ca")
            options.setdefault("ca", values[-1])
        return cls(parts._replace(query="").geturl(), **options)

    # -- lifetime ---------------------------------------------------------
    def exists(self) -> bool:
        """False when the hub says the collection does not exist (it tells
        admins only: to others, missing and not granted look the same)."""
        with HubClient(self.url, ca=self._ca) as client:
            client.where = self.url
            try:
                client.json("GET", self._path)
            except NotFound:
                return False
            except AccordError:
                return True
        return True

    def open(self, create: bool = False) -> None:
        self._http()
        try:
            found = self._api("GET", "", params={"create": "1"} if create else None)
        except NotFound as exc:
            self.close()
            raise Unreachable(exc.reason, where=self.url, hint=exc.hint) from exc
        except BaseException:
            self.close()
            raise
        if found.get("access") != "write":
            self.capabilities = self.capabilities._replace(read_only=True)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def _http(self) -> HubClient:
        if self.client is None:  # a collection still to be made is not open
            self.client = HubClient(self.url, ca=self._ca)
            self.client.where = self.url
        return self.client

    def _api(self, method: str, path: str, **kw: Any) -> Any:
        return self._http().json(method, self._path + path, **kw)

    def watch(self, touched: Callable[[Touched], None]) -> Watching | None:
        """The hub's pushed events for this collection (``hub_events``)."""
        from accord.replicas.hub_events import EventFeed

        return EventFeed(self.url, self.name, touched, ca=self._ca)

    # -- reading ----------------------------------------------------------
    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str]:
        get = known.get if known is not None else None
        for entry in self._listing():
            if ignore and ignore.excludes(entry.key, entry.kind == DIR):
                continue
            if get is not None and get(entry.key) == entry.version:
                yield entry.key
            else:
                yield entry

    def _listing(self) -> Iterator[Entry]:
        client = self._http()
        answer = client.send("GET", self._path + "/entries", stream=True)
        try:
            with client._errors(self.url):
                lines = answer.iter_lines()
                next(lines, None)  # {"seq": N}
                for line in lines:
                    if line:
                        yield Entry(*json.loads(line))
        finally:
            answer.close()

    def stat(self, key: str) -> Entry | None:
        check_key(key, self.url)
        try:
            found = self._api("GET", "/stat", params={"key": key})["entry"]
        except NotFound:  # the collection itself is not there (yet)
            return None
        return wire.entry_from_wire(found) if found else None

    def digest(self, entry: Entry) -> Entry:
        check_key(entry.key, self.url)
        if entry.digest or entry.kind != FILE:
            return entry
        now = self.stat(entry.key)
        if now is None:
            raise NotFound("vanished", where=self.url, key=entry.key)
        return now

    def open_read(self, key: str) -> AbstractContextManager[IO[bytes]]:
        return _Download(self, check_key(key, self.url))  # type: ignore[return-value]

    # -- writing ----------------------------------------------------------
    def _change(self, change: dict[str, Any]) -> Entry | None:
        check_key(change["key"], self.url)
        if change.get("new_key") is not None:
            check_key(change["new_key"], self.url)
        (result,) = self._changes([change])
        if isinstance(result, AccordError):
            raise result
        return result

    def _changes(
        self, changes: list[dict[str, Any]]
    ) -> list[Entry | AccordError | None]:
        found = self._api("POST", "/changes", json_body={"changes": changes})
        return [self._result(item) for item in found["results"]]

    def _result(self, item: dict[str, Any]) -> Entry | AccordError | None:
        if "error" in item:
            return wire.error_from_body(412, item, self.url)
        return wire.entry_from_wire(item["entry"]) if item["entry"] else None

    @staticmethod
    def _wire(entry: Entry | None) -> list[Any] | None:
        return list(entry) if entry is not None else None

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
        if expect is not None and expect.kind == DIR:
            raise PreconditionFailed("a folder is there", where=self.url, key=key)
        if like.size <= _SMALL:
            return self.write_batched(key, data, like=like, expect=expect, trash=trash)
        change = {
            "op": "file",
            "key": key,
            "like": self._wire(like),
            "expect": self._wire(expect),
            "trash": trash,
        }
        if like.digest and self._held(like.digest):
            change["digest"] = like.digest
        else:
            change["upload"] = self._upload(data, like)
        done = self._change(change)
        assert done is not None
        return done

    def _held(self, digest: str) -> bool:
        found = self._http().api("POST", "/have", json_body={"digests": [digest]})
        return digest in found["held"]

    def _upload(self, data: IO[bytes], like: Entry) -> str:
        """Send ``data`` as a resumable upload; its id."""
        client = self._http()
        start = client.api(
            "POST", "/uploads", json_body={"size": like.size, "token": _token(like)}
        )
        upload, held = start["id"], int(start["offset"])
        position = 0
        while position < held:  # the hub has these bytes from an earlier try
            skipped = data.read(min(_CHUNK, held - position))
            if not skipped:
                break
            position += len(skipped)
        while True:
            chunk = _read_up_to(data, _CHUNK)
            if not chunk:
                break
            position = self._send_chunk(upload, position, chunk)
        return str(upload)

    def _send_chunk(self, upload: str, position: int, chunk: bytes) -> int:
        """Send one chunk at ``position``, resuming from what the hub holds
        when the connection breaks; the position after it."""
        client = self._http()
        sent = 0
        for attempt in range(_RESUMES):
            try:
                found = client.api(
                    "PATCH",
                    f"/uploads/{upload}",
                    body=chunk[sent:],
                    headers={"upload-offset": str(position + sent)},
                    retry=False,
                )
                return int(found["offset"])
            except (TransientError, Unreachable, PreconditionFailed) as exc:
                if attempt + 1 >= _RESUMES:
                    raise
                time.sleep(min(0.5 * 2**attempt, 8.0))
                try:
                    held = int(client.api("GET", f"/uploads/{upload}")["offset"])
                except (TransientError, Unreachable):
                    continue
                if not position <= held <= position + len(chunk):
                    raise TransientError(
                        "the hub lost part of an upload; run again",
                        where=self.url,
                    ) from exc
                sent = held - position
                if sent == len(chunk):
                    return held
        raise AssertionError("unreachable")

    def write_batch(self, items: list[WriteItem]) -> list[Entry | AccordError]:
        refused: dict[int, AccordError] = {}
        for number, item in enumerate(items):
            try:
                check_key(item.key, self.url)
            except AccordError as exc:
                refused[number] = exc
        sent = [item for number, item in enumerate(items) if number not in refused]
        results = iter(self._send_batch(sent) if sent else [])
        return [refused.get(n) or next(results) for n in range(len(items))]

    def _send_batch(self, items: list[WriteItem]) -> list[Entry | AccordError]:
        manifest = [
            {
                "op": "file",
                "key": item.key,
                "size": len(item.data),
                "like": self._wire(item.like),
                "expect": self._wire(item.expect),
                "trash": item.trash,
            }
            for item in items
        ]
        body = b"".join([wire.encode_batch_head(manifest), *(i.data for i in items)])
        found = self._api(
            "POST",
            "/batch",
            body=body,
            headers={"content-type": "application/octet-stream"},
        )
        results: list[Entry | AccordError] = []
        for item in found["results"]:
            result = self._result(item)
            results.append(result if result is not None else ReplicaError("no entry"))
        return results

    def make_dir(self, key: str, *, like: Entry, expect: Entry | None) -> Entry:
        done = self._change(
            {
                "op": "dir",
                "key": key,
                "like": self._wire(like),
                "expect": self._wire(expect),
            }
        )
        assert done is not None
        return done

    def make_link(
        self, key: str, *, like: Entry, expect: Entry | None, trash: str | None = None
    ) -> Entry:
        done = self._change(
            {
                "op": "link",
                "key": key,
                "like": self._wire(like),
                "expect": self._wire(expect),
                "trash": trash,
            }
        )
        assert done is not None
        return done

    def set_meta(self, key: str, *, like: Entry, expect: Entry) -> Entry:
        done = self._change(
            {
                "op": "meta",
                "key": key,
                "like": self._wire(like),
                "expect": self._wire(expect),
            }
        )
        assert done is not None
        return done

    def delete(self, key: str, *, expect: Entry, trash: str | None = None) -> None:
        self._change(
            {"op": "delete", "key": key, "expect": self._wire(expect), "trash": trash}
        )

    def move(self, key: str, new_key: str, *, expect: Entry) -> Entry:
        done = self._change(
            {"op": "move", "key": key, "new_key": new_key, "expect": self._wire(expect)}
        )
        assert done is not None
        return done

    def post_progress(self, data: dict[str, Any]) -> None:
        """Tell the hub how a run with this collection is going (its
        dashboard shows it); a failure is ignored: progress is only a view."""
        if self.client is None:
            return
        body = {"collection": self.name, **data}
        with suppress(AccordError):
            self.client.api("POST", "/progress", json_body=body, retry=False)

    # -- accord's own files -------------------------------------------------
    def meta_create(self, name: str, data: bytes) -> bool:
        found = self._api("PUT", f"/own/{quote(name)}", body=data)
        return bool(found["created"])

    def meta_read(self, name: str) -> bytes | None:
        try:
            answer = self._http().send("GET", f"{self._path}/own/{quote(name)}")
        except NotFound:
            return None
        return answer.content

    def meta_delete(self, name: str) -> None:
        self._api("DELETE", f"/own/{quote(name)}")

    def meta_list(self, prefix: str) -> list[str]:
        return list(self._api("GET", "/own", params={"prefix": prefix})["names"])

    def forget_meta(self) -> None:
        self._api("DELETE", "/own")

    # -- trash ------------------------------------------------------------
    def trash_list(self) -> Iterator[TrashItem]:
        for run, key, entry in self._api("GET", "/trash")["items"]:
            yield TrashItem(run, key, wire.entry_from_wire(entry))

    def trash_restore(self, item: TrashItem, key: str) -> Entry:
        check_key(item.key, self.url)
        check_run(item.run, self.url)
        done = self._change(
            {"op": "restore", "key": key, "trash_id": int(item.entry.version)}
        )
        assert done is not None
        return done

    def trash_purge(self, run: str) -> int:
        check_run(run, self.url)
        return int(self._api("POST", "/trash/purge", json_body={"run": run})["removed"])


class _Download:
    """A file's content as a stream; a connection that breaks is resumed
    with a range request, as long as the file has not changed."""

    def __init__(self, place: HubReplica, key: str) -> None:
        self._place = place
        self._key = key
        self._answer: httpx.Response | None = None
        self._blocks: Iterator[bytes] | None = None
        self._buffer = b""
        self._position = 0
        self.entry: Entry | None = None
        self._open(0)

    def _open(self, start: int) -> None:
        client = self._place._http()
        headers = {"range": f"bytes={start}-"} if start else None
        self._answer = client.send(
            "GET",
            self._place._path + "/file",
            params={"key": self._key},
            headers=headers,
            stream=True,
        )
        told = wire.entry_from_wire(json.loads(self._answer.headers["x-accord-entry"]))
        if self.entry is not None and told.version != self.entry.version:
            raise PreconditionFailed(
                "the file changed on the hub while it was read",
                where=self._place.url,
                key=self._key,
            )
        self.entry = told
        self._blocks = self._answer.iter_raw(1 << 20)

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buffer) < n:
            block = self._next()
            if not block:
                break
            self._buffer += block
        if n < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:n], self._buffer[n:]
        self._position += len(out)
        return out

    def _next(self) -> bytes:
        assert self._blocks is not None and self.entry is not None
        for attempt in range(_RESUMES):
            try:
                return next(self._blocks, b"")
            except (httpx.TransportError, httpx.StreamError) as exc:
                if attempt + 1 >= _RESUMES:
                    raise TransientError(
                        "the download broke", where=self._place.url, key=self._key
                    ) from exc
                self.close()
                time.sleep(0.5 * 2**attempt)
                self._open(self._position + len(self._buffer))
        return b""

    def close(self) -> None:
        if self._answer is not None:
            self._answer.close()
            self._answer = None

    def __enter__(self) -> _Download:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _token(like: Entry) -> str:
    """Names the content of an upload (the source's key, size and version),
    so an upload broken in one run resumes in the next; a source that
    changed has another version, so another token."""
    text = "\n".join(map(str, (like.key, like.size, like.mtime_ns, like.version)))
    return hashlib.sha256(text.encode()).hexdigest()


def _read_up_to(data: IO[bytes], size: int) -> bytes:
    """Up to ``size`` bytes (fewer only at the end of ``data``)."""
    blocks, left = [], size
    while left > 0:
        block = data.read(min(left, 1 << 20))
        if not block:
            break
        blocks.append(block)
        left -= len(block)
    return b"".join(blocks)
