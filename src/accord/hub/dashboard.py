"""The hub's web dashboard, served at ``/`` behind a login.

==================================  ==========================================
``GET  /``                          the overview, or the login form
``GET  /collections/{name}``        one collection: items, conflicts, history
``GET  /ui/app.js``, ``/ui/app.css``  the page's script and style
``GET  /ui/api/sides``              collections and places this user may sync
``POST /ui/api/check``              test the connection to one side
``POST /ui/api/items``              the items of both sides
``POST /ui/api/preview``            the engine's plan (of a subset)
``GET|POST /ui/api/runs``           this user's runs; start one
``GET  /ui/api/runs/{run}``         one run: state, progress, log
==================================  ==========================================

Every route but the login form needs credentials (a browser's session
cookie from ``POST /api/v1/session``); a request that changes anything
must carry ``X-Accord-CSRF: 1`` (see ``auth``). The page is plain HTML
rendered here (``views``) with a small script (``static/app.js``, no
build step, nothing from the network); live progress comes from the
hub's event feed, ``/api/v1/events``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from accord.errors import InvalidInput
from accord.hub import db, items, overview, views
from accord.hub.accounts import Account
from accord.hub.auth import HubError, authenticate
from accord.hub.places import allowed, load_places
from accord.hub.runs import Runs, SideSpec, check_side, list_items, preview
from accord.hub.store import Hub
from accord.hub.web import endpoint, error_response, hub_of, json_body, run

__all__ = ["routes"]

_STATIC = {"app.js": "text/javascript", "app.css": "text/css"}
_HEADERS = {
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def _runs(hub: Hub) -> Runs:
    found = hub.state.get("dashboard_runs")
    if found is None:
        found = hub.state["dashboard_runs"] = Runs(hub)
    return found  # type: ignore[no-any-return]


def sides(hub: Hub, account: Account) -> dict[str, Any]:
    """The collections and named places ``account`` may sync."""
    with hub.reader.connect() as conn:
        listed = items.list_collections(conn, account)
        cols = []
        for col in listed:
            found = items.collection(conn, account, col["name"])
            cols.append({"name": col["name"], "access": found.access})
    places = [
        {"name": p.name, "kind": p.kind}
        for p in sorted(load_places(hub.folder).values())
        if allowed(p, account)
    ]
    return {"collections": cols, "places": places}


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=_HEADERS)


async def _viewer(request: Request) -> Account | None:
    try:
        return await authenticate(request)
    except HubError:
        return None


async def home(request: Request) -> Response:
    """The dashboard's overview (the login form without a session), with
    the latest SQL replication conflicts of the tables the user may read."""
    try:
        account = await _viewer(request)
        if account is None:
            return _html(views.login_page())
        hub = hub_of(request)

        def gather() -> tuple[dict[str, Any], dict[str, Any]]:
            with hub.reader.connect() as conn:
                data = overview.overview(conn, account)
            data["db_conflicts"] = db.recent_conflicts(hub, account)
            return data, sides(hub, account)

        data, found = await run(gather)
        runs = [r.as_json() for r in _runs(hub).mine(account)]
        return _html(views.overview_page(data, found, runs))
    except Exception as exc:
        return error_response(request, exc)


async def collection(request: Request) -> Response:
    """One collection: its items, open conflicts, history, and a sync."""
    try:
        account = await _viewer(request)
        if account is None:
            return _html(views.login_page(), 401)
        hub = hub_of(request)
        name = request.path_params["name"]

        def gather() -> tuple[Any, ...]:
            with hub.reader.connect() as conn:
                col = items.collection(conn, account, name)
                (info,) = [
                    c
                    for c in items.list_collections(conn, account)
                    if c["name"] == col.name
                ]
                info = {**info, "access": col.access}
                listed = overview.collection_items(conn, col.id)
                found = {
                    "conflicts": overview.conflicts(conn, account, col.id),
                    "history": overview.history(conn, account, col.id),
                }
            return info, listed, found, sides(hub, account)

        info, listed, found, choice = await run(gather)
        page = views.collection_page(account.user, name, info, listed, found, choice)
        return _html(page)
    except Exception as exc:
        answer = error_response(request, exc)
        message = json.loads(bytes(answer.body))["error"]["message"]
        user = getattr(getattr(request.state, "account", None), "user", None)
        return _html(views.error_page(message, user), answer.status_code)


@endpoint()
async def static(request: Request, account: Account) -> Response:
    """The dashboard's script and style."""
    name = request.path_params["file"]
    if name not in _STATIC:
        raise HubError("not_found", "no such file", name)
    text = (resources.files("accord.hub") / "static" / name).read_text("utf-8")
    return Response(text, media_type=_STATIC[name], headers=_HEADERS)


@endpoint()
async def list_sides(request: Request, account: Account) -> Response:
    """The collections and places this user may sync (names and kinds only)."""
    return JSONResponse(await run(sides, hub_of(request), account))


@endpoint()
async def check(request: Request, account: Account) -> Response:
    """Test the connection to one side: ``{side}`` -> ok, items, bytes."""
    body = await json_body(request)
    spec = SideSpec.parse(body.get("side"))
    return JSONResponse(await run(check_side, hub_of(request), account, spec))


def _pair(body: dict[str, Any]) -> tuple[SideSpec, SideSpec]:
    left, right = SideSpec.parse(body.get("left")), SideSpec.parse(body.get("right"))
    if left == right:
        raise InvalidInput("choose two different places")
    return left, right


def _keys(body: dict[str, Any]) -> list[str] | None:
    keys = body.get("keys")
    if keys is None:
        return None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InvalidInput("keys is a list of item names")
    return keys


@endpoint()
async def list_both(request: Request, account: Account) -> Response:
    """The items of both sides: ``{left, right}`` -> ``{items: [{key, left,
    right}]}`` (sizes; null where a side lacks it)."""
    body = await json_body(request)
    left, right = _pair(body)
    return JSONResponse(await run(list_items, hub_of(request), account, left, right))


@endpoint()
async def plan(request: Request, account: Account) -> Response:
    """The engine's plan for ``{left, right, mode, keys}``, not applied."""
    body = await json_body(request)
    left, right = _pair(body)
    mode = str(body.get("mode") or "sync")
    found = await run(preview, hub_of(request), account, left, right, mode, _keys(body))
    return JSONResponse(found)


@endpoint()
async def runs(request: Request, account: Account) -> Response:
    """GET: this user's recent runs. POST ``{left, right, mode, keys}``:
    start one (it runs in the hub; follow it on ``/api/v1/events``)."""
    hub = hub_of(request)
    if request.method == "GET":
        found = [r.as_json() for r in _runs(hub).mine(account)]
        return JSONResponse({"runs": found})
    body = await json_body(request)
    left, right = _pair(body)
    mode = str(body.get("mode") or "sync")
    state = _runs(hub).start(account, left, right, mode, _keys(body))
    return JSONResponse(state.as_json())


@endpoint()
async def one_run(request: Request, account: Account) -> Response:
    """One run: state, progress, log, and its counts once finished."""
    state = _runs(hub_of(request)).get(request.path_params["run"], account)
    if state is None:
        raise HubError("not_found", "no such run")
    return JSONResponse(state.as_json())


def routes(hub: Hub) -> list[BaseRoute]:
    return [
        Route("/", home, methods=["GET"], include_in_schema=False),
        Route(
            "/collections/{name}", collection, methods=["GET"], include_in_schema=False
        ),
        Route("/ui/{file}", static, methods=["GET"]),
        Route("/ui/api/sides", list_sides, methods=["GET"]),
        Route("/ui/api/check", check, methods=["POST"]),
        Route("/ui/api/items", list_both, methods=["POST"]),
        Route("/ui/api/preview", plan, methods=["POST"]),
        Route("/ui/api/runs", runs, methods=["GET", "POST"]),
        Route("/ui/api/runs/{run}", one_run, methods=["GET"]),
    ]
