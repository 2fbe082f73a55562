"""TLS with the user's certificate, the live event feed, the schema."""

from __future__ import annotations

import json
import threading
import uuid

import httpx
import pytest
from _hubs import as_machine

import accord
from accord.errors import PermissionDenied
from accord.hub import init_hub
from accord.registry import open_replica
from accord.replicas.hub_client import login


def test_tls_with_the_users_certificate(tmp_path) -> None:
    trustme = pytest.importorskip("trustme")
    from fixtures.hub import HubProcess

    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    cert, key, ca = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    certificate.private_key_and_cert_chain_pem.write_to_path(str(cert))
    certificate.private_key_pem.write_to_path(str(key))
    authority.cert_pem.write_to_path(str(ca))
    folder = tmp_path / "hub"
    _, token = init_hub(folder)
    hub = HubProcess(folder, tls=(str(cert), str(key)), ca=str(ca)).start()
    try:
        with as_machine(tmp_path / "m.json"):
            # a certificate this machine does not trust: refused, clearly
            with pytest.raises(PermissionDenied, match="certificate") as caught:
                login(hub.base, "admin", token)
            assert "ca" in caught.value.hint
            login(hub.base, "admin", token, ca=str(ca))
            local = tmp_path / "local"
            local.mkdir()
            (local / "a.txt").write_text("over TLS\n")
            url = hub.place("secure") + f"?ca={ca}"
            assert url.startswith("hubs://")
            assert accord.sync(str(local), url).ok
            place = open_replica(url)
            place.open()
            assert [e.key for e in place.entries()] == ["a.txt"]
            place.close()
        # plain HTTP to the TLS port is no hub
        with pytest.raises(httpx.HTTPError):
            httpx.get(hub.base.replace("https", "http") + "/healthz", timeout=5)
    finally:
        assert hub.stop() == 0


def test_the_event_feed_shows_changes_and_runs(hub_server, tmp_path) -> None:
    from _hubs import admin

    name = "ev" + uuid.uuid4().hex[:6]
    url = hub_server.place(name)
    seen: list[dict] = []
    ready = threading.Event()

    def listen() -> None:
        with admin(hub_server) as client:
            request = client.build("GET", "/api/v1/events")
            answer = client.http.send(request, stream=True)
            kind = None
            for line in answer.iter_lines():
                ready.set()
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    if data.get("collection") == name:
                        seen.append({"kind": kind, **data})
                    if len([s for s in seen if s["kind"] == "run"]) >= 2:
                        answer.close()
                        return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(30)
    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_text("a\n")
    assert accord.sync(str(local), url).ok
    thread.join(30)
    kinds = [s["kind"] for s in seen]
    assert kinds[0] == "run" and "change" in kinds and kinds[-1] == "run", kinds
    finished = seen[-1]
    assert finished["status"] == "ok" or finished.get("counts"), finished
    change = next(s for s in seen if s["kind"] == "change")
    assert {"op": "file", "key": "a.txt"} in change["changes"]
    assert change["user"] == "admin"


def test_health_and_schema_need_no_credentials(hub_server) -> None:
    health = httpx.get(hub_server.base + "/healthz").json()
    assert health["ok"] is True and health["hub"].startswith("h")
    schema = httpx.get(hub_server.base + "/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    operation = schema["paths"]["/api/v1/c/{name}/changes"]["post"]
    assert "expect" in operation["description"]


def test_a_feature_mounts_its_own_routes_with_the_same_auth(tmp_path) -> None:
    """How the dashboard (at /), SQL replication and SyncML plug in."""
    import anyio
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from accord.hub import app as hub_app
    from accord.hub import open_hub
    from accord.hub.web import endpoint

    @endpoint("public")
    async def page(request, account):
        return HTMLResponse("<h1>hub</h1>")

    @endpoint()
    async def mine(request, account):
        return HTMLResponse(account.user)

    def routes(hub):
        return [Route("/", page), Route("/mine", mine)]

    import sys
    import types

    module = types.ModuleType("accord_test_feature")
    module.routes = routes  # type: ignore[attr-defined]
    sys.modules["accord_test_feature"] = module
    init_hub(tmp_path / "h")
    hub = open_hub(tmp_path / "h")
    before = list(hub_app.FEATURES)
    try:
        hub_app.register_feature("", "accord_test_feature:routes")
        transport = httpx.ASGITransport(app=hub_app.build_app(hub))

        async def visit() -> None:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://t"
            ) as client:
                assert (await client.get("/")).text == "<h1>hub</h1>"
                assert (await client.get("/healthz")).json()["ok"] is True
                answer = await client.get("/mine")
                assert answer.status_code == 401
                assert answer.json()["error"]["code"] == "not_authenticated"

        anyio.run(visit)
    finally:
        hub_app.FEATURES[:] = before
        hub.close()
        del sys.modules["accord_test_feature"]
