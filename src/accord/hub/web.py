"""The small toolkit every hub route uses: ``endpoint`` (authentication,
access level, JSON errors), ``run`` (blocking work in a thread), JSON
bodies, and the conversion of accord errors into answers.

A feature mounted on the hub (the dashboard, SQL replication, SyncML)
writes its routes with ``@endpoint(...)`` and gets the same
authentication, limits and error answers as the file API.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from accord.errors import AccordError, ReplicaError
from accord.hub.accounts import Account
from accord.hub.auth import HubError, authenticate, read_body
from accord.hub.store import Hub
from accord.replicas import hub_protocol as wire

__all__ = [
    "JSON_LIMIT",
    "endpoint",
    "error_response",
    "hub_of",
    "json_body",
    "run",
]

JSON_LIMIT = 1 << 20
T = TypeVar("T")
Handler = Callable[[Request, Account], Awaitable[Response]]
log = logging.getLogger("accord.hub")


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


async def run(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` in a worker thread (database and blob work
    blocks)."""
    return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs))


def endpoint(access: str = "user") -> Callable[[Handler], Callable[[Request], Any]]:
    """A route handler taking ``(request, account)``: ``access`` is
    ``user`` (any authenticated caller), ``admin``, or ``public`` (no
    credentials; the account is None). Every error becomes a JSON answer."""

    def wrap(handler: Handler) -> Callable[[Request], Any]:
        @functools.wraps(handler)
        async def route(request: Request) -> Response:
            try:
                account: Any = None
                if access != "public":
                    account = await authenticate(request)
                if access == "admin" and not account.admin:
                    raise HubError("forbidden", "only the hub's admins may do this")
                return await handler(request, account)
            except Exception as exc:  # answered as JSON, logged when unexpected
                return error_response(request, exc)

        return route

    return wrap


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object body (size-limited, signature-checked)."""
    spool = await read_body(request, JSON_LIMIT)
    try:
        data = json.loads(spool.read() or b"{}")
    except ValueError:
        raise HubError("bad_request", "the body is not JSON") from None
    finally:
        spool.close()
    if not isinstance(data, dict):
        raise HubError("bad_request", "the body must be a JSON object")
    return data


def error_body(
    code: str, message: str, key: str | None = None, hint: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if key is not None:
        error["key"] = key
    if hint:
        error["hint"] = hint
    return {"error": error}


def accord_error(exc: AccordError) -> dict[str, Any]:
    """An accord error raised by the hub's own code, as a wire error."""
    if isinstance(exc, ReplicaError):
        return error_body(wire.code_of(exc), exc.reason, exc.key, exc.hint)
    return error_body(wire.code_of(exc), exc.message, None, exc.hint)


def error_response(request: Request, exc: Exception) -> Response:
    """Every error answer: JSON with a code and a message, no traceback."""
    if isinstance(exc, HubError):
        body = error_body(exc.code, exc.message, exc.key)
    elif isinstance(exc, AccordError):
        body = accord_error(exc)
    else:
        log.error("unexpected error", exc_info=exc, extra={"path": request.url.path})
        body = error_body("internal", "the hub failed unexpectedly; see its log")
    status = wire.CODES.get(body["error"]["code"], (500, None))[0]
    return JSONResponse(body, status_code=status)
