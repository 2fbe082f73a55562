"""The accounts API (``/api/v1``): enrolment of nodes, browser sessions,
users, grants, nodes, and the hub's status.

=====================================  =========================================
``POST /enrol``                          a user's enrolment code -> a node and its
                                         secret (``accord login``); no credentials
``POST /session``, ``DELETE /session``   browser login with a password (cookie)
``GET  /whoami``                         the caller
``GET  /collections``                    collections the caller may read, sizes
``GET|POST /users``                      admin: list, add (answers a code)
``POST /users/{name}/code``              admin: a new enrolment code
``PUT  /users/{name}/password``          admin or the user: set the password
``PUT  /grants``                         admin: read/write/none per collection
``GET  /nodes``, ``POST /nodes/{id}/revoke``
``GET  /status``                         the hub at a glance
=====================================  =========================================
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from accord.errors import PermissionDenied
from accord.hub import accounts, items
from accord.hub import schema as t
from accord.hub.accounts import Account
from accord.hub.auth import COOKIE, HubError, client_address, slowed
from accord.hub.web import endpoint, hub_of, json_body, run

__all__ = ["routes"]


def _text(body: dict[str, Any], name: str, limit: int = 200) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise HubError("bad_request", f"the request needs a {name}")
    return value


@endpoint("public")
async def enrol(request: Request, _: None) -> Response:
    """Register a node with a user's one-time enrolment code; answers the
    node's id and secret (shown to that machine only, once)."""
    hub = hub_of(request)
    body = await json_body(request)
    user = _text(body, "user")
    code = _text(body, "code")
    node_name = str(body.get("node_name") or "node")[:200]
    who = [f"user:{user}", f"addr:{client_address(request)}"]

    def check(conn: sa.Connection) -> tuple[str, str] | None:
        try:
            return accounts.enrol(conn, user, code, node_name)
        except PermissionDenied:
            return None

    found = await slowed(hub, who, check)
    if found is None:
        raise HubError(
            "not_authenticated",
            "this user name and enrolment code do not match (or the code was "
            "used or has expired)",
        )
    node_id, salt = found
    secret = accounts.node_secret(hub.key, node_id, salt)
    return JSONResponse(
        {"node": node_id, "secret": secret, "hub": hub.hub_id, "user": user}
    )


@endpoint("public")
async def session(request: Request, _: None) -> Response:
    """POST: log in with a user's password (sets the session cookie);
    DELETE: log out."""
    hub = hub_of(request)
    if request.method == "DELETE":
        cookie = request.cookies.get(COOKIE)
        if cookie:

            def drop() -> None:
                with hub.writer.begin() as conn:
                    accounts.drop_session(conn, cookie)

            await run(drop)
        answer = JSONResponse({"ok": True})
        answer.delete_cookie(COOKIE)
        return answer
    body = await json_body(request)
    user = _text(body, "user")
    password = _text(body, "password", 1000)
    who = [f"user:{user}", f"addr:{client_address(request)}"]

    def check(conn: sa.Connection) -> str | None:
        account = accounts.check_password(conn, user, password)
        return accounts.create_session(conn, account) if account else None

    cookie = await slowed(hub, who, check)
    if cookie is None:
        raise HubError("not_authenticated", "wrong user name or password")
    answer = JSONResponse({"user": user})
    answer.set_cookie(
        COOKIE,
        cookie,
        max_age=accounts.SESSION_DAYS * 86400,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return answer


@endpoint()
async def whoami(request: Request, account: Account) -> Response:
    """The caller: user, admin or not, node, and how it authenticated."""
    return JSONResponse(
        {
            "user": account.user,
            "admin": account.admin,
            "node": account.node,
            "via": account.via,
            "hub": hub_of(request).hub_id,
        }
    )


@endpoint()
async def collections(request: Request, account: Account) -> Response:
    """The collections the caller may read, with item counts and bytes."""
    hub = hub_of(request)

    def listed() -> list[dict[str, Any]]:
        with hub.reader.connect() as conn:
            return items.list_collections(conn, account)

    return JSONResponse({"collections": await run(listed)})


@endpoint("admin")
async def users(request: Request, account: Account) -> Response:
    """GET: every user and their grants. POST ``{name, admin}``: add a user;
    answers a one-time enrolment code."""
    hub = hub_of(request)
    if request.method == "GET":

        def listed() -> list[dict[str, Any]]:
            with hub.reader.connect() as conn:
                return accounts.list_users(conn)

        return JSONResponse({"users": await run(listed)})
    body = await json_body(request)
    name = items.check_collection_name(_text(body, "name", 128))

    def add() -> str:
        with hub.writer.begin() as conn:
            accounts.add_user(conn, name, admin=bool(body.get("admin")))
            return accounts.new_code(conn, name)

    code = await run(add)
    return JSONResponse({"user": name, "code": code, "days": accounts.ENROL_DAYS})


@endpoint("admin")
async def new_code(request: Request, account: Account) -> Response:
    """A new one-time enrolment code for a user (another machine)."""
    hub = hub_of(request)
    name = request.path_params["name"]

    def make() -> str:
        with hub.writer.begin() as conn:
            return accounts.new_code(conn, name)

    return JSONResponse(
        {"user": name, "code": await run(make), "days": accounts.ENROL_DAYS}
    )


@endpoint()
async def password(request: Request, account: Account) -> Response:
    """Set a user's password (for the browser login and SyncML): an admin,
    or the user. ``syncml_md5``: keep also the digest SyncML's MD5 login
    needs."""
    hub = hub_of(request)
    name = request.path_params["name"]
    if not account.admin and account.user != name:
        raise HubError("forbidden", "only an admin may set another user's password")
    body = await json_body(request)
    secret = _text(body, "password", 1000)
    md5 = bool(body.get("syncml_md5"))

    def store() -> None:
        with hub.writer.begin() as conn:
            accounts.set_password(conn, name, secret, syncml_md5=md5)

    await run(store)
    return JSONResponse({"user": name})


@endpoint("admin")
async def grant(request: Request, account: Account) -> Response:
    """Give a user ``read``, ``write`` or ``none`` on a collection (the
    collection is created if new)."""
    hub = hub_of(request)
    body = await json_body(request)
    user = _text(body, "user", 128)
    name = items.check_collection_name(_text(body, "collection"))
    access = _text(body, "access", 8)

    def store() -> None:
        with hub.writer.begin() as conn:
            col = items.collection(conn, account, name, create=True)
            accounts.grant(conn, user, col.id, access)
            items.event(
                conn, account, col.id, "grant", {"user": user, "access": access}
            )

    await run(store)
    return JSONResponse({"user": user, "collection": name, "access": access})


@endpoint()
async def nodes(request: Request, account: Account) -> Response:
    """The nodes (machines): an admin sees all, a user their own."""
    hub = hub_of(request)

    def listed() -> list[dict[str, Any]]:
        with hub.reader.connect() as conn:
            return accounts.list_nodes(conn, account)

    return JSONResponse({"nodes": await run(listed)})


@endpoint()
async def revoke(request: Request, account: Account) -> Response:
    """Revoke a node: its next request is refused, on every server process."""
    hub = hub_of(request)
    node_id = request.path_params["node"]

    def store() -> None:
        with hub.writer.begin() as conn:
            accounts.revoke_node(conn, account, node_id)
            items.event(conn, account, None, "revoke", {"node": node_id})

    await run(store)
    return JSONResponse({"node": node_id, "revoked": True})


@endpoint()
async def status(request: Request, account: Account) -> Response:
    """The hub at a glance: its stores, collections, users and nodes."""
    hub = hub_of(request)

    def gather() -> dict[str, Any]:
        with hub.reader.connect() as conn:
            listed = items.list_collections(conn, account)
            known = accounts.list_nodes(conn, account)
            people = conn.execute(
                sa.select(sa.func.count()).select_from(t.users)
            ).scalar()
        return {
            "hub": hub.hub_id,
            "db": hub.db_url.split(":", 1)[0],
            "blobs": type(hub.blobs).__name__,
            "time": time.time(),
            "user": account.user,
            "admin": account.admin,
            "users": people if account.admin else None,
            "collections": listed,
            "nodes": known,
        }

    return JSONResponse(await run(gather))


def routes() -> list[BaseRoute]:
    return [
        Route("/enrol", enrol, methods=["POST"]),
        Route("/session", session, methods=["POST", "DELETE"]),
        Route("/whoami", whoami, methods=["GET"]),
        Route("/collections", collections, methods=["GET"]),
        Route("/users", users, methods=["GET", "POST"]),
        Route("/users/{name}/code", new_code, methods=["POST"]),
        Route("/users/{name}/password", password, methods=["PUT"]),
        Route("/grants", grant, methods=["PUT"]),
        Route("/nodes", nodes, methods=["GET"]),
        Route("/nodes/{node}/revoke", revoke, methods=["POST"]),
        Route("/status", status, methods=["GET"]),
    ]
