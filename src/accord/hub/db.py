"""SQL replication on the hub: the routes under ``/api/v1/db``.

An admin registers a central database (``accord db init``): the hub
connects to it, installs change capture on the tables named and keeps
the database's URL in its own store (``hub_info``, ``db:NAME``). Nodes
(apps' own databases, ``accord db attach``) then register, pull, push,
take snapshots and query through these routes, signed with their hub
credentials. What a node may read or write is granted per table
(``accord db grant``); admins may do anything.

``ACCORD_DB_BEFORE_PUSH=module:function`` names a function the hub calls
before applying each push, with ``{"node", "user", "changes"}``; raising
an accord error refuses the push (an app's own authorisation).

=====================================  =====================================
``GET /``                              the registered databases
``POST /``                             register one (admin)
``DELETE /{db}``                       remove capture and forget it (admin)
``PUT /{db}/grants``                   grant tables to a user (admin)
``GET /{db}/schema``                   the tables this caller may read
``POST /{db}/nodes``                   register a node; its first version
``GET /{db}/snapshot``                 a page of a table's rows
``POST /{db}/pull``                    changes since a version
``POST /{db}/push``                    one push, one version
``POST /{db}/query``                   rows by column values or keys
``GET /{db}/status``                   versions, nodes, conflicts
=====================================  =====================================
"""

from __future__ import annotations

import importlib
import json
import os
import re
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from accord.errors import (
    AccordError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unreachable,
)
from accord.hub import schema as t
from accord.hub.accounts import Account
from accord.hub.auth import HubError, read_body
from accord.hub.store import Hub
from accord.hub.web import endpoint, hub_of, json_body, run
from accord.replication.central import EXPIRE_AFTER, Central

__all__ = ["recent_conflicts", "routes"]

PUSH_LIMIT = 512 << 20
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,50}$")
_lock = threading.Lock()


def _registry(hub: Hub) -> dict[str, Central]:
    return hub.state.setdefault("databases", {})  # type: ignore[no-any-return]


def _central(hub: Hub, name: str) -> Central:
    with _lock:
        opened = _registry(hub).get(name)
        if opened is not None:
            return opened
        with hub.reader.connect() as conn:
            value = conn.execute(
                sa.select(t.info.c.value).where(t.info.c.name == f"db:{name}")
            ).scalar()
        if value is None:
            raise NotFound(
                f"no database {name!r} on this hub",
                hint="register it: accord db init URL --hub HUB --tables ...",
            )
        config = json.loads(value)
        central = Central(config["url"], config.get("expire_after", EXPIRE_AFTER))
        central.open()
        _registry(hub)[name] = central
        return central


def _register(hub: Hub, body: dict[str, Any]) -> dict[str, Any]:
    name, url = str(body.get("name", "")), str(body.get("url", ""))
    tables = body.get("tables")
    if not _NAME.match(name):
        raise InvalidInput(
            f"not a database name: {name!r}", hint="letters, digits, _ . -"
        )
    if (
        not isinstance(tables, list)
        or not tables
        or not all(isinstance(x, str) for x in tables)
    ):
        raise InvalidInput("name the tables to replicate", hint="--tables a,b,c")
    days = body.get("expire_days")
    expire = EXPIRE_AFTER if days is None else float(days) * 86400
    try:
        central = Central(url, expire)
    except Unreachable as exc:  # the URL the admin gave: a bad input here
        raise InvalidInput(exc.message, hint=exc.hint) from exc
    try:
        descriptions = central.init(tables)
        version = central.sealed()
    except BaseException:
        central.close()
        raise
    value = json.dumps({"url": url, "tables": tables, "expire_after": expire})
    with hub.writer.begin() as conn:
        conn.execute(t.info.delete().where(t.info.c.name == f"db:{name}"))
        conn.execute(t.info.insert().values(name=f"db:{name}", value=value))
    with _lock:
        old = _registry(hub).pop(name, None)
        _registry(hub)[name] = central
    if old is not None:
        old.close()
    return {
        "name": name,
        "tables": [d["name"] for d in descriptions],
        "version": version,
    }


def _forget(hub: Hub, name: str) -> None:
    central = _central(hub, name)
    central.remove()
    with hub.writer.begin() as conn:
        conn.execute(t.info.delete().where(t.info.c.name == f"db:{name}"))
    with _lock:
        _registry(hub).pop(name, None)
    central.close()


def _list(hub: Hub) -> list[str]:
    with hub.reader.connect() as conn:
        names = conn.execute(
            sa.select(t.info.c.name).where(t.info.c.name.like("db:%"))
        ).scalars()
        return sorted(n[3:] for n in names)


def recent_conflicts(
    hub: Hub, account: Account, limit: int = 20
) -> list[dict[str, Any]]:
    """The latest SQL replication conflicts of every registered database,
    newest first, at most ``limit``: those of the tables ``account`` may
    read (an admin's: all). A database the hub cannot reach is left out."""
    found: list[dict[str, Any]] = []
    for name in _list(hub):
        try:
            central = _central(hub, name)
            readable = None if account.admin else central.allowed(account.user, False)
            if readable == []:
                continue
            rows = central.recent_conflicts(readable, limit)
        except (AccordError, sa.exc.SQLAlchemyError):
            continue
        found.extend({"db": name, **row} for row in rows)
    found.sort(key=lambda row: row["at"] or 0, reverse=True)
    return found[:limit]


def _node_name(account: Account, body: dict[str, Any]) -> str:
    node = str(body.get("node") or "")
    if not _NAME.match(node):
        raise InvalidInput(f"not a node name: {node!r}", hint="letters, digits, _ . -")
    return node


_hook: list[Callable[[dict[str, Any]], None] | None] = []


def _before_push() -> Callable[[dict[str, Any]], None] | None:
    if not _hook:
        target = os.environ.get("ACCORD_DB_BEFORE_PUSH")
        function = None
        if target:
            module, _, name = target.partition(":")
            function = getattr(importlib.import_module(module), name)
        _hook.append(function)
    return _hook[0]


def _number(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(f"{name} must be a version number")
    return value


def routes(hub: Hub) -> list[BaseRoute]:
    """The SQL replication routes (mounted at ``/api/v1/db``)."""

    @endpoint("user")
    async def databases(request: Request, account: Account) -> Response:
        """The databases registered on this hub."""
        return JSONResponse({"databases": await run(_list, hub_of(request))})

    @endpoint("admin")
    async def register(request: Request, account: Account) -> Response:
        """Register a central database: capture on its tables (admins)."""
        body = await json_body(request)
        return JSONResponse(await run(_register, hub_of(request), body))

    @endpoint("admin")
    async def forget(request: Request, account: Account) -> Response:
        """Remove capture from a central database and forget it (admins)."""
        await run(_forget, hub_of(request), request.path_params["db"])
        return JSONResponse({"ok": True})

    @endpoint("admin")
    async def grant(request: Request, account: Account) -> Response:
        """Grant a user read or write on tables (admins)."""
        body = await json_body(request)
        access = body.get("access")
        if access not in ("read", "write", "none"):
            raise InvalidInput("access is read, write or none")
        central = await run(_central, hub_of(request), request.path_params["db"])
        await run(
            central.grant, str(body.get("user")), list(body.get("tables") or []), access
        )
        return JSONResponse({"ok": True})

    @endpoint("user")
    async def describe(request: Request, account: Account) -> Response:
        """The descriptions of the tables this caller may read."""
        central = await run(_central, hub_of(request), request.path_params["db"])
        readable = central.allowed(account.user, account.admin)
        writable = central.allowed(account.user, account.admin, write=True)
        return JSONResponse(
            {"tables": central.describe(readable), "writable": writable}
        )

    @endpoint("user")
    async def nodes(request: Request, account: Account) -> Response:
        """Register a node (again, after a repair); its starting version."""
        body = await json_body(request)
        central = await run(_central, hub_of(request), request.path_params["db"])
        version = await run(central.register, _node_name(account, body), account.user)
        return JSONResponse({"version": version})

    @endpoint("user")
    async def snapshot(request: Request, account: Account) -> Response:
        """One page of a table's rows, in key order."""
        central = await run(_central, hub_of(request), request.path_params["db"])
        table = request.query_params.get("table", "")
        if table not in central.allowed(account.user, account.admin):
            raise PermissionDenied(f"this node may not read table {table}")
        return JSONResponse(
            await run(central.snapshot, table, request.query_params.get("after"))
        )

    @endpoint("user")
    async def pull(request: Request, account: Account) -> Response:
        """The changes since the node's version."""
        body = await json_body(request)
        central = await run(_central, hub_of(request), request.path_params["db"])
        answer = await run(
            central.pull,
            node=_node_name(account, body),
            user=account.user,
            base=_number(body, "version"),
            readable=central.allowed(account.user, account.admin),
        )
        return JSONResponse(answer)

    @endpoint("user")
    async def push(request: Request, account: Account) -> Response:
        """One push: accepted as a new version only when the node is at the
        latest version ("pull first" otherwise); sent twice, applied once."""
        spool = await read_body(request, PUSH_LIMIT)
        try:
            body = json.load(spool)
        except ValueError:
            raise HubError("bad_request", "the body is not JSON") from None
        finally:
            spool.close()
        if not isinstance(body, dict):
            raise HubError("bad_request", "the body must be a JSON object")
        central = await run(_central, hub_of(request), request.path_params["db"])
        push_id = str(body.get("push_id") or "")
        if not 8 <= len(push_id) <= 64:
            raise InvalidInput("a push needs its push_id")
        version = await run(
            central.push,
            node=_node_name(account, body),
            user=account.user,
            readable=central.allowed(account.user, account.admin),
            writable=central.allowed(account.user, account.admin, write=True),
            push_id=push_id,
            base=_number(body, "version"),
            changes=list(body.get("changes") or []),
            conflicts=list(body.get("conflicts") or []),
            before_push=_before_push(),
        )
        return JSONResponse({"version": version})

    @endpoint("user")
    async def query(request: Request, account: Account) -> Response:
        """Rows of a table by column values (``where``) or by ``keys``."""
        body = await json_body(request)
        central = await run(_central, hub_of(request), request.path_params["db"])
        table = str(body.get("table", ""))
        if table not in central.allowed(account.user, account.admin):
            raise PermissionDenied(f"this node may not read table {table}")
        where = {str(k): str(v) for k, v in dict(body.get("where") or {}).items()}
        keys = body.get("keys")
        rows = await run(
            central.query, table, where, list(keys) if keys is not None else None
        )
        return JSONResponse({"rows": rows})

    @endpoint("user")
    async def status(request: Request, account: Account) -> Response:
        """Versions, nodes and the conflict log of a database (an admin sees
        all; a user, their nodes and the tables they may read)."""
        central = await run(_central, hub_of(request), request.path_params["db"])
        if account.admin:
            return JSONResponse(await run(central.status))
        readable = central.allowed(account.user, account.admin)
        return JSONResponse(await run(central.status, account.user, readable))

    return [
        Route("/", databases, methods=["GET"]),
        Route("/", register, methods=["POST"]),
        Route("/{db}", forget, methods=["DELETE"]),
        Route("/{db}/grants", grant, methods=["PUT"]),
        Route("/{db}/schema", describe, methods=["GET"]),
        Route("/{db}/nodes", nodes, methods=["POST"]),
        Route("/{db}/snapshot", snapshot, methods=["GET"]),
        Route("/{db}/pull", pull, methods=["POST"]),
        Route("/{db}/push", push, methods=["POST"]),
        Route("/{db}/query", query, methods=["POST"]),
        Route("/{db}/status", status, methods=["GET"]),
    ]
