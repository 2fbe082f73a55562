"""The server role: one SyncML session as a state machine over messages.

    session = ServerSession(config, accounts, stores, nonces)
    reply = session.receive(parse(body))     # for every message of the session
    session.complete                           # True once anchors are saved

The first message must carry credentials (``Cred``): Basic, or MD5 with the
nonce this server gave that device last (a device it has never seen is
answered 401 with a nonce, and a client retries with it). An accepted
login is answered 212 with the next nonce; anything else 401 (or 407
without credentials), and the session ends there.

Each Alert names a store; ``stores.open(user, name)`` gives it, or none (404
for an unknown store), or raises PermissionDenied (403: the user may not
sync it). A store whose collection is ``read_only`` refuses a one-way or
refresh sync from the client (403), and each change a client sends (403):
its user may only receive. The client's Last
anchor must be the Next anchor of its last complete session with that
store, else the answer is 508 and the session is a slow sync. Anchors are
saved only when the session completes (the client's Map is answered);
what each message changes is committed before its answer goes out.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from accord.errors import PermissionDenied
from accord.syncml import auth, devinf
from accord.syncml import message as m
from accord.syncml.notes import SIF, TEXT
from accord.syncml.outbox import Outbox, SyncPiece
from accord.syncml.serversync import SLOW, TWO_WAY, ServerChange, StoreSync
from accord.syncml.store import Accounts, PeerKey, ServerState, Stores
from accord.syncml.tree import Node

__all__ = ["ServerConfig", "ServerSession"]

NEXT_MESSAGE = 222
_MODES = (200, 201, 202, 203, 204, 205)
_FROM_CLIENT = (202, 203)  # one-way and refresh from the client


class ServerConfig(NamedTuple):
    url: str  # the server's own URI (its SyncHdr Source)
    policy: str = "keep-both"
    max_msg_size: int = 150_000
    max_obj_size: int = 4_000_000
    stores: tuple[str, ...] = ("notes",)  # advertised in the DevInf
    dev_id: str = "accord"


class ServerSession:
    """One session with one client."""

    def __init__(
        self,
        config: ServerConfig,
        accounts: Accounts,
        stores: Stores,
        nonces: ServerState,
        *,
        resp_uri: str | None = None,
    ) -> None:
        self.config = config
        self.accounts = accounts
        self.stores = stores
        self.nonces = nonces
        self.resp_uri = resp_uri
        self.user: str | None = None
        self.device: str | None = None
        self.session_id = ""
        self.msg_id = 0
        self.outbox: Outbox | None = None
        self.syncs: dict[str, StoreSync] = {}
        self.anchors: dict[str, tuple[str | None, str]] = {}
        self.client_devinf: devinf.DevInf | None = None
        self.phase = "init"
        self.complete = False
        self.ended = False  # refused: no more messages are taken
        self.client_max_msg: int | None = None
        self.client_max_obj: int | None = None

    # -- a message in, a message out -------------------------------------------
    def receive(self, msg: m.Message) -> m.Message:
        hdr = msg.header
        if self.outbox is None:
            self.outbox = Outbox(wbxml_encoding=False)
            self.session_id = hdr.session_id
            self.device = hdr.source
        self.client_max_msg = hdr.max_msg_size or self.client_max_msg
        self.client_max_obj = hdr.max_obj_size or self.client_max_obj
        if self.ended or self.complete:
            return self._finished(msg)
        if self.user is None and not self._login(msg):
            self.ended = True
            return self._reply(msg, final=True, resp=False)
        status = m.Status(0, hdr.msg_id, 0, "SyncHdr", 200, hdr.target, hdr.source)
        self.outbox.statuses.appendleft(self._header_status(msg, status))
        states = {s.state for s in self.syncs.values()}
        for state in states:
            state.begin()
        try:
            needs = self._commands(msg)
            reply = self._next(msg, needs)
            for sync in self.syncs.values():
                sync.collection.flush()
            for state in {s.state for s in self.syncs.values()} | states:
                state.commit()
        except BaseException:
            for state in {s.state for s in self.syncs.values()} | states:
                state.rollback()
            raise
        return reply

    def _finished(self, msg: m.Message) -> m.Message:
        assert self.outbox is not None
        hdr = msg.header
        code = 200 if self.complete else 403
        self.outbox.status(
            m.Status(0, hdr.msg_id, 0, "SyncHdr", code, hdr.target, hdr.source)
        )
        return self._reply(msg, final=True, resp=False)

    def _header_status(self, msg: m.Message, status: m.Status) -> m.Status:
        if msg.header.msg_id == 1 and msg.header.cred is not None:
            nonce = auth.new_nonce()
            assert self.device is not None
            self.nonces.begin()
            self.nonces.set_nonce(self.device, nonce)
            self.nonces.commit()
            return status._replace(code=212, chal=auth.challenge(nonce))
        return status

    def _login(self, msg: m.Message) -> bool:
        """Check the first message's credentials; queue the refusal if not."""
        assert self.outbox is not None and self.device is not None
        hdr = msg.header
        login = auth.read_login(hdr.cred, hdr.source_name) if hdr.cred else None
        ok = False
        if login is not None:
            stored = self.nonces.nonce(self.device)
            secret = self.accounts.secret(login.user)
            if login.kind == auth.MD5 and stored is None:
                ok = False  # a device never seen: it must use a nonce of ours
            elif secret is None and login.kind == auth.BASIC and login.password:
                ok = self.accounts.check(login.user, login.password)
            else:
                ok = auth.verify(login, secret, auth.decode_nonce(stored))
        if ok and login is not None:
            self.user = login.user
            return True
        nonce = auth.new_nonce()
        self.nonces.begin()
        self.nonces.set_nonce(self.device, nonce)
        self.nonces.commit()
        code = 407 if hdr.cred is None else 401
        self.outbox.status(
            m.Status(
                0,
                hdr.msg_id,
                0,
                "SyncHdr",
                code,
                hdr.target,
                hdr.source,
                auth.challenge(nonce),
            )
        )
        return False

    # -- commands --------------------------------------------------------------
    def _commands(self, msg: m.Message) -> bool:
        needs = False
        for command in msg.commands:
            if isinstance(command, m.Status):
                self._on_status(command)
                continue
            needs = True
            if isinstance(command, m.Alert):
                self._on_alert(msg, command)
            elif isinstance(command, m.Exchange):
                self._on_exchange(msg, command)
            elif isinstance(command, m.Sync):
                self._on_sync(msg, command)
            elif isinstance(command, m.Map):
                self._on_map(msg, command)
            else:
                name = getattr(command, "name", type(command).__name__)
                self._status(msg, command.cmd_id, name, 406)
        return needs

    def _status(
        self, msg: m.Message, cmd_id: int, cmd: str, code: int, **refs: Any
    ) -> None:
        assert self.outbox is not None
        self.outbox.status(m.Status(0, msg.header.msg_id, cmd_id, cmd, code, **refs))

    def _on_status(self, status: m.Status) -> None:
        assert self.outbox is not None
        what = self.outbox.answered(status)
        if what is None:
            return
        _name, ref = what
        if (
            isinstance(ref, tuple)
            and len(ref) == 2
            and isinstance(ref[1], ServerChange)
        ):
            store, change = ref
            if status.code == 213:
                return
            sync = self.syncs.get(store)
            if sync is not None:
                sync.acknowledged(change, status.code)

    def _on_alert(self, msg: m.Message, alert: m.Alert) -> None:
        item = alert.items[0] if alert.items else m.Item()
        if alert.code == NEXT_MESSAGE:
            self._status(msg, alert.cmd_id, "Alert", 200)
            return
        name = (item.target or "").removeprefix("./")
        if alert.code not in _MODES:
            self._status(msg, alert.cmd_id, "Alert", 406, target_ref=item.target)
            return
        assert self.user is not None and self.device is not None
        try:
            opened = self.stores.open(self.user, name)
        except PermissionDenied:
            opened = None
            refused = 403  # the user has no grant on it
        else:
            refused = 404
        reader = opened is not None and getattr(opened[0], "read_only", False)
        if reader and alert.code in _FROM_CLIENT:
            opened, refused = None, 403  # a reader may only receive
        if opened is None:
            self._status(
                msg,
                alert.cmd_id,
                "Alert",
                refused,
                target_ref=item.target,
                source_ref=item.source,
            )
            return
        collection, state = opened
        peer = PeerKey(self.device, name)
        meta = item.meta or m.Meta()
        client_last, _server_last = state.anchors(peer)
        mode, code = alert.code, 200
        if mode == TWO_WAY and (client_last is None or meta.last != client_last):
            mode, code = SLOW, 508
        if mode in (TWO_WAY, 202, 204) and client_last is None:
            mode, code = SLOW, 508
        state.begin()
        sync = StoreSync(
            peer,
            self.user,
            collection,
            state,
            mode,
            policy=self.config.policy,
            ctype=self._ctype(item.source),
        )
        sync.client_source = item.source  # type: ignore[attr-defined]
        self.syncs[name] = sync
        server_next = m.new_anchor()
        self.anchors[name] = (meta.next, server_next)
        anchor_back = m.Item(data=Node("Anchor", (Node("Next", (), meta.next or ""),)))
        self._status(
            msg,
            alert.cmd_id,
            "Alert",
            code,
            target_ref=item.target,
            source_ref=item.source,
            items=(anchor_back,),
        )
        _, server_last = state.anchors(peer)
        back = m.Item(
            target=item.source,
            source=item.target,
            meta=m.Meta(
                last=server_last,
                next=server_next,
                max_obj_size=self.config.max_obj_size,
            ),
        )
        assert self.outbox is not None
        self.outbox.command(m.Alert(0, mode, (back,)))

    def _ctype(self, client_store: str | None) -> str:
        """What the client prefers to receive: SIF notes or plain text."""
        info = self.client_devinf
        store = info.store(client_store or "") if info and client_store else None
        if store is not None and store.rx_pref[0] == SIF:
            return SIF
        return TEXT

    def _on_exchange(self, msg: m.Message, x: m.Exchange) -> None:
        assert self.outbox is not None
        if x.name == "Get":
            self._status(msg, x.cmd_id, "Get", 200, target_ref=devinf.LOC)
            self.outbox.command(
                m.Exchange(
                    "Results",
                    0,
                    (m.Item(source=devinf.LOC, data=devinf.to_node(self._devinf())),),
                    m.Meta(type=m.DEVINF_TYPE),
                    msg_ref=msg.header.msg_id,
                    cmd_ref=x.cmd_id,
                )
            )
            return
        for item in x.items:
            if isinstance(item.data, Node) and item.data.tag == "DevInf":
                self.client_devinf = devinf.from_node(item.data)
        if x.name == "Put":
            self._status(msg, x.cmd_id, "Put", 200, source_ref=devinf.LOC)
        else:
            self._status(msg, x.cmd_id, x.name, 200)

    def _devinf(self) -> devinf.DevInf:
        stores = tuple(
            devinf.DataStore(
                source_ref=name,
                display_name=name,
                rx_pref=(TEXT, "1.0"),
                rx=((SIF, "1.1"),),
                tx_pref=(TEXT, "1.0"),
                tx=((SIF, "1.1"),),
            )
            for name in self.config.stores
        )
        return devinf.DevInf(dev_id=self.config.dev_id, datastores=stores)

    def _on_sync(self, msg: m.Message, sync_cmd: m.Sync) -> None:
        name = (sync_cmd.target or "").removeprefix("./")
        sync = self.syncs.get(name)
        code = 200 if sync is not None else 404
        self._status(
            msg,
            sync_cmd.cmd_id,
            "Sync",
            code,
            target_ref=sync_cmd.target,
            source_ref=sync_cmd.source,
        )
        for change in sync_cmd.changes:
            if not isinstance(change, m.Change) or sync is None:
                self._status(
                    msg,
                    change.cmd_id,
                    getattr(change, "name", "?"),
                    406 if sync is not None else 404,
                )
                continue
            self._on_change(msg, sync, change)

    def _on_change(self, msg: m.Message, sync: StoreSync, change: m.Change) -> None:
        ctype = change.meta.type if change.meta else None
        for item in change.items:
            luid = item.source or item.target or ""
            data = item.data if isinstance(item.data, bytes) else None
            size = (item.meta.size if item.meta else None) or 0
            held = len(sync.buffers.get(luid, b"")) + len(data or b"")
            if max(size, held) > self.config.max_obj_size:
                sync.buffers.pop(luid, None)
                self._status(msg, change.cmd_id, change.name, 413, source_ref=luid)
                continue
            if item.more_data:
                sync.buffers[luid] = sync.buffers.get(luid, b"") + (data or b"")
                self._status(msg, change.cmd_id, change.name, 213, source_ref=luid)
                continue
            if luid in sync.buffers:
                data = sync.buffers.pop(luid) + (data or b"")
            kind = (item.meta.type if item.meta else None) or ctype
            code = sync.apply(change.name, luid, data, kind)
            self._status(msg, change.cmd_id, change.name, code, source_ref=luid)

    def _on_map(self, msg: m.Message, map_cmd: m.Map) -> None:
        name = (map_cmd.target or "").removeprefix("./")
        sync = self.syncs.get(name)
        for guid, luid in map_cmd.items:
            if sync is not None:
                sync.mapped(guid, luid)
        self._status(
            msg,
            map_cmd.cmd_id,
            "Map",
            200 if sync else 404,
            target_ref=map_cmd.target,
            source_ref=map_cmd.source,
        )

    # -- what comes next -------------------------------------------------------
    def _next(self, msg: m.Message, needs_answer: bool) -> m.Message:
        assert self.outbox is not None
        if not msg.final:
            if self.outbox.has_commands:
                # the client answers a message of ours that was not the last
                # of its package (SyncEvolution sends statuses alone, no 222)
                return self._reply(msg, final=True)
            self._ask_next(msg)  # the client's package goes on
            return self._reply(msg, final=False)
        if self.phase == "init":
            self.phase = "sync"
            return self._reply(msg, final=True)
        if self.phase == "sync":
            self.phase = "sending"
            self._queue_changes()
            return self._reply(msg, final=True)
        if self.outbox.has_commands:
            return self._reply(msg, final=True)
        self._complete_session()
        return self._reply(msg, final=True)

    def _ask_next(self, msg: m.Message) -> None:
        assert self.outbox is not None
        item = m.Item(target=msg.header.source, source=self.config.url)
        self.outbox.command(m.Alert(0, NEXT_MESSAGE, (item,)))

    def _queue_changes(self) -> None:
        assert self.outbox is not None
        limit = self.client_max_obj
        for name, sync in self.syncs.items():
            sync.client_done()
            changes = sync.outgoing()
            if limit:
                # too big for the client: not sent (and sent again next time)
                changes = [c for c in changes if len(c.data or b"") <= limit]
            source = getattr(sync, "client_source", None)
            if not changes:
                self.outbox.command(m.Sync(0, source, name, (), 0))
                continue
            for change in changes:
                self.outbox.piece(
                    SyncPiece(
                        "Sync",
                        source,
                        name,
                        _wire(change),
                        (name, change),
                        number_of_changes=len(changes),
                    )
                )

    def _complete_session(self) -> None:
        for name, sync in self.syncs.items():
            client_next, server_next = self.anchors[name]
            sync.state.save_anchors(sync.peer, sync.user, client_next, server_next)
            sync.state.prune_blobs()
        self.complete = True

    def _reply(self, msg: m.Message, *, final: bool, resp: bool = True) -> m.Message:
        assert self.outbox is not None
        self.msg_id += 1
        header = m.Header(
            session_id=self.session_id,
            msg_id=self.msg_id,
            target=msg.header.source,
            source=self.config.url,
            target_name=msg.header.source_name,
            resp_uri=self.resp_uri if resp else None,
            max_msg_size=self.config.max_msg_size,
            max_obj_size=self.config.max_obj_size,
        )
        return self.outbox.next_message(header, self.client_max_msg, final=final)


def _wire(change: ServerChange) -> m.Change:
    meta = m.Meta(type=change.ctype)
    if change.op == "Delete":
        return m.Change("Delete", 0, (m.Item(target=change.luid),), meta)
    item = m.Item(target=change.luid, source=change.guid, data=change.data or b"")
    return m.Change(change.op, 0, (item,), meta)
