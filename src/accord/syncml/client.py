"""The client role: one SyncML session as a state machine over messages.

    session = ClientSession(config, state, store, mode=TWO_WAY)
    message = session.first()
    while message is not None:
        reply = post(session.url, render(message))   # the caller's transport
        message = session.receive(parse(reply))
    session.result                                    # anchors, nonce, counts

No I/O here: the caller moves the bytes, and ``store`` (a
:class:`ClientStore`) holds the items. The packages of a session:

1. the client's Alert (mode, Last/Next anchors), its DevInf (Put) and a Get
   of the server's when it is not known yet;
2. the server's statuses, DevInf (Results) and Alert; a 508 on our Alert,
   or a server Alert 201, turns the session into a slow sync;
3. the client's Sync: its changes (all its items in a slow sync or a
   refresh from the client), split over messages to respect the server's
   MaxMsgSize, large items in chunks (MoreData);
4. the server's Sync: its changes, applied through the store, each answered
   by a status;
5. the client's Map (server id -> client id for every item it added);
6. the server's statuses: the session is complete, and only then are the
   anchors to be saved (``result``).

A message that is not the last of its package (no Final) is answered with
the statuses and an Alert 222 asking for the next one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, Protocol

from accord.errors import PermissionDenied, ProtocolError
from accord.syncml import auth, devinf
from accord.syncml import message as m
from accord.syncml.notes import SIF, TEXT
from accord.syncml.outbox import Outbox, SyncPiece
from accord.syncml.tree import Node

__all__ = [
    "MODES",
    "AuthRetry",
    "ClientConfig",
    "ClientSession",
    "ClientState",
    "ClientStore",
    "Outgoing",
    "Result",
]

TWO_WAY, SLOW = 200, 201
ONE_WAY_FROM_CLIENT, REFRESH_FROM_CLIENT = 202, 203
ONE_WAY_FROM_SERVER, REFRESH_FROM_SERVER = 204, 205
NEXT_MESSAGE = 222
REFRESH_REQUIRED = 508

#: the names a user gives to the sync modes, and their Alert codes
MODES = {
    "two-way": TWO_WAY,
    "slow": SLOW,
    "one-way-from-client": ONE_WAY_FROM_CLIENT,
    "refresh-from-client": REFRESH_FROM_CLIENT,
    "one-way-from-server": ONE_WAY_FROM_SERVER,
    "refresh-from-server": REFRESH_FROM_SERVER,
}
_SENDS_ALL = (SLOW, REFRESH_FROM_CLIENT)
_SENDS_NOTHING = (ONE_WAY_FROM_SERVER, REFRESH_FROM_SERVER)
_OK = (200, 201, 202, 203, 204, 205, 207, 208, 209, 210, 211, 212, 213, 418, 419)


class ClientConfig(NamedTuple):
    url: str
    device_id: str
    remote_store: str  # the server's name of the store (Alert target)
    local_store: str = "./notes"
    user: str | None = None
    password: str | None = None
    auth: str = "md5"  # "basic" or "md5"
    content_type: str | None = None  # None: SIF if the server takes it, else text
    max_msg_size: int = 150_000
    max_obj_size: int = 4_000_000
    wbxml: bool = False


class ClientState(NamedTuple):
    """What a client keeps between sessions with one server store."""

    session: int = 0
    last_local: str | None = None  # our Next anchor of the last complete session
    last_remote: str | None = None  # the server's Next anchor then
    nonce: str | None = None  # the server's last NextNonce (base64)
    server_devinf: devinf.DevInf | None = None


class Outgoing(NamedTuple):
    """One change the client sends."""

    op: str  # Add, Replace, Delete
    luid: str
    data: bytes | None = None
    content_type: str = TEXT


class ClientStore(Protocol):
    """The client's items, as the session sees them."""

    def outgoing(self, everything: bool) -> Iterable[Outgoing]:
        """Changes to send; every item (as Add) when ``everything``."""
        ...

    def confirmed(self, op: str, luid: str, code: int) -> None:
        """The server's status for one change we sent."""
        ...

    def received(
        self,
        op: str,
        guid: str | None,
        luid: str | None,
        data: bytes | None,
        ctype: str | None,
    ) -> tuple[int, str | None]:
        """Apply one server change; its status and, for an Add, our id."""
        ...

    def refresh(self) -> None:
        """The server's items replace ours (refresh from the server)."""
        ...


class Result(NamedTuple):
    state: ClientState  # to save: the session completed
    mode: int  # the mode the session ran in (a 508 makes 201)
    sent: dict[str, int]
    received: dict[str, int]
    problems: list[str]


class AuthRetry(Exception):
    """The server challenged us; start again with this nonce (MD5)."""

    def __init__(self, nonce: str | None, kind: str) -> None:
        super().__init__(kind)
        self.nonce = nonce
        self.kind = kind


class ClientSession:
    """One session of a client with one server store."""

    def __init__(
        self,
        config: ClientConfig,
        state: ClientState,
        store: ClientStore,
        mode: int = TWO_WAY,
        *,
        next_anchor: str | None = None,
    ) -> None:
        self.config = config
        self.state = state
        self.store = store
        self.mode = mode if state.last_local or mode != TWO_WAY else SLOW
        self.session_id = str(state.session + 1)
        self.next_anchor = next_anchor or m.new_anchor()
        self.url = config.url
        self.msg_id = 0
        self.outbox = Outbox(wbxml_encoding=config.wbxml)
        self.phase = "init"
        self.server_anchor: str | None = None
        self.server_max_msg: int | None = None
        self.nonce = state.nonce
        self.server_devinf = state.server_devinf
        self.sent: dict[str, int] = {}
        self.received_counts: dict[str, int] = {}
        self.problems: list[str] = []
        self.expected_changes: int | None = None
        self.changes_seen = 0
        self.buffers: dict[str, bytes] = {}
        self.result: Result | None = None
        self.refreshed = False
        self.package_done = False

    # -- the messages ----------------------------------------------------------
    def first(self) -> m.Message:
        """Package 1: DevInf, the Alert with our anchors, credentials."""
        cfg = self.config
        self.outbox.command(
            m.Exchange(
                "Put",
                0,
                (m.Item(source=devinf.LOC, data=devinf.to_node(self._devinf())),),
                m.Meta(type=m.DEVINF_TYPE),
            )
        )
        if self.server_devinf is None:
            self.outbox.command(
                m.Exchange(
                    "Get", 0, (m.Item(target=devinf.LOC),), m.Meta(type=m.DEVINF_TYPE)
                )
            )
        anchor = m.Meta(
            last=self.state.last_local,
            next=self.next_anchor,
            max_obj_size=cfg.max_obj_size,
        )
        item = m.Item(target=cfg.remote_store, source=cfg.local_store, meta=anchor)
        self.outbox.command(m.Alert(0, self.mode, (item,)), ref="alert")
        message = self._message(final=True, cred=True)
        self.package_done = message.final
        return message

    def receive(self, msg: m.Message) -> m.Message | None:
        """The server's message in; our next message out (None: complete)."""
        self._check_header(msg)
        needs_answer = False
        for command in msg.commands:
            if isinstance(command, m.Status):
                self._on_status(msg, command)
            else:
                needs_answer = True
                self._on_command(msg, command)
        return self._next(msg, needs_answer)

    def _next(self, msg: m.Message, needs_answer: bool) -> m.Message | None:
        self._answer_header(msg)
        if not self.package_done:
            return self._send()  # the rest of our package
        if not msg.final:
            self._ask_next()  # the server's package goes on
            return self._send(final=False)
        if self.phase == "init":
            self.phase = "sync"
            self._queue_sync()
        elif self.phase == "sync":
            # the server's Sync package is in; our Map (queued as its Adds
            # came) and statuses answer it
            self._check_number_of_changes()
            self.phase = "map"
        elif not needs_answer and not self.outbox.has_commands:
            self._complete()
            return None
        return self._send()

    def _answer_header(self, msg: m.Message) -> None:
        hdr = msg.header
        self.outbox.statuses.appendleft(
            m.Status(0, hdr.msg_id, 0, "SyncHdr", 200, hdr.target, hdr.source)
        )

    def _send(self, *, final: bool = True) -> m.Message:
        message = self._message(final=final)
        self.package_done = message.final or not final
        return message

    def _message(self, *, final: bool, cred: bool = False) -> m.Message:
        self.msg_id += 1
        header = m.Header(
            session_id=self.session_id,
            msg_id=self.msg_id,
            target=self.url,
            source=self.config.device_id,
            source_name=self.config.user,
            cred=self._cred() if cred else None,
            max_msg_size=self.config.max_msg_size,
            max_obj_size=self.config.max_obj_size,
        )
        return self.outbox.next_message(header, self.server_max_msg, final=final)

    # -- header and auth -------------------------------------------------------
    def _cred(self) -> m.Cred | None:
        cfg = self.config
        if cfg.user is None or cfg.password is None:
            return None
        if cfg.auth == "basic":
            return auth.basic_cred(cfg.user, cfg.password)
        return auth.md5_cred(cfg.user, cfg.password, auth.decode_nonce(self.nonce))

    def _check_header(self, msg: m.Message) -> None:
        hdr = msg.header
        if hdr.session_id != self.session_id:
            raise ProtocolError(
                f"the server answered for session {hdr.session_id!r}, "
                f"not {self.session_id!r}",
                where=self.config.url,
            )
        if hdr.resp_uri:
            self.url = hdr.resp_uri
        if hdr.max_msg_size:
            self.server_max_msg = hdr.max_msg_size
        if hdr.max_obj_size:
            self.outbox.max_obj_size = hdr.max_obj_size
        for command in msg.commands:
            if isinstance(command, m.Status) and command.cmd == "SyncHdr":
                self._on_header_status(command)

    def _on_header_status(self, status: m.Status) -> None:
        if status.chal is not None and status.chal.next_nonce is not None:
            self.nonce = status.chal.next_nonce
        if status.code in (200, 212):
            return
        if status.code in (401, 407):
            kind = status.chal.type if status.chal else auth.MD5
            raise AuthRetry(self.nonce, kind)
        raise ProtocolError(
            f"the server refused the session (status {status.code})",
            status=status.code,
            where=self.config.url,
        )

    # -- statuses for what we sent ---------------------------------------------
    def _on_status(self, msg: m.Message, status: m.Status) -> None:
        if status.cmd == "SyncHdr":
            return
        what = self.outbox.answered(status)
        if what is None:
            return  # a status for something long settled: nothing to do
        name, ref = what
        if ref == "alert":
            self._on_alert_status(status)
        elif name in ("Add", "Replace", "Delete") and ref is not None:
            if status.code == 213:
                return  # a chunk of a large item, buffered by the server
            self.sent[name] = self.sent.get(name, 0) + 1
            if status.code not in _OK:
                self.problems.append(
                    f"the server refused {name} of {ref} (status {status.code})"
                )
            self.store.confirmed(name, ref, status.code)
        elif status.code not in _OK and name not in ("Put", "Results"):
            self.problems.append(f"the server answered {name} with {status.code}")

    def _on_alert_status(self, status: m.Status) -> None:
        if status.code == REFRESH_REQUIRED:
            self.mode = SLOW  # the server lost track: send everything
            return
        if status.code in (200, 201, 202, 203, 204, 205):
            return
        store = self.config.remote_store
        if status.code == 404:
            raise ProtocolError(
                f"the server has no store named {store!r}",
                status=404,
                where=self.config.url,
                hint="check ?store= in the URL (the server's name of the notes store)",
            )
        if status.code in (401, 403, 407):
            raise PermissionDenied(
                f"the server does not let this user sync the store {store!r}",
                where=self.config.url,
            )
        raise ProtocolError(
            f"the server refused to sync the store {store!r} (status {status.code})",
            status=status.code,
            where=self.config.url,
        )

    # -- commands from the server ----------------------------------------------
    def _on_command(self, msg: m.Message, command: m.Command) -> None:
        if isinstance(command, m.Alert):
            self._on_alert(msg, command)
        elif isinstance(command, m.Exchange):
            self._on_exchange(msg, command)
        elif isinstance(command, m.Sync):
            self._on_sync(msg, command)
        else:
            name = getattr(command, "name", type(command).__name__)
            self._status(msg, command.cmd_id, name, 406)

    def _status(
        self,
        msg: m.Message,
        cmd_id: int,
        cmd: str,
        code: int,
        *,
        target: str | None = None,
        source: str | None = None,
        items: tuple[m.Item, ...] = (),
    ) -> None:
        self.outbox.status(
            m.Status(
                0, msg.header.msg_id, cmd_id, cmd, code, target, source, None, items
            )
        )

    def _on_alert(self, msg: m.Message, alert: m.Alert) -> None:
        item = alert.items[0] if alert.items else m.Item()
        if alert.code == NEXT_MESSAGE:
            self._status(msg, alert.cmd_id, "Alert", 200)
            return
        meta = item.meta or m.Meta()
        self.server_anchor = meta.next
        if alert.code in (SLOW, REFRESH_FROM_CLIENT) and self.mode not in _SENDS_ALL:
            self.mode = SLOW if alert.code == SLOW else alert.code
        elif alert.code in (ONE_WAY_FROM_SERVER, REFRESH_FROM_SERVER):
            self.mode = alert.code
        anchor = m.Item(data=_anchor_node(meta.next)) if meta.next else None
        self._status(
            msg,
            alert.cmd_id,
            "Alert",
            200,
            target=item.target,
            source=item.source,
            items=(anchor,) if anchor else (),
        )

    def _on_exchange(self, msg: m.Message, x: m.Exchange) -> None:
        if x.name == "Get":
            self._status(msg, x.cmd_id, "Get", 200, target=devinf.LOC)
            result = m.Exchange(
                "Results",
                0,
                (m.Item(source=devinf.LOC, data=devinf.to_node(self._devinf())),),
                m.Meta(type=m.DEVINF_TYPE),
                msg_ref=msg.header.msg_id,
                cmd_ref=x.cmd_id,
            )
            self.outbox.command(result)
            return
        if x.name != "Results":
            self._status(msg, x.cmd_id, x.name, 200, source=devinf.LOC)
        for item in x.items:
            if isinstance(item.data, Node) and item.data.tag == "DevInf":
                self.server_devinf = devinf.from_node(item.data)

    def _on_sync(self, msg: m.Message, sync: m.Sync) -> None:
        self._status(
            msg, sync.cmd_id, "Sync", 200, target=sync.target, source=sync.source
        )
        if sync.number_of_changes is not None:
            self.expected_changes = (
                self.expected_changes or 0
            ) + sync.number_of_changes
        if self.mode == REFRESH_FROM_SERVER and not self.refreshed:
            self.refreshed = True
            self.store.refresh()
        for change in sync.changes:
            if isinstance(change, m.Change):
                self._on_change(msg, change)
            else:
                self._status(msg, change.cmd_id, change.name, 406)

    def _on_change(self, msg: m.Message, change: m.Change) -> None:
        ctype = change.meta.type if change.meta else None
        for item in change.items:
            guid, luid = item.source, item.target
            key = luid or guid or ""
            data = item.data if isinstance(item.data, bytes) else None
            held = len(self.buffers.get(key, b"")) + len(data or b"")
            size = (item.meta.size if item.meta else None) or 0
            if max(held, size) > self.config.max_obj_size:
                self.buffers.pop(key, None)
                self.problems.append(f"{key}: larger than MaxObjSize; refused")
                self._status(
                    msg, change.cmd_id, change.name, 413, target=luid, source=guid
                )
                continue
            if item.more_data:
                self.buffers[key] = self.buffers.get(key, b"") + (data or b"")
                self._status(
                    msg, change.cmd_id, change.name, 213, target=luid, source=guid
                )
                continue
            if key in self.buffers:
                data = self.buffers.pop(key) + (data or b"")
            kind = (item.meta.type if item.meta else None) or ctype
            try:
                code, new_luid = self.store.received(
                    change.name, guid, luid, data, kind
                )
            except Exception as exc:  # one bad item must not stop the session
                self.problems.append(f"could not apply {change.name} {key}: {exc}")
                code, new_luid = 500, None
            self.changes_seen += 1
            self.received_counts[change.name] = (
                self.received_counts.get(change.name, 0) + 1
            )
            self._status(
                msg, change.cmd_id, change.name, code, target=luid, source=guid
            )
            if change.name == "Add" and new_luid is not None and guid is not None:
                self.outbox.piece(
                    SyncPiece(
                        "Map",
                        self.config.remote_store,
                        self.config.local_store,
                        (guid, new_luid),
                    )
                )

    # -- what we send ----------------------------------------------------------
    def _ask_next(self) -> None:
        item = m.Item(target=self.url, source=self.config.device_id)
        self.outbox.command(m.Alert(0, NEXT_MESSAGE, (item,)))

    def _queue_sync(self) -> None:
        cfg = self.config
        changes = (
            []
            if self.mode in _SENDS_NOTHING
            else list(self.store.outgoing(self.mode in _SENDS_ALL))
        )
        limit = self.outbox.max_obj_size
        if limit:
            for change in [c for c in changes if len(c.data or b"") > limit]:
                self.problems.append(
                    f"{change.luid}: {len(change.data or b'')} bytes is more than the "
                    f"server takes (MaxObjSize {limit}); not sent"
                )
                changes.remove(change)
        if not changes:
            self.outbox.command(m.Sync(0, cfg.remote_store, cfg.local_store, (), 0))
            return
        for change in changes:
            self.outbox.piece(
                SyncPiece(
                    "Sync",
                    cfg.remote_store,
                    cfg.local_store,
                    _change(change),
                    change.luid,
                    number_of_changes=len(changes),
                )
            )

    def _check_number_of_changes(self) -> None:
        expected = self.expected_changes
        if expected is not None and expected != self.changes_seen:
            self.problems.append(
                f"the server announced {expected} changes and sent {self.changes_seen}"
            )

    def _complete(self) -> None:
        for name, ref in self.outbox.unanswered():
            if name in ("Add", "Replace", "Delete") and ref is not None:
                self.problems.append(f"the server never answered {name} of {ref}")
        state = ClientState(
            session=int(self.session_id),
            last_local=self.next_anchor,
            last_remote=self.server_anchor,
            nonce=self.nonce,
            server_devinf=self.server_devinf,
        )
        self.phase = "complete"
        self.result = Result(
            state, self.mode, self.sent, self.received_counts, self.problems
        )

    def content_type(self) -> str:
        """The note format for this server: SIF when its store takes it."""
        if self.config.content_type:
            return self.config.content_type
        store = (
            self.server_devinf.store(self.config.remote_store)
            if self.server_devinf
            else None
        )
        return SIF if store is not None and store.accepts(SIF) else TEXT

    def _devinf(self) -> devinf.DevInf:
        cfg = self.config
        pref = self.content_type()
        other = TEXT if pref == SIF else SIF
        store = devinf.DataStore(
            source_ref=cfg.local_store,
            display_name=cfg.local_store.removeprefix("./"),
            max_guid_size=64,
            rx_pref=(pref, "1.1" if pref == SIF else "1.0"),
            rx=((other, "1.1" if other == SIF else "1.0"),),
            tx_pref=(pref, "1.1" if pref == SIF else "1.0"),
            tx=((other, "1.1" if other == SIF else "1.0"),),
        )
        return devinf.DevInf(
            dev_id=cfg.device_id, dev_type="workstation", datastores=(store,)
        )


def _change(out: Outgoing) -> m.Change:
    meta = m.Meta(type=out.content_type)
    if out.op == "Delete":
        return m.Change("Delete", 0, (m.Item(source=out.luid),), meta)
    return m.Change(out.op, 0, (m.Item(source=out.luid, data=out.data or b""),), meta)


def _anchor_node(next_anchor: str) -> Node:
    return Node("Anchor", (Node("Next", (), next_anchor),))
