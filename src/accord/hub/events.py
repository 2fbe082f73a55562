"""Live events: changes, runs and their progress, as server-sent events.

``GET /api/v1/events`` streams every event of the collections the caller
may read, and the caller's own events outside any collection (a dashboard
run between two other places) (``?collection=NAME`` for one), from ``?since=ID`` or the
``Last-Event-ID`` header, then live. Events are rows of the hub's
database, so a client connected to one server process sees what was
written through another. Kinds: ``change`` (a transaction's changes and
its seq), ``run`` (a sync started, or finished with its counts),
``progress`` (a running sync's progress, posted by whoever runs it:
``POST /api/v1/progress``, or :func:`publish` in the server), ``grant``,
``revoke``.

The dashboard and ``accord watch`` read this feed; ``accord watch`` runs
a sync of its pair when a ``change`` arrives.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from accord.hub import accounts, items
from accord.hub import schema as t
from accord.hub.accounts import Account
from accord.hub.auth import HubError
from accord.hub.store import Hub
from accord.hub.web import endpoint, hub_of, json_body, run

__all__ = ["POLL", "publish", "routes"]

POLL = 0.25  # seconds between two looks at the events table
_KEEPALIVE = 15.0
_PAGE = 500


def publish(
    hub: Hub,
    account: Account | None,
    collection: str | None,
    kind: str,
    data: dict[str, Any],
) -> None:
    """Record an event (every server process's feed carries it)."""
    with hub.writer.begin() as conn:
        cid = None
        if collection is not None:
            row = conn.execute(
                sa.select(t.collections.c.id).where(t.collections.c.name == collection)
            ).first()
            cid = row.id if row else None
        items.event(conn, account, cid, kind, data)


def _fetch(
    hub: Hub, account: Account, since: int, only: int | None
) -> list[dict[str, Any]]:
    e, c = t.events, t.collections
    with hub.reader.connect() as conn:
        readable = accounts.readable_ids(conn, account)
        query = (
            sa.select(e, c.c.name.label("collection"))
            .select_from(e.outerjoin(c, c.c.id == e.c.collection_id))
            .where(e.c.id > since)
            .order_by(e.c.id)
            .limit(_PAGE)
        )
        if only is not None:
            query = query.where(e.c.collection_id == only)
        elif not account.admin:  # and their own runs between other places
            query = query.where(
                e.c.collection_id.in_(readable)
                | (e.c.collection_id.is_(None) & (e.c.user == account.user))
            )
        rows = conn.execute(query).all()
    return [
        {
            "id": row.id,
            "at": row.at,
            "kind": row.kind,
            "collection": row.collection,
            "user": row.user,
            "node": row.node,
            **json.loads(row.data),
        }
        for row in rows
    ]


def _latest(hub: Hub) -> int:
    with hub.reader.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(t.events.c.id))).scalar() or 0)


@endpoint()
async def stream(request: Request, account: Account) -> Response:
    """Server-sent events of changes, runs and progress (see the module)."""
    hub = hub_of(request)
    only = None
    name = request.query_params.get("collection")
    if name:

        def col() -> int:
            with hub.reader.connect() as conn:
                return items.collection(conn, account, name).id

        only = await run(col)
    start = request.query_params.get("since") or request.headers.get("last-event-id")
    since = int(start) if start and start.isdigit() else await run(_latest, hub)

    async def feed() -> AsyncIterator[bytes]:
        nonlocal since
        yield b"retry: 2000\n: accord hub events\n\n"
        quiet = 0.0
        while not hub.state.get("stopping") and not await request.is_disconnected():
            found = await run(_fetch, hub, account, since, only)
            for item in found:
                since = item["id"]
                data = json.dumps(item, separators=(",", ":"))
                yield f"id: {since}\nevent: {item['kind']}\ndata: {data}\n\n".encode()
            if found:
                quiet = 0.0
                continue
            await anyio.sleep(POLL)
            quiet += POLL
            if quiet >= _KEEPALIVE:
                quiet = 0.0
                yield b": keep-alive\n\n"

    headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
    return StreamingResponse(feed(), media_type="text/event-stream", headers=headers)


@endpoint()
async def progress(request: Request, account: Account) -> Response:
    """Post a running sync's progress (``{collection, run, ...}``) to the feed."""
    hub = hub_of(request)
    body = await json_body(request)
    name = body.get("collection")
    if name is not None:

        def check() -> None:
            with hub.reader.connect() as conn:
                items.collection(conn, account, str(name))

        await run(check)
    data = {k: v for k, v in body.items() if k != "collection"}
    if len(json.dumps(data)) > 4000:
        raise HubError("too_large", "a progress event is at most 4000 bytes")
    await run(publish, hub, account, name, "progress", data)
    return JSONResponse({"ok": True})


def routes() -> list[BaseRoute]:
    return [
        Route("/events", stream, methods=["GET"]),
        Route("/progress", progress, methods=["POST"]),
    ]
