"""Authentication, hostile input, sessions and crash safety, through
accord's server app and client place in one process."""

from __future__ import annotations

import contextlib
import time

import pytest

from accord.errors import PermissionDenied, ProtocolError, TransientError
from accord.syncml import auth
from accord.syncml import message as m
from accord.syncml.notes import SIF, name_from_text, safe_name
from syncml.conftest import URL, notes_in, texts


def post(pair, msg: m.Message, url: str = URL, wbxml: bool = False):
    kind = "application/vnd.syncml+wbxml" if wbxml else "application/vnd.syncml+xml"
    return pair.http.post(
        url, content=m.render(msg, wbxml_encoding=wbxml), headers={"Content-Type": kind}
    )


def first(device: str, cred: m.Cred | None, user: str = "me") -> m.Message:
    alert = m.Alert(
        1, 200, (m.Item(target="notes", source="./notes", meta=m.Meta(next="1")),)
    )
    header = m.Header("1", 1, URL, device, source_name=user, cred=cred)
    return m.Message(header, (alert,), True)


def header_status(reply) -> m.Status:
    msg = m.parse(reply.content)
    return next(
        c for c in msg.commands if isinstance(c, m.Status) and c.cmd == "SyncHdr"
    )


def test_md5_needs_the_servers_nonce_and_each_nonce_works_once(pair):
    # a device the server never saw: even the right password is refused
    # until it uses a nonce the server gave it (no replay of an old login)
    r = post(pair, first("dev-1", auth.md5_cred("me", "pw", b"")))
    status = header_status(r)
    assert status.code == 401 and status.chal and status.chal.next_nonce
    nonce = auth.decode_nonce(status.chal.next_nonce)
    good = auth.md5_cred("me", "pw", nonce)
    ok = header_status(post(pair, first("dev-1", good)))
    assert ok.code == 212 and ok.chal.next_nonce  # accepted, with the next nonce
    assert header_status(post(pair, first("dev-1", good))).code == 401  # replayed
    chained = auth.md5_cred("me", "pw", auth.decode_nonce(ok.chal.next_nonce))
    assert header_status(post(pair, first("dev-1", chained))).code in (212, 401)


@pytest.mark.parametrize(
    ("cred", "code"),
    [
        (auth.basic_cred("me", "pw"), 212),
        (auth.basic_cred("me", "wrong"), 401),
        (auth.basic_cred("someone", "pw"), 401),
        (None, 407),
        (m.Cred("syncml:auth-basic", "b64", "!!not base64!!"), 401),
        (m.Cred("syncml:auth-x509", None, "x"), 401),
    ],
)
def test_credentials_are_enforced(pair, cred, code):
    reply = m.parse(post(pair, first("dev-2", cred)).content)
    status = next(c for c in reply.commands if c.cmd == "SyncHdr")
    assert status.code == code
    if code != 212:
        assert reply.header.resp_uri is None  # the session ends there
        assert not any(isinstance(c, m.Alert) for c in reply.commands)


def test_the_client_reports_a_wrong_password(pair):
    (pair.local / "a.txt").write_text("Alpha\n")
    for kind in ("md5", "basic"):
        with pytest.raises(PermissionDenied, match="refused the user name or password"):
            pair.sync(password="wrong", auth=kind)
    assert notes_in(pair.served) == {}


def test_an_unknown_store_is_a_clear_error(pair):
    place = pair.place()
    place.store = "calendar"
    import accord

    with pytest.raises(ProtocolError, match="no store named 'calendar'"):
        accord.sync(str(pair.local), place)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<SyncML>",
        b"\x02\xa4\x01\x6a\x00\x6d\x6c",
        b"<a/>",
        b'<!DOCTYPE x [<!ENTITY a "b">]><SyncML>&a;</SyncML>',
    ],
)
def test_malformed_messages_get_a_syncml_error_status(pair, body):
    reply = pair.http.post(
        URL, content=body, headers={"Content-Type": "application/vnd.syncml+xml"}
    )
    assert reply.status_code == 400
    msg = m.parse(reply.content)
    assert msg.commands[0].code == 400
    assert b"Traceback" not in reply.content


def test_unknown_and_expired_sessions(make_pair):
    p = make_pair(session_timeout=0.3)
    r = post(p, first("dev-3", auth.basic_cred("me", "pw")))
    resp_uri = m.parse(r.content).header.resp_uri
    assert resp_uri and "sessionid=" in resp_uri
    time.sleep(0.5)
    late = m.Message(m.Header("1", 2, resp_uri, "dev-3"), (), True)
    assert post(p, late, url=resp_uri).status_code == 404
    bogus = URL + "?sessionid=nope"
    assert post(p, late, url=bogus).status_code == 404


def test_peer_names_never_leave_the_folder(pair):
    # a SIF subject that tries to climb out, into the server's folder...
    for subject in ("../../escaped.txt", "/tmp/abs.txt", ".accord/lock", ".."):
        evil = (
            f"<note><SIFVersion>1.1</SIFVersion><Subject>{subject}</Subject>"
            f"<Body>evil {subject}</Body></note>"
        ).encode()
        r1 = post(pair, first("dev-evil", auth.basic_cred("me", "pw")))
        resp = m.parse(r1.content).header.resp_uri
        add = m.Change("Add", 2, (m.Item(source=subject, data=evil),), m.Meta(type=SIF))
        sync = m.Sync(1, "notes", "./notes", (add,))
        r2 = post(
            pair, m.Message(m.Header("1", 2, resp, "dev-evil"), (sync,), True), resp
        )
        codes = [
            c.code
            for c in m.parse(r2.content).commands
            if isinstance(c, m.Status) and c.cmd == "Add"
        ]
        assert codes == [201]
    assert not (pair.tmp / "escaped.txt").exists()
    assert not list(pair.tmp.glob("abs.txt"))
    assert (pair.served / ".accord" / "lock").exists() is False
    assert all("/" not in n and not n.startswith(".") for n in notes_in(pair.served))
    assert len(notes_in(pair.served)) == 4
    for name in ("../../escaped.txt", "/etc/passwd", ".accord/lock", "..", "a/../../b"):
        assert "/" not in safe_name(name) and safe_name(name) not in ("..", ".")
    assert name_from_text(b"../../../etc/cron.d/x\nbody") == "_.._.._etc_cron.d_x.txt"
    # ...and into the client's: a server note whose first line is a path
    (pair.served / "x.txt").write_text("../../outside\nbody\n")
    assert pair.sync(content_type="text/plain").ok
    assert not (pair.tmp / "outside").exists()
    assert not (pair.local.parent / "outside.txt").exists()
    assert all("/" not in n for n in notes_in(pair.local))


class Flaky:
    """The network fails after ``ok`` requests."""

    def __init__(self, inner, ok: int) -> None:
        self.inner = inner
        self.ok = ok

    def post(self, url, **kwargs):
        if self.ok <= 0:
            raise TransientError("the network went away", where=url)
        self.ok -= 1
        return self.inner.post(url, **kwargs)


@pytest.mark.parametrize("fail_after", [0, 1, 2, 3, 4, 5, 6])
def test_a_run_cut_at_any_message_loses_nothing_and_duplicates_nothing(
    pair, fail_after
):
    import accord

    for i in range(5):
        (pair.local / f"n{i}.txt").write_text(f"Note {i}\n")
    (pair.served / "s.txt").write_text("Server\n")
    pair.sync()
    (pair.local / "new.txt").write_text("New\nlocal\n")
    (pair.local / "n0.txt").write_text("Note 0\nedited\n")
    (pair.served / "t.txt").write_text("Server two\n")
    place = pair.place()
    place._http = Flaky(pair.http, fail_after)
    with contextlib.suppress(Exception):  # cut mid-run
        accord.sync(str(pair.local), place)
    for _ in range(2):
        report = pair.sync()
        assert report.ok, report.summary()
    want = sorted(
        [
            "New\nlocal",
            "Note 0\nedited",
            "Note 1",
            "Note 2",
            "Note 3",
            "Note 4",
            "Server",
            "Server two",
        ]
    )
    assert texts(pair.local) == want
    assert texts(pair.served) == want


def test_a_message_sent_twice_is_answered_twice_but_applied_once(pair):
    r1 = post(pair, first("dev-resend", auth.basic_cred("me", "pw")))
    resp = m.parse(r1.content).header.resp_uri
    add = m.Change(
        "Add", 2, (m.Item(source="1", data=b"Once\n"),), m.Meta(type="text/plain")
    )
    again = m.Message(
        m.Header("1", 2, resp, "dev-resend"),
        (m.Sync(1, "notes", "./notes", (add,)),),
        True,
    )
    a = post(pair, again, resp)
    b = post(pair, again, resp)
    assert a.content == b.content
    assert texts(pair.served) == ["Once"]


def test_other_item_types_are_kept_as_they_are(pair):
    blob = bytes(range(256)) * 4
    r1 = post(pair, first("dev-opaque", auth.basic_cred("me", "pw")))
    resp = m.parse(r1.content).header.resp_uri
    meta = m.Meta(type="application/octet-stream", format="b64")
    add = m.Change("Add", 2, (m.Item(source="9", data=blob, meta=meta),), meta)
    sync = m.Sync(1, "notes", "./notes", (add,), number_of_changes=1)
    msg = m.Message(m.Header("1", 2, resp, "dev-opaque"), (sync,), True)
    post(pair, msg, resp, wbxml=True)
    (stored,) = [p for p in pair.served.iterdir() if p.is_file()]
    assert stored.read_bytes() == blob
    assert pair.sync().ok
    (got,) = [p for p in pair.local.iterdir() if p.is_file()]
    assert got.read_bytes() == blob


class HashOnly:
    """Accounts that keep only their own password hashes (as the hub does)."""

    def secret(self, user):
        return None

    def check(self, user, password):
        return (user, password) == ("me", "pw")


def test_accounts_that_only_check_passwords_take_basic_not_md5(make_pair):
    p = make_pair()
    from accord.syncml.app import syncml_app
    from syncml.conftest import AsgiClient

    p.http = AsgiClient(syncml_app(p.store, HashOnly(), p.store.state))
    assert header_status(post(p, first("d1", auth.basic_cred("me", "pw")))).code == 212
    assert header_status(post(p, first("d2", auth.basic_cred("me", "no")))).code == 401
    r = post(p, first("d3", auth.md5_cred("me", "pw", b"")))
    nonce = auth.decode_nonce(header_status(r).chal.next_nonce)
    again = post(p, first("d3", auth.md5_cred("me", "pw", nonce)))
    assert header_status(again).code == 401


def _chunked_post(app, chunks: int, size: int, length: int | None = None):
    """POST ``chunks`` blocks of ``size`` bytes as a stream; the status and
    how many blocks the app asked for."""
    import asyncio

    asked = 0
    out: dict = {}

    async def receive():
        nonlocal asked
        asked += 1
        more = asked < chunks
        return {"type": "http.request", "body": b"x" * size, "more_body": more}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]

    headers = [(b"content-type", b"application/vnd.syncml+xml"), (b"host", b"t")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "server": ("t", 80),
        "path": "/syncml",
        "raw_path": b"/syncml",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
    }
    asyncio.run(app(scope, receive, send))
    return out["status"], asked


def test_a_body_over_the_limit_is_refused_while_it_streams(make_pair):
    p = make_pair(max_body=10_000)
    status, asked = _chunked_post(p.app, chunks=1_000, size=1_000)
    assert status == 413
    assert asked <= 11  # stopped reading once over the limit, not at the end
    status, asked = _chunked_post(p.app, chunks=1_000, size=1_000, length=1_000_000)
    assert (status, asked) == (413, 0)  # refused by its Content-Length alone
    # under the limit, the message is read and answered (a malformed one: 400)
    status, _ = _chunked_post(p.app, chunks=3, size=1_000)
    assert status in (200, 400)
