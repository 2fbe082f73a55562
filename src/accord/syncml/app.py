"""accord's SyncML server over HTTP: an ASGI app (Starlette).

    app = syncml_app(stores, accounts, nonces)      # mount it anywhere
    hub.mount("/syncml", app)

Clients POST SyncML (``application/vnd.syncml+xml`` or ``+wbxml``) to the
app's URL; every answer names the session's own URL (``RespURI``, with a
``sessionid``) for the next message. Sessions live in memory and expire
after ``session_timeout`` seconds without a message (what they changed is
committed message by message; only their anchors are lost, and the next
session of that client is a slow sync).

Nothing a client sends produces a traceback: a message that cannot be read
is answered with a SyncML status 400, a failure inside the server with 500
(and nothing of that message is committed).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from accord.syncml import message as m
from accord.syncml.server import ServerConfig, ServerSession
from accord.syncml.store import Accounts, ServerState, Stores
from accord.syncml.tree import CT_WBXML, CT_XML, Malformed

__all__ = ["bounded_body", "error_message", "message_form", "syncml_app"]

log = logging.getLogger("accord.syncml")
_MAX_BODY = 32 << 20


class _Live:
    def __init__(self, session: ServerSession, wbxml: bool) -> None:
        self.session = session
        self.wbxml = wbxml
        self.lock = threading.Lock()
        self.seen = time.monotonic()
        self.last: tuple[int, bytes] | None = None  # msg id, and our answer


class _Sessions:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.live: dict[str, _Live] = {}
        self.lock = threading.Lock()

    def get(self, token: str) -> _Live | None:
        with self.lock:
            self._sweep()
            return self.live.get(token)

    def drop(self, token: str) -> None:
        with self.lock:
            self.live.pop(token, None)

    def _sweep(self) -> None:
        now = time.monotonic()
        for token, live in list(self.live.items()):
            if now - live.seen > self.timeout:
                del self.live[token]


def syncml_app(
    stores: Stores,
    accounts: Accounts,
    nonces: ServerState,
    *,
    policy: str = "keep-both",
    session_timeout: float = 300.0,
    store_names: tuple[str, ...] = ("notes",),
    max_msg_size: int = 150_000,
    max_obj_size: int = 4_000_000,
    max_body: int = _MAX_BODY,
) -> Any:
    """The ASGI app serving SyncML at its mount point. A request body over
    ``max_body`` bytes is refused with status 413 while it is read: no more
    than ``max_body`` bytes of it are ever held."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response

    sessions = _Sessions(session_timeout)

    def handle(
        url: str, token: str | None, body: bytes, wbxml: bool
    ) -> tuple[int, bytes]:
        live = sessions.get(token) if token else None
        if token and live is None:
            return 404, error_message(404, None, url, wbxml)
        try:
            msg = m.parse(body)
        except Malformed as exc:
            log.info("refused a malformed SyncML message: %s", exc)
            return 400, error_message(400, None, url, wbxml)
        if live is None:
            token = os.urandom(12).hex()
            config = ServerConfig(
                url=url,
                policy=policy,
                stores=store_names,
                max_msg_size=max_msg_size,
                max_obj_size=max_obj_size,
            )
            session = ServerSession(
                config, accounts, stores, nonces, resp_uri=f"{url}?sessionid={token}"
            )
            live = _Live(session, wbxml)
            with sessions.lock:
                sessions.live[token] = live
        with live.lock:
            live.seen = time.monotonic()
            if live.last is not None and live.last[0] == msg.header.msg_id:
                # the client sent it again (its answer was lost or late):
                # the same answer, not the same changes twice
                return 200, live.last[1]
            try:
                reply = live.session.receive(msg)
            except Exception:
                log.exception("the SyncML server failed on a message")
                assert token is not None
                sessions.drop(token)
                return 500, error_message(500, msg, url, wbxml)
            data = m.render(reply, wbxml_encoding=live.wbxml)
            live.last = (msg.header.msg_id, data)
        if live.session.complete or live.session.ended:
            assert token is not None
            sessions.drop(token)
        return 200, data

    async def endpoint(request: Request) -> Response:
        url, wbxml, media = message_form(request)
        if request.method != "POST":
            return Response(
                "accord's SyncML server: POST SyncML messages here\n",
                media_type="text/plain",
            )
        body = await bounded_body(request, max_body)
        if body is None:
            return Response(error_message(413, None, url, wbxml), 413, media_type=media)
        token = request.query_params.get("sessionid")
        code, data = await run_in_threadpool(handle, url, token, body, wbxml)
        return Response(data, code, media_type=media)

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        """Every request below the mount point is the endpoint (no routing,
        so ``/syncml`` and ``/syncml/`` both work)."""
        if scope["type"] == "lifespan":
            await Starlette()(scope, receive, send)
            return
        response = await endpoint(Request(scope, receive))
        await response(scope, receive, send)

    return asgi


async def bounded_body(request: Any, limit: int) -> bytes | None:
    """The request's body, or None as soon as it is known to be over
    ``limit`` bytes (by its Content-Length, or while it streams in)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return None
    parts: list[bytes] = []
    size = 0
    async for block in request.stream():
        size += len(block)
        if size > limit:
            return None
        parts.append(block)
    return b"".join(parts)


def message_form(request: Any) -> tuple[str, bool, str]:
    """The endpoint's own URL (no query), whether a request's message is
    WBXML, and the media type of the answer."""
    url = str(request.url.replace(query=""))
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    wbxml = kind == CT_WBXML
    return url, wbxml, CT_WBXML if wbxml else CT_XML


def error_message(code: int, msg: m.Message | None, url: str, wbxml: bool) -> bytes:
    """A SyncML message with only a failing status for the sender's header."""
    hdr = msg.header if msg is not None else None
    status = m.Status(
        1,
        hdr.msg_id if hdr else 1,
        0,
        "SyncHdr",
        code,
        hdr.target if hdr else url,
        hdr.source if hdr else None,
    )
    header = m.Header(
        session_id=hdr.session_id if hdr else "0",
        msg_id=1,
        target=hdr.source if hdr else "",
        source=url,
    )
    reply = m.Message(header, (status,), True)
    return m.render(reply, wbxml_encoding=wbxml)
