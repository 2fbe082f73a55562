"""The hub's web application (Starlette): routers mounted per feature.

=====================  =====================================================
``/healthz``           liveness (no credentials; says nothing but ok/hub id)
``/openapi.json``      the API's schema, built from the routes
``/api/v1``            accounts (``people``), files (``api``), events
``/``, ``/ui``         the web dashboard (``dashboard``), mounted last
feature routers        registered with :func:`register_feature`: each is
                       ``(prefix, "module:function")`` where the function
                       takes the :class:`~accord.hub.store.Hub` and returns
                       Starlette routes, mounted at ``prefix`` (the web
                       dashboard at ``/``, SQL replication under
                       ``/api/v1/db``, SyncML at ``/syncml``). Their
                       handlers use ``accord.hub.web.endpoint`` for the
                       same authentication and JSON errors.
=====================  =====================================================
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accord.errors import AccordError
from accord.hub import api, dashboard, events, people
from accord.hub.auth import HubError
from accord.hub.store import Hub
from accord.hub.web import error_response
from accord.replicas import hub_protocol as wire

__all__ = ["FEATURES", "build_app", "openapi", "register_feature"]

#: (mount prefix, "module:function") of the optional feature routers
FEATURES: list[tuple[str, str]] = [
    ("/syncml", "accord.hub.syncml:routes"),
    ("/api/v1/db", "accord.hub.db:routes"),
]
log = logging.getLogger("accord.hub")


def register_feature(prefix: str, target: str) -> None:
    """Mount ``target(hub) -> routes`` at ``prefix`` in every new app."""
    FEATURES.append((prefix, target))


async def healthz(request: Request) -> Response:
    """Liveness: answers without credentials, tells nothing but the hub id."""
    hub: Hub = request.app.state.hub
    return JSONResponse({"ok": True, "hub": hub.hub_id})


async def openapi_json(request: Request) -> Response:
    """The API's OpenAPI schema."""
    return JSONResponse(openapi(request.app.routes))


def openapi(routes: list[BaseRoute], prefix: str = "") -> dict[str, Any]:
    """An OpenAPI 3.1 document of ``routes`` (summaries from docstrings)."""
    paths: dict[str, Any] = {}
    for route in routes:
        if isinstance(route, Mount):
            sub = openapi(route.routes, prefix + route.path)
            paths.update(sub["paths"])
            continue
        if not isinstance(route, Route) or not route.include_in_schema:
            continue  # the dashboard's HTML pages are not the API
        doc = (route.endpoint.__doc__ or "").strip()
        path = (prefix + route.path).replace(":path}", "}")
        for method in sorted((route.methods or set()) - {"HEAD"}):
            paths.setdefault(path, {})[method.lower()] = {
                "operationId": f"{route.name}_{method.lower()}",
                "summary": doc.split("\n\n")[0].replace("\n", " "),
                "description": doc,
                "responses": {
                    "200": {"description": "done"},
                    "default": {
                        "description": "an error",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Error"}
                            }
                        },
                    },
                },
            }
    return {
        "openapi": "3.1.0",
        "info": {"title": "accord hub", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "code": {"type": "string", "enum": sorted(wire.CODES)},
                                "message": {"type": "string"},
                                "key": {"type": "string"},
                                "hint": {"type": "string"},
                            },
                            "required": ["code", "message"],
                        }
                    },
                }
            },
            "securitySchemes": {
                "node": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": f"{wire.SCHEME} signature (see docs/hub.md)",
                },
                "token": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "accord_session"},
            },
        },
    }


class _AccessLog:
    """One structured log line per request (method, path, status, time,
    user), and a JSON error for any exception that escaped a route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = {"code": 0}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            state = scope.get("state") or {}
            account = state.get("account")
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status["code"],
                    "ms": round((time.monotonic() - started) * 1000, 2),
                    "user": account.user if account else None,
                    "node": account.node if account else None,
                    "client": (scope.get("client") or ("?",))[0],
                },
            )


def _feature_routes(hub: Hub, *, under_api: bool) -> list[BaseRoute]:
    mounted: list[BaseRoute] = []
    for prefix, target in FEATURES:
        if prefix.startswith(wire.API + "/") != under_api:
            continue
        module, _, name = target.partition(":")
        make: Callable[[Hub], list[BaseRoute]] = getattr(
            importlib.import_module(module), name
        )
        made = make(hub)
        mounted += _bare(prefix, made)
        mounted.append(Mount(prefix, routes=made))
    return mounted


def _bare(prefix: str, made: list[BaseRoute]) -> list[BaseRoute]:
    """A feature's ``/`` route also at its prefix without the final slash
    (``/syncml``): devices POST there, and a redirect loses their body."""
    prefix = prefix.rstrip("/")
    return [
        Route(prefix, route.endpoint, methods=list(route.methods or ()))
        for route in made
        if prefix and isinstance(route, Route) and route.path == "/"
    ]


def build_app(hub: Hub) -> Starlette:
    """The hub's application for an opened store."""
    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        # features under /api/v1 first: the file API's mount owns the prefix
        *_feature_routes(hub, under_api=True),
        Mount(
            wire.API,
            routes=[*people.routes(), *api.routes(), *events.routes()],
        ),
        *_feature_routes(hub, under_api=False),
        *dashboard.routes(hub),  # last: its pages sit at the root
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            HubError: error_response,
            AccordError: error_response,
            Exception: error_response,
            404: _not_found,
            405: _bad_method,
        },
    )
    app.state.hub = hub
    app.add_middleware(_AccessLog)
    return app


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {
            "error": {
                "code": "not_found",
                "message": f"no such route: {request.url.path}",
            }
        },
        status_code=404,
    )


async def _bad_method(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {
            "error": {
                "code": "bad_request",
                "message": f"{request.method} is not allowed here",
            }
        },
        status_code=405,
    )
