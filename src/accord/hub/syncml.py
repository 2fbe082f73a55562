"""SyncML at ``/syncml``: phones and PIM tools sync the hub's collections.

A device POSTs SyncML 1.2 (``application/vnd.syncml+xml`` or ``+wbxml``)
to ``/syncml``; the target of its Alert (``notes``, ``./notes``) names a
hub collection, and each note is one file of that collection, the same
items ``accord sync ~/notes hub://HOST/notes`` sees. The protocol is
accord's SyncML server role (``accord.syncml.server``) over the hub
(``accord.hub.syncml_state``): the hub's users log in with
``syncml:auth-basic`` or ``syncml:auth-md5``, their grants apply, failed
logins are slowed down as the hub's other logins are.

Every message is one transaction of the hub's database: the notes it
changes, what the hub remembers of the device (ids, anchors, maps,
nonces) and the session itself commit together, or none of them. Between
two messages a session is kept in ``hub_syncml_sessions`` (pickled: it is
the hub's own data, in the hub's own database), so the next message may
reach any server process sharing the database, or the same process
restarted. A message the device sends again (its answer was lost) gets
the same answer, not the same changes twice. Idle sessions expire after
``SESSION_TIMEOUT`` seconds.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from accord.hub import accounts
from accord.hub import schema as t
from accord.hub.auth import HubError, client_address, read_body
from accord.hub.store import Hub
from accord.hub.syncml_state import HubAccounts, HubState, HubStores, bound
from accord.hub.web import run
from accord.syncml import auth
from accord.syncml import message as m
from accord.syncml.app import error_message, message_form
from accord.syncml.server import ServerConfig, ServerSession
from accord.syncml.tree import Malformed

__all__ = ["SESSION_TIMEOUT", "routes"]

SESSION_TIMEOUT = 300.0
_MAX_BODY = 32 << 20
log = logging.getLogger("accord.hub.syncml")


class _Answer(Exception):
    """Stop handling a message and send this SyncML status instead."""

    def __init__(self, code: int) -> None:
        self.code = code


class SyncMLService:
    """The SyncML endpoint of one hub (one per server process)."""

    def __init__(self, hub: Hub, *, policy: str = "keep-both") -> None:
        self.hub = hub
        self.policy = policy

    async def endpoint(self, request: Request) -> Response:
        """SyncML 1.2 over HTTP (XML or WBXML): a device syncs a collection."""
        url, wbxml, media = message_form(request)
        if request.method != "POST":
            return Response(
                "accord hub: POST SyncML messages here\n", media_type="text/plain"
            )
        try:
            spool = await read_body(request, _MAX_BODY)
        except HubError:
            return Response(error_message(413, None, url, wbxml), 413, media_type=media)
        with spool:
            body = spool.read()
        token = request.query_params.get("sessionid")
        address = client_address(request)
        code, data = await run(self.handle, url, token, body, wbxml, address)
        return Response(data, code, media_type=media)

    def handle(
        self, url: str, token: str | None, body: bytes, wbxml: bool, address: str
    ) -> tuple[int, bytes]:
        """One message in, its answer out (status code, body)."""
        try:
            msg = m.parse(body)
        except Malformed as exc:
            log.info("refused a malformed SyncML message: %s", exc)
            return 400, error_message(400, None, url, wbxml)
        try:
            who = None if token else self._throttle(msg, address)
            return self._handle(url, token, msg, wbxml, who)
        except _Answer as answer:
            return answer.code, error_message(answer.code, msg, url, wbxml)
        except Exception:
            log.exception("the SyncML server failed on a message")
            if token:
                self._drop(token)
            return 500, error_message(500, msg, url, wbxml)

    def _handle(
        self,
        url: str,
        token: str | None,
        msg: m.Message,
        wbxml: bool,
        who: list[str] | None,
    ) -> tuple[int, bytes]:
        with self.hub.writer.begin() as conn, bound(self.hub, conn):
            if token:
                row = _session_row(conn, token)
                if row.last_msg == msg.header.msg_id and row.last_reply:
                    return 200, bytes(row.last_reply)  # sent again: same answer
                session: ServerSession = pickle.loads(row.data)
                if session.device != msg.header.source:
                    raise _Answer(404)  # a session belongs to one device
                wbxml = bool(row.wbxml)
            else:
                _expire(conn)
                token = os.urandom(12).hex()
                session = self._new_session(url, token)
            reply = session.receive(msg)
            data = m.render(reply, wbxml_encoding=wbxml)
            if who is not None:
                accounts.note_failure(conn, who, failed=session.user is None)
            _keep(conn, token, session, wbxml, msg.header.msg_id, data)
        return 200, data

    def _new_session(self, url: str, token: str) -> ServerSession:
        config = ServerConfig(url=url, policy=self.policy)
        return ServerSession(
            config,
            HubAccounts(),
            HubStores(),
            HubState(None),
            resp_uri=f"{url}?sessionid={token}",
        )

    def _throttle(self, msg: m.Message, address: str) -> list[str] | None:
        """Wait before a login after repeated failures (the hub's rule for
        every login); too many: refused for a while (401)."""
        hdr = msg.header
        login = auth.read_login(hdr.cred, hdr.source_name) if hdr.cred else None
        if login is None:
            return None
        who = [f"user:{login.user}", f"addr:{address}"]
        with self.hub.reader.connect() as conn:
            delay = accounts.failure_delay(conn, who)
            first = login.kind == auth.MD5 and not _has_nonce(conn, hdr.source)
        if delay is None:
            raise _Answer(401)
        if delay:
            time.sleep(delay)
        # a device's first MD5 login, without a nonce of ours, is refused
        # with one to use: the protocol's first step, not a failure
        return None if first else who

    def _drop(self, token: str) -> None:
        """Forget a session that failed (it expires anyway if this fails)."""
        s = t.syncml_sessions
        try:
            with self.hub.writer.begin() as conn:
                conn.execute(s.delete().where(s.c.token == token))
        except Exception:
            log.exception("could not forget a failed SyncML session")


def _has_nonce(conn: sa.Connection, device: str) -> bool:
    n = t.syncml_nonces
    return (
        conn.execute(sa.select(n.c.device).where(n.c.device == device)).first()
        is not None
    )


def _session_row(conn: sa.Connection, token: str) -> Any:
    s = t.syncml_sessions
    row = conn.execute(sa.select(s).where(s.c.token == token).with_for_update()).first()
    if row is None or row.updated < time.time() - SESSION_TIMEOUT:
        raise _Answer(404)  # no such session (expired): the device starts again
    return row


def _keep(
    conn: sa.Connection,
    token: str,
    session: ServerSession,
    wbxml: bool,
    msg_id: int,
    reply: bytes,
) -> None:
    """Store the session for its next message (or forget a finished one)."""
    s = t.syncml_sessions
    conn.execute(s.delete().where(s.c.token == token))
    if session.complete or session.ended:
        return
    conn.execute(
        s.insert().values(
            token=token,
            updated=time.time(),
            wbxml=wbxml,
            last_msg=msg_id,
            last_reply=reply,
            data=pickle.dumps(session, protocol=pickle.HIGHEST_PROTOCOL),
        )
    )


def _expire(conn: sa.Connection) -> None:
    s = t.syncml_sessions
    conn.execute(s.delete().where(s.c.updated < time.time() - SESSION_TIMEOUT))


def routes(hub: Hub) -> list[BaseRoute]:
    """The SyncML endpoint (mounted at ``/syncml``)."""
    service = SyncMLService(hub)
    return [Route("/", service.endpoint, methods=["GET", "POST"])]
