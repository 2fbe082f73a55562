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
from accord.replica import check_expected
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
    """A hub collection's files as notes (the server's ``Collection``).

    A message's writes are checked as they come, against the collection as
    it is once the message holds the collection's write lock (``bump``),
    and applied together by ``flush``, at one seq, as one batch of the
    hub's versioned writes: a note changed by someone else is refused
    (409 to the device) exactly as a stale write to the file API is.
    """

    def __init__(self, col: items.Collection, account: Account, run: str) -> None:
        self.col = col
        self.account = account
        self.run = run
        self.url = f"hub collection {col.name}"
        self._reset()

    def _reset(self) -> None:
        self._seq: int | None = None
        self._view: dict[str, Entry] = {}  # the collection, this message
        self._pending: list[items.Change] = []
        self._inline: dict[str, bytes] = {}
        self._data: dict[str, bytes] = {}  # written this message, by key

    def __getstate__(self) -> dict[str, object]:
        return {"col": self.col, "account": self.account, "run": self.run}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.url = f"hub collection {self.col.name}"
        self._reset()

    @property
    def read_only(self) -> bool:
        return self.col.access != "write"

    def listing(self) -> dict[str, Entry]:
        every = self._view if self._seq is not None else self._items()
        return {key: e for key, e in every.items() if e.kind == FILE}

    def _items(self) -> dict[str, Entry]:
        """Every live item (folders too: a note is not written over one)."""
        i = t.items
        rows = _conn().execute(
            sa.select(i).where(i.c.collection_id == self.col.id, i.c.alive)
        )
        return {row.key: items._entry(row) for row in rows}

    def read(self, key: str) -> bytes:
        if key in self._data:
            return self._data[key]
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
        view = self._locked()
        key = items.check_name(key)
        check_expected(view.get(key), expect, "")
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        if len(data) <= INLINE:
            self._inline[digest] = data
        else:
            hub = _hub()
            digest, _ = hub.blobs.put(io.BytesIO(data))
            hub.blobs.flush()
        like = Entry(key, FILE, len(data), time.time_ns(), 0o644, "", digest)
        self._pending.append(
            items.Change(
                "file", key, like, expect, self.run, digest=digest, size=len(data)
            )
        )
        entry = like._replace(version=str(self._seq))
        view[key] = entry
        self._data[key] = data
        return entry

    def delete(self, key: str, expect: Entry) -> None:
        view = self._locked()
        check_expected(view.get(key), expect, "")
        self._pending.append(items.Change("delete", key, expect=expect, trash=self.run))
        view.pop(key, None)
        self._data.pop(key, None)

    def _locked(self) -> dict[str, Entry]:
        """The collection as this message sees it, once it holds the
        collection's write lock (the first change of the message)."""
        if self.read_only:
            raise PermissionDenied(
                f"{self.account.user} may read {self.col.name!r} but not change it"
            )
        if self._seq is None:
            seq = items.bump(_conn(), self.col)
            self._view = self._items()
            self._seq = seq
        return self._view

    def flush(self) -> None:
        """Apply the message's writes (its transaction commits them)."""
        pending, seq, inline = self._pending, self._seq, self._inline
        self._reset()  # the next message looks at the collection afresh
        if not pending:
            return
        assert seq is not None
        results = items.apply_at(_conn(), self.account, self.col, seq, pending, inline)
        for result in results:
            if isinstance(result, Exception):
                raise result  # checked already: the whole message fails


class HubState(ServerState):
    """The server's memory of one collection's devices (``cid``), or of
    the devices' nonces (``cid`` None), in the hub's database.

    Transactions are the message's, so ``begin`` does nothing. Within a
    message the ids of the collection and what each device holds are read
    once, kept here and changed here; ``commit`` (at the end of the
    message, inside its transaction) writes back what changed in a few
    statements, and ``rollback`` forgets it.
    """

    def __init__(self, cid: int | None) -> None:  # no SQLite file of its own
        self.cid = cid
        self._forget()

    def __getstate__(self) -> dict[str, object]:
        return {"cid": self.cid}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._forget()

    def _forget(self) -> None:
        self._loaded: dict[str, str] | None = None  # guid -> key, as read
        self._keys: dict[str, str] = {}  # guid -> key, now
        self._guids: dict[str, str] = {}  # key -> guid, now
        self._seen_loaded: dict[str, dict[str, Seen]] = {}  # device -> as read
        self._seen: dict[str, dict[str, Seen]] = {}  # device -> guid -> now
        self._luids: dict[str, dict[str, str]] = {}  # device -> luid -> guid
        self._bases: dict[str, bytes] = {}

    def close(self) -> None:
        pass

    def begin(self) -> None:
        pass

    def commit(self) -> None:
        self._write_back()
        self._forget()

    def rollback(self) -> None:
        self._forget()

    # -- ids -------------------------------------------------------------------
    def _ids(self) -> None:
        if self._loaded is not None:
            return
        g = t.syncml_guids
        rows = _conn().execute(
            sa.select(g.c.guid, g.c.key).where(g.c.collection_id == self.cid)
        )
        self._loaded = {str(row.guid): str(row.key) for row in rows}
        self._keys = dict(self._loaded)
        self._guids = {key: guid for guid, key in self._keys.items()}

    def guid(self, key: str) -> str:
        self._ids()
        found = self._guids.get(key)
        if found is not None:
            return found
        guid = os.urandom(6).hex()  # short: a device may take only 64 chars
        self._guids[key] = guid
        self._keys[guid] = key
        return guid

    def key(self, guid: str) -> str | None:
        self._ids()
        return self._keys.get(guid)

    def rekey(self, guid: str, key: str) -> None:
        self._ids()
        other = self._guids.pop(key, None)
        if other is not None:
            self._keys.pop(other, None)
        self.forget_guid(guid)
        self._guids[key] = guid
        self._keys[guid] = key

    def forget_guid(self, guid: str) -> None:
        self._ids()
        key = self._keys.pop(guid, None)
        if key is not None:
            self._guids.pop(key, None)

    def keys(self) -> Iterator[tuple[str, str]]:
        self._ids()
        yield from list(self._keys.items())

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
    def _peer(self, table: sa.Table, device: str) -> sa.ColumnElement[bool]:
        return (table.c.collection_id == self.cid) & (table.c.device == device)

    def anchors(self, peer: PeerKey) -> tuple[str | None, str | None]:
        p = t.syncml_peers
        found = (
            _conn()
            .execute(
                sa.select(p.c.client_last, p.c.server_last).where(
                    self._peer(p, peer.device)
                )
            )
            .first()
        )
        return (found.client_last, found.server_last) if found else (None, None)

    def save_anchors(
        self, peer: PeerKey, user: str, client: str | None, server: str
    ) -> None:
        p = t.syncml_peers
        conn = _conn()
        conn.execute(p.delete().where(self._peer(p, peer.device)))
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
    def _held(self, device: str) -> dict[str, Seen]:
        held = self._seen.get(device)
        if held is not None:
            return held
        s = t.syncml_seen
        rows = _conn().execute(
            sa.select(s.c.guid, s.c.luid, s.c.version, s.c.digest, s.c.ctype).where(
                self._peer(s, device)
            )
        )
        loaded = {row.guid: Seen(*row) for row in rows}
        self._seen_loaded[device] = loaded
        self._seen[device] = held = dict(loaded)
        self._luids[device] = {v.luid: g for g, v in held.items() if v.luid}
        return held

    def _put(self, device: str, seen: Seen | None, guid: str) -> None:
        held = self._held(device)
        luids = self._luids[device]
        old = held.pop(guid, None)
        if old is not None and old.luid and luids.get(old.luid) == guid:
            del luids[old.luid]
        if seen is not None:
            held[guid] = seen
            if seen.luid:
                luids[seen.luid] = guid

    def seen(self, peer: PeerKey) -> dict[str, Seen]:
        return dict(self._held(peer.device))

    def by_luid(self, peer: PeerKey, luid: str) -> Seen | None:
        self._held(peer.device)
        guid = self._luids[peer.device].get(luid)
        return self._seen[peer.device].get(guid) if guid is not None else None

    def record(self, peer: PeerKey, seen: Seen, body: bytes | None = None) -> None:
        if body is not None:
            self._bases[seen.digest] = body
        self._put(peer.device, seen, seen.guid)

    def map(self, peer: PeerKey, guid: str, luid: str) -> None:
        held = self._held(peer.device).get(guid)
        if held is not None:
            self._put(peer.device, held._replace(luid=luid), guid)

    def unsee(self, peer: PeerKey, guid: str) -> None:
        self._put(peer.device, None, guid)

    def forget_peer(self, peer: PeerKey) -> None:
        self._held(peer.device).clear()
        self._luids[peer.device].clear()

    def base(self, digest: str) -> bytes | None:
        if digest in self._bases:
            return self._bases[digest]
        b = t.syncml_bases
        found = _conn().execute(sa.select(b.c.data).where(b.c.digest == digest)).first()
        return bytes(found.data) if found else None

    def prune_blobs(self) -> None:
        self._write_back()
        b, s = t.syncml_bases, t.syncml_seen
        _conn().execute(b.delete().where(b.c.digest.not_in(sa.select(s.c.digest))))

    # -- writing back ----------------------------------------------------------
    def _write_back(self) -> None:
        conn = _conn()
        if self._loaded is not None:
            self._write_ids(conn, self._loaded)
            self._loaded = dict(self._keys)
        for device, held in self._seen.items():
            self._write_seen(conn, device, self._seen_loaded[device], held)
            self._seen_loaded[device] = dict(held)
        if self._bases:
            rows = [{"digest": d, "data": data} for d, data in self._bases.items()]
            conn.execute(t.insert_new(conn, t.syncml_bases), rows)
            self._bases = {}

    def _write_ids(self, conn: sa.Connection, loaded: dict[str, str]) -> None:
        g = t.syncml_guids
        now = self._keys
        gone = [guid for guid, key in loaded.items() if now.get(guid) != key]
        new = [(guid, key) for guid, key in now.items() if loaded.get(guid) != key]
        for chunk in _chunks(gone):
            conn.execute(
                g.delete().where(g.c.collection_id == self.cid, g.c.guid.in_(chunk))
            )
        if new:
            rows = [{"collection_id": self.cid, "guid": u, "key": k} for u, k in new]
            conn.execute(g.insert(), rows)

    def _write_seen(
        self,
        conn: sa.Connection,
        device: str,
        loaded: dict[str, Seen],
        now: dict[str, Seen],
    ) -> None:
        s = t.syncml_seen
        gone = [guid for guid, seen in loaded.items() if now.get(guid) != seen]
        new = [seen for guid, seen in now.items() if loaded.get(guid) != seen]
        for chunk in _chunks(gone):
            conn.execute(s.delete().where(self._peer(s, device), s.c.guid.in_(chunk)))
        if new:
            rows = [
                {"collection_id": self.cid, "device": device, **seen._asdict()}
                for seen in new
            ]
            conn.execute(s.insert(), rows)


def _chunks(values: list[str], size: int = 500) -> list[list[str]]:
    return [values[start : start + size] for start in range(0, len(values), size)]
