"""Who is calling: every request but ``/healthz``, ``/openapi.json`` and the
logins is authenticated here, one of three ways:

* a **node signature** (``Authorization: Accord-HMAC-SHA256 <hex>`` with
  the node, time, nonce and body-hash headers; see
  ``accord.replicas.hub_protocol``): the machines that sync;
* a **bearer token** (the admin token of ``accord hub init``): scripts;
* a **session cookie** (``accord_session``) from ``POST /api/v1/session``:
  people in a browser (the dashboard). A state-changing request with a
  cookie must also carry ``X-Accord-CSRF: 1``, which another site's page
  cannot send.

Features mounted on the hub (the dashboard, SQL replication, SyncML) call
:func:`authenticate` (or use ``api.endpoint``) and get an ``Account``.
A request body is read with :func:`read_body`, which enforces the size
limit and checks the body against its signed hash.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import tempfile
import time
from typing import IO

import anyio.to_thread
import sqlalchemy as sa
from starlette.requests import Request

from accord.hub import accounts
from accord.hub import schema as t
from accord.hub.accounts import Account
from accord.hub.store import Hub
from accord.replicas import hub_protocol as wire

__all__ = [
    "COOKIE",
    "HubError",
    "authenticate",
    "client_address",
    "read_body",
]

COOKIE = "accord_session"
_SEEN_EVERY = 30.0  # seconds between two updates of a node's last_seen
_SPOOL = 1 << 20


class HubError(Exception):
    """An error answer: its wire code, message and optional key."""

    def __init__(self, code: str, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.key = key


def client_address(request: Request) -> str:
    return request.client.host if request.client else "?"


async def authenticate(request: Request) -> Account:
    """The caller of ``request``, or a 401 ``HubError``."""
    hub: Hub = request.app.state.hub
    header = request.headers.get("authorization", "")
    if header.startswith(wire.SCHEME + " "):
        signature = header[len(wire.SCHEME) + 1 :].strip()
        account = await anyio.to_thread.run_sync(
            _check_signature, hub, request, signature
        )
    elif header.lower().startswith("bearer "):
        account = await _by_token(hub, request, header[7:].strip())
    elif COOKIE in request.cookies:
        account = await anyio.to_thread.run_sync(_by_cookie, hub, request)
    else:
        raise HubError(
            "not_authenticated",
            "this request carries no credentials",
        )
    request.state.account = account
    return account


def _check_signature(hub: Hub, request: Request, signature: str) -> Account:
    headers = request.headers
    node_id = headers.get(wire.HEADER_NODE, "")
    stamp = headers.get(wire.HEADER_TIME, "")
    nonce = headers.get(wire.HEADER_NONCE, "")
    body_hash = headers.get(wire.HEADER_SHA256, "")
    if not (node_id and stamp and nonce and body_hash) or len(nonce) > 64:
        raise HubError(
            "bad_signature", "the request's signature headers are incomplete"
        )
    try:
        skew = abs(time.time() - float(stamp))
    except ValueError:
        skew = float("inf")
    if skew > wire.SKEW:
        raise HubError(
            "stale_request",
            "the request's time is too far from the hub's clock "
            f"(more than {wire.SKEW} s); check this machine's clock",
        )
    with hub.writer.begin() as conn:
        row = conn.execute(
            sa.select(t.nodes, t.users.c.name.label("user"), t.users.c.admin)
            .join(t.users, t.users.c.id == t.nodes.c.user_id)
            .where(t.nodes.c.id == node_id)
        ).first()
        if row is None:
            raise HubError("bad_signature", "this node is not known to the hub")
        if row.revoked is not None:
            raise HubError("revoked", "this node was revoked")
        secret = accounts.node_secret(hub.key, node_id, row.salt)
        text = wire.canonical(
            request.method,
            request.scope.get("raw_path", b"").decode("latin-1") or request.url.path,
            request.scope.get("query_string", b"").decode("latin-1"),
            body_hash,
            stamp,
            nonce,
        )
        if not hmac.compare_digest(wire.sign(secret, text), signature):
            raise HubError("bad_signature", "the request's signature is wrong")
        _remember_nonce(conn, node_id, nonce)
        if row.last_seen is None or time.time() - row.last_seen > _SEEN_EVERY:
            conn.execute(
                t.nodes.update()
                .where(t.nodes.c.id == node_id)
                .values(last_seen=time.time())
            )
    request.state.body_sha256 = body_hash
    return Account(row.user_id, row.user, bool(row.admin), node_id, "node")


def _remember_nonce(conn: sa.Connection, node_id: str, nonce: str) -> None:
    seen = conn.execute(
        sa.select(t.nonces.c.at).where(
            t.nonces.c.node_id == node_id, t.nonces.c.nonce == nonce
        )
    ).first()
    if seen is not None:
        raise HubError("replayed_request", "this request was already received")
    conn.execute(t.nonces.insert().values(node_id=node_id, nonce=nonce, at=time.time()))
    if random.random() < 0.01:  # now and then, forget nonces too old to replay
        conn.execute(
            t.nonces.delete().where(t.nonces.c.at < time.time() - 3 * wire.SKEW)
        )


async def _by_token(hub: Hub, request: Request, token: str) -> Account:
    who = [f"addr:{client_address(request)}"]
    account = await slowed(hub, who, lambda conn: accounts.user_by_token(conn, token))
    if account is None:
        raise HubError("not_authenticated", "this token is not valid")
    return account


def _by_cookie(hub: Hub, request: Request) -> Account:
    with hub.reader.connect() as conn:
        account = accounts.user_by_session(conn, request.cookies[COOKIE])
    if account is None:
        raise HubError("not_authenticated", "the session has expired; log in again")
    if (
        request.method not in ("GET", "HEAD")
        and request.headers.get("x-accord-csrf") != "1"
    ):
        raise HubError("forbidden", "a browser request must carry X-Accord-CSRF: 1")
    return account


async def slowed(hub: Hub, who: list[str], check):  # type: ignore[no-untyped-def]
    """Run a login ``check(conn)`` slowed down after repeated failures
    (counted per user name and address, in the database); None: failed."""

    def before() -> float | None:
        with hub.reader.connect() as conn:
            return accounts.failure_delay(conn, who)

    delay = await anyio.to_thread.run_sync(before)
    if delay is None:
        raise HubError(
            "too_many_attempts",
            "too many failed logins; try again in a few minutes",
        )
    if delay:
        await anyio.sleep(delay)

    def attempt():  # type: ignore[no-untyped-def]
        with hub.writer.begin() as conn:
            result = check(conn)
            accounts.note_failure(conn, who, failed=result is None)
            return result

    return await anyio.to_thread.run_sync(attempt)


async def read_body(request: Request, limit: int) -> IO[bytes]:
    """The request's body in a spooled file (memory bounded), checked
    against the size limit and, for a signed request, its signed sha256."""
    length = request.headers.get("content-length")
    if length is not None and int(length) > limit:
        raise HubError("too_large", f"the request body is over {limit} bytes")
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # noqa: SIM115
    hasher, size = hashlib.sha256(), 0
    async for block in request.stream():
        size += len(block)
        if size > limit:
            spool.close()
            raise HubError("too_large", f"the request body is over {limit} bytes")
        hasher.update(block)
        spool.write(block)
    signed = getattr(request.state, "body_sha256", None)
    if signed is not None and not hmac.compare_digest(hasher.hexdigest(), signed):
        spool.close()
        raise HubError("bad_signature", "the body is not the one that was signed")
    spool.seek(0)
    return spool
