"""The file API of a hub (``/api/v1``): collections, their items, content,
trash, accord's own files, resumable uploads.

A collection is a place (``hub://host:port/NAME``); the client in
``accord.replicas.hub`` maps the Replica contract onto these routes:

=========================================  ======================================
``GET  /c/{name}``                          open (``?create=1``: admins create)
``GET  /c/{name}/entries[?since=SEQ]``      every entry in one streamed answer
``GET  /c/{name}/stat?key=K``               one entry
``GET  /c/{name}/file?key=K``               content (``Range: bytes=N-`` resumes)
``POST /c/{name}/batch``                    many small files in one body
``POST /c/{name}/changes``                  writes by upload or digest, folders,
                                            links, times, deletes, moves, restores
``GET  /c/{name}/trash``, ``POST .../trash/purge``
``GET|PUT|DELETE /c/{name}/own/{file}``     accord's own files (lock, history)
``GET  /c/{name}/history``                  who changed what, and when
``POST /have``                              which digests the hub already holds
``POST /uploads``, ``GET|PATCH /uploads/{id}``  resumable uploads
=========================================  ======================================
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import IO, Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from accord.errors import AccordError, NotFound
from accord.hub import extras, items
from accord.hub import schema as t
from accord.hub.accounts import Account
from accord.hub.auth import HubError, read_body
from accord.hub.blobs import iter_blob
from accord.hub.items import Change, Collection
from accord.hub.store import INLINE, Hub
from accord.hub.web import accord_error, endpoint, hub_of, json_body, run
from accord.model import FILE, Entry
from accord.replicas import hub_protocol as wire

__all__ = ["BATCH_LIMIT", "CHUNK_LIMIT", "routes"]

BATCH_LIMIT = 64 << 20  # bytes in one batch body
CHUNK_LIMIT = 64 << 20  # bytes in one upload chunk
OWN_LIMIT = 4 << 20  # one of accord's own files


def _collection(
    hub: Hub, account: Account, name: str, *, write: bool = False, create: bool = False
) -> Collection:
    engine = hub.writer if create else hub.reader
    with engine.begin() as conn:
        return items.collection(conn, account, name, write=write, create=create)


def _key(request: Request) -> str:
    key = request.query_params.get("key")
    if key is None:
        raise HubError("bad_request", "the request names no key (?key=)")
    try:
        return items.check_name(key)
    except AccordError as exc:
        raise HubError(
            "unsafe_name", getattr(exc, "reason", exc.message), key
        ) from None


def _stat(hub: Hub, account: Account, name: str, key: str) -> Entry | None:
    with hub.reader.connect() as conn:
        col = items.collection(conn, account, name)
        return items.stat(conn, col.id, key)


@endpoint()
async def open_collection(request: Request, account: Account) -> Response:
    """Open a collection: its seq and the caller's access."""
    hub = hub_of(request)
    create = request.query_params.get("create") == "1"
    name = request.path_params["name"]
    col = await run(_collection, hub, account, name, create=create)
    return JSONResponse({"name": col.name, "access": col.access, "hub": hub.hub_id})


@endpoint()
async def list_entries(request: Request, account: Account) -> Response:
    """Every live entry (or every change after ``since``), one JSON array a
    line, after a first line ``{"seq": N}``: the collection's position."""
    hub = hub_of(request)
    col = await run(_collection, hub, account, request.path_params["name"])
    raw = request.query_params.get("since")
    since = int(raw) if raw and raw.isdigit() else None

    def seq() -> int:
        with hub.reader.connect() as conn:
            return items.seq_of(conn, col.id)

    position = await run(seq)

    def lines() -> Iterator[bytes]:
        yield json.dumps({"seq": position}).encode() + b"\n"
        batch: list[bytes] = []
        for entry, alive in items.entries(hub.reader, col.id, since):
            line = list(entry) if alive else [entry.key, None]
            batch.append(json.dumps(line, separators=(",", ":")).encode())
            if len(batch) >= 1000:
                yield b"\n".join(batch) + b"\n"
                batch = []
        if batch:
            yield b"\n".join(batch) + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@endpoint()
async def stat_item(request: Request, account: Account) -> Response:
    """One entry, or ``null``."""
    hub = hub_of(request)
    key = _key(request)
    entry = await run(_stat, hub, account, request.path_params["name"], key)
    return JSONResponse({"entry": list(entry) if entry else None})


@endpoint()
async def read_file(request: Request, account: Account) -> Response:
    """A file's content, streamed; ``Range: bytes=N-`` starts at byte N.
    The entry it is the content of is in ``X-Accord-Entry``."""
    hub = hub_of(request)
    key = _key(request)
    entry = await run(_stat, hub, account, request.path_params["name"], key)
    if entry is None or entry.kind != FILE or not entry.digest:
        raise HubError("not_found", "no such file", key)
    start = _range_start(request.headers.get("range"), entry.size)
    handle = await run(hub.open, entry.digest, start)
    headers = {
        "x-accord-entry": json.dumps(list(entry)),
        "content-length": str(entry.size - start),
    }
    status = 206 if start else 200
    if start:
        headers["content-range"] = f"bytes {start}-{entry.size - 1}/{entry.size}"
    return StreamingResponse(
        iter_blob(handle, entry.size - start),
        status_code=status,
        headers=headers,
        media_type="application/octet-stream",
    )


def _range_start(header: str | None, size: int) -> int:
    if not header or not header.startswith("bytes="):
        return 0
    first = header[6:].split("-", 1)[0]
    start = int(first) if first.isdigit() else 0
    return min(start, size)


@endpoint()
async def write_batch(request: Request, account: Account) -> Response:
    """Many small files in one body (see ``hub_protocol``): each is stored,
    then all are committed in one transaction, each on its own."""
    hub = hub_of(request)
    col = await run(_collection, hub, account, request.path_params["name"], write=True)
    spool = await read_body(request, BATCH_LIMIT)
    try:
        results = await run(_batch, hub, account, col, spool)
    finally:
        spool.close()
    return JSONResponse({"results": results})


def _batch(hub: Hub, account: Account, col: Collection, spool: IO[bytes]) -> list[Any]:
    length, _ = wire.decode_batch_head(spool.read(4))
    try:
        manifest = json.loads(spool.read(length))
    except ValueError:
        raise HubError("bad_request", "the batch's manifest is not JSON") from None
    if not isinstance(manifest, list):
        raise HubError("bad_request", "the batch's manifest is not a list")
    parsed = [_change(item) for item in manifest]  # every name checked first
    changes = []
    inline: dict[str, bytes] = {}
    stored = False
    for item, change in zip(manifest, parsed, strict=True):
        size = int(item["size"])
        if size <= INLINE:
            data = spool.read(size)
            if len(data) != size:
                raise HubError("bad_request", "the batch body ends early")
            digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
            inline[digest] = data
        else:
            digest, size = hub.blobs.put(_Limited(spool, size))  # type: ignore[arg-type]
            stored = True
        changes.append(change._replace(digest=digest, size=size))
    if stored:
        hub.blobs.flush()
    return _results(items.apply_changes(hub.writer, account, col, changes, inline))


class _Limited:
    """The next ``size`` bytes of a stream."""

    def __init__(self, stream: IO[bytes], size: int) -> None:
        self._stream, self._left = stream, size

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        n = self._left if n < 0 else min(n, self._left)
        block = self._stream.read(n)
        if len(block) < n and not block:
            raise HubError("bad_request", "the batch body ends early")
        self._left -= len(block)
        return block


def _entry(data: Any) -> Entry | None:
    if data is None:
        return None
    try:
        return wire.entry_from_wire(data)
    except (TypeError, ValueError):
        raise HubError("bad_request", "a malformed entry") from None


def _change(item: dict[str, Any], **extra: Any) -> Change:
    try:
        key = items.check_name(str(item["key"]))
        new_key = item.get("new_key")
        if new_key is not None:
            new_key = items.check_name(str(new_key))
    except AccordError as exc:
        raise HubError(
            "unsafe_name", getattr(exc, "reason", exc.message), str(item.get("key"))
        ) from None
    except KeyError:
        raise HubError("bad_request", "a change without a key") from None
    return Change(
        op=str(item.get("op", "file")),
        key=key,
        like=_entry(item.get("like")),
        expect=_entry(item.get("expect")),
        trash=item.get("trash"),
        new_key=new_key,
        digest=extra.get("digest", item.get("digest")),
        size=int(extra.get("size", item.get("size", 0))),
        trash_id=item.get("trash_id"),
    )


def _results(results: list[Entry | Exception | None]) -> list[Any]:
    out: list[Any] = []
    for result in results:
        if isinstance(result, AccordError):
            out.append(accord_error(result))
        elif isinstance(result, Exception):
            raise result
        else:
            out.append({"entry": list(result) if result else None})
    return out


@endpoint()
async def apply_changes(request: Request, account: Account) -> Response:
    """Changes other than small files: a file whose content is an upload
    (``upload``) or content the hub holds (``digest``), folders, links,
    times and modes, deletes, moves and restores from the trash. Each is
    checked against its ``expect`` and answers on its own."""
    hub = hub_of(request)
    col = await run(_collection, hub, account, request.path_params["name"], write=True)
    body = await json_body(request)
    results = await run(_changes, hub, account, col, body.get("changes", []))
    return JSONResponse({"results": results})


def _changes(
    hub: Hub, account: Account, col: Collection, raw: list[dict[str, Any]]
) -> list[Any]:
    changes = []
    uploads = []
    for item in raw:
        change = _change(item)
        if change.op == "file" and item.get("upload"):
            upload = str(item["upload"])
            digest, size = extras.finish_upload(hub.writer, hub.blobs, account, upload)
            change = change._replace(digest=digest, size=size)
            uploads.append(upload)
        elif change.op == "file":
            change = _held(hub, account, change)
        changes.append(change)
    results = _results(items.apply_changes(hub.writer, account, col, changes))
    for upload in uploads:
        extras.forget_upload(hub.writer, upload)
    return results


def _held(hub: Hub, account: Account, change: Change) -> Change:
    """A file by digest only: the content must be one the caller may read;
    the change, with the content's size."""
    digest = change.digest or ""
    with hub.reader.connect() as conn:
        held = items.held_digests(conn, account, [digest])
    if digest not in held or not hub.has(digest):
        raise HubError(
            "not_found", "the hub does not hold this content; upload it", change.key
        )
    return change._replace(size=held[digest])


@endpoint()
async def trash_list(request: Request, account: Account) -> Response:
    """Everything in the collection's trash: ``[run, key, entry]``."""
    hub = hub_of(request)
    col = await run(_collection, hub, account, request.path_params["name"])

    def listed() -> list[list[Any]]:
        with hub.reader.connect() as conn:
            return extras.trash_list(conn, col.id)

    return JSONResponse({"items": await run(listed)})


@endpoint()
async def trash_purge(request: Request, account: Account) -> Response:
    """Delete one run's trash for good."""
    hub = hub_of(request)
    col = await run(_collection, hub, account, request.path_params["name"], write=True)
    body = await json_body(request)

    def purge() -> int:
        with hub.writer.begin() as conn:
            return extras.trash_purge(conn, col.id, str(body.get("run", "")))

    return JSONResponse({"removed": await run(purge)})


@endpoint()
async def own_file(request: Request, account: Account) -> Response:
    """accord's own file of a collection: GET reads, PUT creates (only if
    absent: ``{"created": false}`` otherwise), DELETE removes."""
    hub = hub_of(request)
    write = request.method != "GET"
    col = await run(_collection, hub, account, request.path_params["name"], write=write)
    name = request.path_params["file"]
    if request.method == "PUT":
        spool = await read_body(request, OWN_LIMIT)
        data = spool.read()
        spool.close()
        made = await run(extras.own_create, hub.writer, account, col.id, name, data)
        return JSONResponse({"created": made})

    def act() -> bytes | None:
        if request.method == "DELETE":
            with hub.writer.begin() as conn:
                extras.own_delete(conn, col.id, name)
            return None
        with hub.reader.connect() as conn:
            return extras.own_read(conn, col.id, name)

    data = await run(act)
    if request.method == "DELETE":
        return JSONResponse({"deleted": True})
    if data is None:
        raise HubError("not_found", "no such file", name)
    return Response(data, media_type="application/octet-stream")


@endpoint()
async def own_files(request: Request, account: Account) -> Response:
    """GET: the names of accord's own files under ``?prefix=``; DELETE:
    remove them all (``accord reset --forget``)."""
    hub = hub_of(request)
    write = request.method == "DELETE"
    col = await run(_collection, hub, account, request.path_params["name"], write=write)
    prefix = request.query_params.get("prefix", "")

    def act() -> list[str]:
        if write:
            with hub.writer.begin() as conn:
                extras.own_delete(conn, col.id, None)
            return []
        with hub.reader.connect() as conn:
            return extras.own_list(conn, col.id, prefix)

    return JSONResponse({"names": await run(act)})


@endpoint()
async def history(request: Request, account: Account) -> Response:
    """Who changed what and when in a collection, newest first
    (``?limit=``, ``?before=ID`` to page back)."""
    hub = hub_of(request)
    col = await run(_collection, hub, account, request.path_params["name"])
    limit = min(int(request.query_params.get("limit", "100") or 100), 1000)
    before = request.query_params.get("before")

    def rows() -> list[dict[str, Any]]:
        e = t.events
        query = (
            sa.select(e)
            .where(e.c.collection_id == col.id)
            .order_by(e.c.id.desc())
            .limit(limit)
        )
        if before and before.isdigit():
            query = query.where(e.c.id < int(before))
        with hub.reader.connect() as conn:
            return [_event(row) for row in conn.execute(query)]

    return JSONResponse({"events": await run(rows)})


def _event(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at,
        "kind": row.kind,
        "user": row.user,
        "node": row.node,
        **json.loads(row.data),
    }


@endpoint()
async def have(request: Request, account: Account) -> Response:
    """Which of ``digests`` the hub holds in collections the caller may
    read: content it holds need not be uploaded again."""
    hub = hub_of(request)
    body = await json_body(request)
    digests = [str(d) for d in body.get("digests", [])][:10000]

    def held() -> list[str]:
        with hub.reader.connect() as conn:
            found = items.held_digests(conn, account, digests)
        return sorted(d for d in found if hub.has(d))

    return JSONResponse({"held": await run(held)})


@endpoint()
async def start_upload(request: Request, account: Account) -> Response:
    """Start an upload of ``size`` bytes, or resume the unfinished one with
    the same ``token``: its id and the offset to send from."""
    hub = hub_of(request)
    body = await json_body(request)
    size = int(body.get("size", 0))
    token = body.get("token")
    if token is not None and (not isinstance(token, str) or len(token) > 80):
        raise HubError("bad_request", "an upload's token is a string of 80 at most")
    found = await run(extras.start_upload, hub.writer, account, size, token)
    return JSONResponse(found)


@endpoint()
async def upload(request: Request, account: Account) -> Response:
    """GET: the bytes the hub holds of an upload. PATCH with
    ``Upload-Offset: N``: add the body (a chunk) at byte N."""
    hub = hub_of(request)
    upload_id = request.path_params["upload"]
    if request.method == "GET":
        held = await run(extras.upload_offset, hub.reader, account, upload_id)
        return JSONResponse({"id": upload_id, "offset": held})
    offset = request.headers.get("upload-offset", "")
    if not offset.isdigit():
        raise HubError("bad_request", "a chunk needs an Upload-Offset header")
    spool = await read_body(request, CHUNK_LIMIT)
    try:
        held = await run(
            extras.append_upload,
            hub.writer,
            hub.blobs,
            account,
            upload_id,
            int(offset),
            spool,
        )
    except NotFound as exc:
        raise HubError("not_found", exc.reason, upload_id) from None
    finally:
        spool.close()
    return JSONResponse({"id": upload_id, "offset": held})


def routes() -> list[BaseRoute]:
    """The file API's routes (mounted under ``/api/v1``)."""
    c = "/c/{name}"
    return [
        Route(c, open_collection, methods=["GET"]),
        Route(f"{c}/entries", list_entries, methods=["GET"]),
        Route(f"{c}/stat", stat_item, methods=["GET"]),
        Route(f"{c}/file", read_file, methods=["GET"]),
        Route(f"{c}/batch", write_batch, methods=["POST"]),
        Route(f"{c}/changes", apply_changes, methods=["POST"]),
        Route(f"{c}/trash", trash_list, methods=["GET"]),
        Route(f"{c}/trash/purge", trash_purge, methods=["POST"]),
        Route(f"{c}/own", own_files, methods=["GET", "DELETE"]),
        Route(c + "/own/{file:path}", own_file, methods=["GET", "PUT", "DELETE"]),
        Route(f"{c}/history", history, methods=["GET"]),
        Route("/have", have, methods=["POST"]),
        Route("/uploads", start_upload, methods=["POST"]),
        Route("/uploads/{upload}", upload, methods=["GET", "PATCH"]),
    ]
