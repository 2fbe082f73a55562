"""What the hub's SyncML server works on, kept in the hub's own database.

The SyncML server role (``accord.syncml.server``) works through four
interfaces; here each is the hub:

* :class:`HubAccounts`: the hub's users. A Basic login is checked against
  the user's password (its scrypt hash); MD5 needs the user's
  ``b64(md5(user:password))``, which the hub keeps only for users whose
  password was set with ``--syncml-md5`` (see docs/hub.md).
* :class:`HubStores`: a SyncML store is a hub collection, named by the
  Alert's target (``notes``), under the user's grants: none, and the
  store is refused (403); read, and the device only receives.
* :class:`HubNotes`: the items of a collection as notes, written with the
  hub's own versioned writes (``items.apply_changes``: a stale write is
  refused; each change is in the history, by the user and node
  ``syncml``), content in the database or the blob store as any client's.
* :class:`HubState`: device ids (GUIDs), anchors, LUID maps, nonces and the
  bases of merges, in ``hub_syncml_*`` tables.

All of them work on the connection :func:`bound` gives them: one
transaction for each SyncML message, which commits the message's changes,
the state and the session together (or none of them). They hold no
connection themselves, so a session in flight can be stored between two
messages (pickled, in the database) and taken up by any server process.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import NamedTuple

import sqlalchemy as sa

from accord.errors import InvalidInput, NotFound, PermissionDenied
from accord.hub import accounts, items
from accord.hub import schema as t
from accord.hub.accounts import Account
from accord.hub.store import INLINE, Hub
from accord.model import FILE, Entry
from accord.syncml.store import PeerKey, Seen, ServerState

__all__ = [
    "NODE",
    "HubAccounts",
    "HubNotes",
    "HubState",
    "HubStores",
    "bound",
]

NODE = "syncml"  # the node named in the history for SyncML changes


class _Bound(NamedTuple):
    hub: Hub
    conn: sa.Connection


_current: ContextVar[_Bound] = ContextVar("accord_hub_syncml")


@contextlib.contextmanager
def bound(hub: Hub, conn: sa.Connection) -> Iterator[None]:
    """Let the SyncML objects work on ``conn`` (one message's transaction)."""
    token = _current.set(_Bound(hub, conn))
    try:
        yield
    finally:
        _current.reset(token)


def _conn() -> sa.Connection:
    return _current.get().conn


def _hub() -> Hub:
    return _current.get().hub


class _Within:
    """An engine whose transactions are savepoints of the bound connection
    (``items.apply_changes`` takes an engine)."""

    @contextlib.contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        conn = _conn()
        with conn.begin_nested():
            yield conn


def _account(conn: sa.Connection, user: str) -> Account | None:
    row = accounts.find_user(conn, user)
    if row is None:
        return None
    return Account(row.id, row.name, bool(row.admin), NODE, NODE)


class HubAccounts:
    """The hub's users, as SyncML logins."""

    def secret(self, user: str) -> bytes | None:
        s, u = t.syncml_secrets, t.users
        row = (
            _conn()
            .execute(
                sa.select(s.c.secret)
                .join(u, u.c.id == s.c.user_id)
                .where(u.c.name == user)
            )
            .first()
        )
        return row.secret.encode() if row else None

    def check(self, user: str, password: str) -> bool:
        return accounts.check_password(_conn(), user, password) is not None


class HubStores:
    """Hub collections as SyncML stores, under the users' grants."""

    def open(self, user: str, name: str) -> tuple[HubNotes, HubState] | None:
        """The collection ``name`` for ``user``; None when there is no such
        store; PermissionDenied when the user has no grant on it."""
        conn = _conn()
        account = _account(conn, user)
        if account is None:
            raise PermissionDenied(f"no user {user!r}")
        try:
            items.check_collection_name(name)
        except InvalidInput:
            return None
        col = items.collection(conn, account, name, create=True)
        run = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-syncml"
        return HubNotes(col, account, run), HubState(col.id)


class HubNotes:
    """A hub collection's files as notes (the server's ``Collection``)."""

    def __init__(self, col: items.Collection, account: Account, run: str) -> None:
        self.col = col
        self.account = account
        self.run = run
        self.url = f"hub collection {col.name}"

    @property
    def read_only(self) -> bool:
        return self.col.access != "write"

    def listing(self) -> dict[str, Entry]:
        i = t.items
        rows = _conn().execute(
            sa.select(i).where(
                i.c.collection_id == self.col.id, i.c.alive, i.c.kind == FILE
            )
        )
        return {row.key: items._entry(row) for row in rows}

    def read(self, key: str) -> bytes:
        conn = _conn()
        entry = items.stat(conn, self.col.id, key)
        if entry is None or not entry.digest:
            raise NotFound("no such note", key=key)
        row = conn.execute(
            sa.select(t.inline.c.data).where(t.inline.c.digest == entry.digest)
        ).first()
        if row is not None:
            return bytes(row.data)
        with _hub().blobs.open(entry.digest) as stream:
            return stream.read()

    def write(self, key: str, data: bytes, expect: Entry | None) -> Entry:
        self._writable()
        key = items.check_name(key)
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        inline = {digest: data} if len(data) <= INLINE else None
        if inline is None:
            hub = _hub()
            digest, _ = hub.blobs.put(io.BytesIO(data))
            hub.blobs.flush()
        like = Entry(key, FILE, len(data), time.time_ns(), 0o644, "", digest)
        change = items.Change(
            "file", key, like, expect, self.run, digest=digest, size=len(data)
        )
        result = self._apply(change, inline)
        assert isinstance(result, Entry)
        return result

    def delete(self, key: str, expect: Entry) -> None:
        self._writable()
        self._apply(items.Change("delete", key, expect=expect, trash=self.run))

    def _writable(self) -> None:
        if self.read_only:
            raise PermissionDenied(
                f"{self.account.user} may read {self.col.name!r} but not change it"
            )

    def _apply(
        self, change: items.Change, inline: dict[str, bytes] | None = None
    ) -> Entry | None:
        (result,) = items.apply_changes(
            _Within(),  # type: ignore[arg-type]
            self.account,
            self.col,
            [change],
            inline,
        )
        if isinstance(result, Exception):
            raise result
        return result

    def flush(self) -> None:
        """Nothing: the message's transaction commits the writes."""


class HubState(ServerState):
    """The server's memory of one collection's devices (``cid``), or of
    the devices' nonces (``cid`` None), in the hub's database. Transactions
    are the message's: ``begin``, ``commit`` and ``rollback`` do nothing."""

    def __init__(self, cid: int | None) -> None:  # no SQLite file of its own
        self.cid = cid

    def close(self) -> None:
        pass

    def begin(self) -> None:
        pass

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    # -- ids -------------------------------------------------------------------
    def guid(self, key: str) -> str:
        g = t.syncml_guids
        conn = _conn()
        found = conn.execute(
            sa.select(g.c.guid).where(g.c.collection_id == self.cid, g.c.key == key)
        ).first()
        if found:
            return str(found.guid)
        guid = os.urandom(6).hex()
        conn.execute(g.insert().values(collection_id=self.cid, guid=guid, key=key))
        return guid

    def key(self, guid: str) -> str | None:
        g = t.syncml_guids
        found = (
            _conn()
            .execute(
                sa.select(g.c.key).where(
                    g.c.collection_id == self.cid, g.c.guid == guid
                )
            )
            .first()
        )
        return str(found.key) if found else None

    def rekey(self, guid: str, key: str) -> None:
        g = t.syncml_guids
        conn = _conn()
        conn.execute(
            g.delete().where(
                g.c.collection_id == self.cid, (g.c.key == key) | (g.c.guid == guid)
            )
        )
        conn.execute(g.insert().values(collection_id=self.cid, guid=guid, key=key))

    def forget_guid(self, guid: str) -> None:
        g = t.syncml_guids
        _conn().execute(
            g.delete().where(g.c.collection_id == self.cid, g.c.guid == guid)
        )

    # -- nonces ----------------------------------------------------------------
    def nonce(self, device: str) -> str | None:
        n = t.syncml_nonces
        found = (
            _conn().execute(sa.select(n.c.nonce).where(n.c.device == device)).first()
        )
        return str(found.nonce) if found else None

    def set_nonce(self, device: str, nonce: str) -> None:
        n = t.syncml_nonces
        conn = _conn()
        conn.execute(n.delete().where(n.c.device == device))
        conn.execute(n.insert().values(device=device, nonce=nonce))

    # -- anchors ---------------------------------------------------------------
    def _peer(self, table: sa.Table, peer: PeerKey) -> sa.ColumnElement[bool]:
        return (table.c.collection_id == self.cid) & (table.c.device == peer.device)

    def anchors(self, peer: PeerKey) -> tuple[str | None, str | None]:
        p = t.syncml_peers
        found = (
            _conn()
            .execute(
                sa.select(p.c.client_last, p.c.server_last).where(self._peer(p, peer))
            )
            .first()
        )
        return (found.client_last, found.server_last) if found else (None, None)

    def save_anchors(
        self, peer: PeerKey, user: str, client: str | None, server: str
    ) -> None:
        p = t.syncml_peers
        conn = _conn()
        conn.execute(p.delete().where(self._peer(p, peer)))
        conn.execute(
            p.insert().values(
                collection_id=self.cid,
                device=peer.device,
                user=user,
                client_last=client,
                server_last=server,
            )
        )

    # -- what a device holds ---------------------------------------------------
    def _seen_rows(self, where: sa.ColumnElement[bool]) -> list[Seen]:
        s = t.syncml_seen
        rows = _conn().execute(
            sa.select(s.c.guid, s.c.luid, s.c.version, s.c.digest, s.c.ctype).where(
                where
            )
        )
        return [Seen(*row) for row in rows]

    def seen(self, peer: PeerKey) -> dict[str, Seen]:
        return {s.guid: s for s in self._seen_rows(self._peer(t.syncml_seen, peer))}

    def by_luid(self, peer: PeerKey, luid: str) -> Seen | None:
        s = t.syncml_seen
        found = self._seen_rows(self._peer(s, peer) & (s.c.luid == luid))
        return found[0] if found else None

    def record(self, peer: PeerKey, seen: Seen, body: bytes | None = None) -> None:
        s = t.syncml_seen
        conn = _conn()
        if body is not None:
            conn.execute(
                t.insert_new(conn, t.syncml_bases),
                [{"digest": seen.digest, "data": body}],
            )
        conn.execute(s.delete().where(self._peer(s, peer) & (s.c.guid == seen.guid)))
        conn.execute(
            s.insert().values(
                collection_id=self.cid, device=peer.device, **seen._asdict()
            )
        )

    def map(self, peer: PeerKey, guid: str, luid: str) -> None:
        s = t.syncml_seen
        _conn().execute(
            s.update().where(self._peer(s, peer) & (s.c.guid == guid)).values(luid=luid)
        )

    def unsee(self, peer: PeerKey, guid: str) -> None:
        s = t.syncml_seen
        _conn().execute(s.delete().where(self._peer(s, peer) & (s.c.guid == guid)))

    def forget_peer(self, peer: PeerKey) -> None:
        s = t.syncml_seen
        _conn().execute(s.delete().where(self._peer(s, peer)))

    def base(self, digest: str) -> bytes | None:
        b = t.syncml_bases
        found = _conn().execute(sa.select(b.c.data).where(b.c.digest == digest)).first()
        return bytes(found.data) if found else None

    def prune_blobs(self) -> None:
        b, s = t.syncml_bases, t.syncml_seen
        _conn().execute(b.delete().where(b.c.digest.not_in(sa.select(s.c.digest))))

    def keys(self) -> Iterator[tuple[str, str]]:
        g = t.syncml_guids
        rows = _conn().execute(
            sa.select(g.c.guid, g.c.key).where(g.c.collection_id == self.cid)
        )
        for row in rows:
            yield str(row.guid), str(row.key)
