"""The hub's security model, tested against a real server process."""

from __future__ import annotations

import hashlib
import io
import time
import uuid

import httpx
import pytest
from _hubs import admin, as_machine, machine, new_user

import accord
from accord.errors import PermissionDenied
from accord.model import Entry
from accord.registry import open_replica
from accord.replicas import hub_protocol as wire
from accord.syncml.message import parse

PUBLIC = {"/healthz", "/openapi.json", "/api/v1/enrol", "/api/v1/session"}
#: SyncML devices log in inside their messages (see test_syncml_wants_a_login)
SYNCML = {"/syncml", "/syncml/"}


def test_every_endpoint_wants_credentials(hub_server) -> None:
    schema = httpx.get(hub_server.base + "/openapi.json").json()
    assert "/api/v1/c/{name}/entries" in schema["paths"]
    checked = 0
    for path, methods in schema["paths"].items():
        if path in PUBLIC or path in SYNCML:
            continue
        concrete = path.replace("{name}", "x").replace("{file}", "f")
        for name in ("{upload}", "{node}"):
            concrete = concrete.replace(name, "x")
        for method in methods:
            answer = httpx.request(
                method.upper(), hub_server.base + concrete, content=b"{}"
            )
            assert answer.status_code == 401, (method, path, answer.text)
            error = answer.json()["error"]
            assert error["code"] == "not_authenticated" and error["message"]
            checked += 1
    assert checked > 20


def test_syncml_wants_a_login(hub_server) -> None:
    """A SyncML message without credentials is answered 407 (with a nonce
    for an MD5 login), and nothing else of it is done; one that is not
    SyncML at all, 400; never a traceback."""
    alert = (
        "<SyncML xmlns='SYNCML:SYNCML1.2'><SyncHdr><VerDTD>1.2</VerDTD>"
        "<VerProto>SyncML/1.2</VerProto><SessionID>1</SessionID><MsgID>1</MsgID>"
        "<Target><LocURI>http://hub/syncml</LocURI></Target>"
        "<Source><LocURI>probe-device</LocURI></Source></SyncHdr><SyncBody>"
        "<Alert><CmdID>1</CmdID><Data>201</Data><Item><Target><LocURI>notes"
        "</LocURI></Target><Source><LocURI>./notes</LocURI></Source></Item></Alert>"
        "<Final/></SyncBody></SyncML>"
    )
    headers = {"content-type": "application/vnd.syncml+xml"}
    for path in SYNCML:
        answer = httpx.post(hub_server.base + path, content=alert, headers=headers)
        assert answer.status_code == 200
        (status,) = parse(answer.content).commands  # nothing but the refusal
        assert status.code == 407 and status.chal.next_nonce  # the nonce to use
        junk = httpx.post(hub_server.base + path, content=b"{}", headers=headers)
        assert junk.status_code == 400 and "Traceback" not in junk.text
        assert [s.code for s in parse(junk.content).commands] == [400]


def test_errors_are_json_never_a_traceback(hub_server) -> None:
    answer = httpx.get(hub_server.base + "/no/such/route")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    with admin(hub_server) as client:
        request = client.build("POST", "/api/v1/users", body=b"not json")
        answer = client.http.send(request)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_request"
    assert "Traceback" not in answer.text


def test_a_replayed_or_stale_or_tampered_request_is_refused(hub_server) -> None:
    with admin(hub_server) as client:
        request = client.build("GET", "/api/v1/whoami")
        assert client.http.send(request).status_code == 200
        again = client.http.send(request)
        assert again.status_code == 401
        assert again.json()["error"]["code"] == "replayed_request"
        # a request signed 10 minutes ago
        real = time.time
        try:
            time.time = lambda: real() - 600  # type: ignore[assignment]
            old = client.build("GET", "/api/v1/whoami")
        finally:
            time.time = real  # type: ignore[assignment]
        answer = client.http.send(old)
        assert answer.json()["error"]["code"] == "stale_request"
        # a body that is not the one signed
        signed = client.build("PUT", "/api/v1/grants", json_body={"user": "x"})
        body = b'{"user":"admin","collection":"evil","access":"write"}'
        headers = {k: v for k, v in signed.headers.items() if k != "content-length"}
        forged = httpx.Request("PUT", signed.url, headers=headers, content=body)
        answer = client.http.send(forged)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "bad_signature"
        # another path under the same signature
        moved = httpx.Request(
            "GET", hub_server.base + "/api/v1/status", headers=request.headers
        )
        moved.headers[wire.HEADER_NONCE] = uuid.uuid4().hex
        assert client.http.send(moved).json()["error"]["code"] == "bad_signature"


def test_a_traversal_attempt_gets_400_and_writes_nothing(hub_server, tmp_path) -> None:
    name = "c" + uuid.uuid4().hex[:8]
    _, alice = new_user(hub_server, tmp_path, name)
    blobs = hub_server.folder / "blobs"
    before = sorted(p for p in blobs.rglob("*") if p.is_file())
    with machine(alice) as client:
        path = f"/api/v1/c/{name}/batch"
        for key in (
            "../escape.txt",
            "/etc/passwd",
            "a/../../b",
            "nul\0.txt",
            ".accord/lock",
        ):
            manifest = [{"op": "file", "key": key, "size": 4, "like": [key, "file", 4]}]
            body = wire.encode_batch_head(manifest) + b"evil"
            with pytest.raises(Exception) as caught:
                client.json("POST", path, body=body)
            assert "refused" in str(caught.value)
            request = client.build("POST", path, body=body)
            answer = client.http.send(request)
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"]["code"] == "unsafe_name"
        answer = client.http.send(
            client.build("GET", f"/api/v1/c/{name}/stat?key=../x")
        )
        assert answer.status_code == 400
        listing = client.send("GET", f"/api/v1/c/{name}/entries").text.splitlines()
    assert listing[1:] == []
    after = sorted(p for p in blobs.rglob("*") if p.is_file())
    assert after == before


def test_grants_decide_who_reads_and_writes(hub_server, tmp_path) -> None:
    name = "c" + uuid.uuid4().hex[:8]
    _, writer = new_user(hub_server, tmp_path, name, "write")
    _, reader = new_user(hub_server, tmp_path, name, "read")
    _, stranger = new_user(hub_server, tmp_path)
    url = hub_server.place(name)
    secret = b"only for " + name.encode()
    digest = "sha256:" + hashlib.sha256(secret).hexdigest()
    with as_machine(writer):
        place = open_replica(url)
        place.open()
        like = Entry("s.txt", "file", len(secret), 1, 0o644)
        place.write("s.txt", io.BytesIO(secret), like=like, expect=None)
        place.close()
    with as_machine(reader):
        place = open_replica(url)
        place.open()
        assert place.capabilities.read_only
        assert [e.key for e in place.entries()] == ["s.txt"]
        assert accord.mirror(url, str(tmp_path / "copy")).ok  # a reader mirrors
        assert (tmp_path / "copy" / "s.txt").read_bytes() == secret
        with pytest.raises(PermissionDenied, match="may read") as refused:
            place.write(
                "t.txt",
                io.BytesIO(b"x"),
                like=like._replace(key="t.txt", size=1),
                expect=None,
            )
        assert "--write" in refused.value.hint
        place.close()
    with as_machine(stranger):
        with pytest.raises(PermissionDenied, match="no collection") as caught:
            open_replica(url).open()
        assert "accord hub grant" in caught.value.hint
        missing = hub_server.place("does-not-exist")
        with pytest.raises(PermissionDenied) as other:
            open_replica(missing).open()
        assert other.value.reason.replace("does-not-exist", name) == caught.value.reason
        # content of a collection one cannot read is never admitted to exist
        with machine(stranger) as client:
            assert client.api("POST", "/have", json_body={"digests": [digest]}) == {
                "held": []
            }
    with machine(reader) as client:
        assert client.api("POST", "/have", json_body={"digests": [digest]}) == {
            "held": [digest]
        }


def test_a_revoked_node_is_refused_at_once(hub_server, tmp_path) -> None:
    name = "c" + uuid.uuid4().hex[:8]
    _, alice = new_user(hub_server, tmp_path, name)
    with machine(alice) as client:
        me = client.api("GET", "/whoami")
        with admin(hub_server) as boss:
            boss.revoke_node(me["node"])
        with pytest.raises(PermissionDenied, match="revoked") as caught:
            client.api("GET", "/whoami")
        assert "accord login" in caught.value.hint


def test_enrolment_codes_are_used_once_and_failures_slow_down(
    hub_server, tmp_path
) -> None:
    from accord.replicas.hub_client import login

    with admin(hub_server) as boss:
        code = boss.add_user("once-" + uuid.uuid4().hex[:6])["code"]
    user = [u["name"] for u in boss_users(hub_server) if u["name"].startswith("once-")][
        -1
    ]
    with as_machine(tmp_path / "m1.json"):
        login(hub_server.base, user, code)
    with as_machine(tmp_path / "m2.json"), pytest.raises(PermissionDenied):
        login(hub_server.base, user, code)
    # a guessing attack on one user name: answers slow down, then stop
    victim = "victim-" + uuid.uuid4().hex[:6]
    with admin(hub_server) as boss:
        boss.add_user(victim)
    started = time.monotonic()
    codes = []
    for attempt in range(12):
        answer = httpx.post(
            hub_server.base + "/api/v1/enrol",
            json={"user": victim, "code": f"guess{attempt}"},
            timeout=60,
        )
        codes.append(answer.json()["error"]["code"])
    assert codes[-1] == "too_many_attempts", codes
    assert time.monotonic() - started > 2.0


def boss_users(hub) -> list[dict]:
    with admin(hub) as boss:
        return boss.users()


def test_bodies_are_size_limited(hub_server, tmp_path) -> None:
    name = "c" + uuid.uuid4().hex[:8]
    _, alice = new_user(hub_server, tmp_path, name)
    with machine(alice) as client:
        big = b"{" + b" " * (2 << 20) + b"}"
        answer = client.http.send(client.build("POST", "/api/v1/have", body=big))
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "too_large"


def test_nothing_secret_is_stored_in_clear(hub_server, tmp_path) -> None:
    import json

    name = "c" + uuid.uuid4().hex[:8]
    _, alice = new_user(hub_server, tmp_path, name)
    secret = json.loads(alice.read_text())
    (node,) = secret["nodes"].values()
    raw = b"".join(p.read_bytes() for p in hub_server.folder.glob("hub.db*"))
    assert node["secret"].encode() not in raw
    assert hub_server.token.encode() not in raw  # type: ignore[attr-defined]


def test_a_browser_session_logs_in_with_a_password(hub_server, tmp_path) -> None:
    name, _ = new_user(hub_server, tmp_path)
    with admin(hub_server) as boss:
        boss.set_password(name, "correct horse battery")
    with httpx.Client(base_url=hub_server.base) as browser:
        answer = browser.post(
            "/api/v1/session", json={"user": name, "password": "wrong one"}
        )
        assert answer.status_code == 401
        answer = browser.post(
            "/api/v1/session", json={"user": name, "password": "correct horse battery"}
        )
        assert answer.status_code == 200
        assert "httponly" in answer.headers["set-cookie"].lower()
        assert browser.get("/api/v1/whoami").json()["user"] == name
        # a state change from a cookie needs the anti-forgery header
        answer = browser.put(
            f"/api/v1/users/{name}/password", json={"password": "x" * 10}
        )
        assert answer.json()["error"]["code"] == "forbidden"
        answer = browser.put(
            f"/api/v1/users/{name}/password",
            json={"password": "y" * 10},
            headers={"x-accord-csrf": "1"},
        )
        assert answer.status_code == 200
        browser.delete("/api/v1/session")
        assert browser.get("/api/v1/whoami").status_code == 401
