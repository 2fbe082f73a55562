"""What accord's SyncML server syncs, and what it remembers about its peers.

* :class:`Collection` is the storage interface: notes under keys, read,
  written and deleted with the version they are expected to replace.
  :class:`ReplicaCollection` puts it over any accord place (a local
  folder; the hub has its own, ``accord.hub.syncml_state``), so notes are
  written with the place's atomic writes (made durable by ``flush`` before
  a peer is told), deleted into its trash, and a note changed behind the
  server's back is never overwritten.
* :class:`ServerState` is one SQLite file per collection: the server id
  (GUID) of each key, and per peer (device and store) its anchors, its ids
  (the Map), and what it was last known to hold of each note (version,
  digest, and the body as a base for merges). Item rows are committed as
  each message is processed, before its answer goes out; anchors only when
  a session completes.
* :class:`Accounts` says who may sync: accord's server keeps for a user
  only ``b64(md5(user:password))``, which checks both Basic and MD5
  credentials.
"""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple, Protocol

from accord.errors import StateError
from accord.model import DIR, FILE, Entry, parent_of
from accord.replica import DIGEST, Replica
from accord.syncml import auth

__all__ = [
    "Accounts",
    "Collection",
    "FolderStore",
    "PeerKey",
    "ReplicaCollection",
    "Seen",
    "ServerState",
    "SingleUser",
    "Stores",
    "open_db",
]


class Collection(Protocol):
    """Notes under keys, as the server syncs them."""

    url: str

    def listing(self) -> dict[str, Entry]:
        """Every note now, by key (files only)."""
        ...

    def read(self, key: str) -> bytes: ...

    def write(self, key: str, data: bytes, expect: Entry | None) -> Entry:
        """Put ``data`` at ``key``; ``expect`` is what must be there now."""
        ...

    def delete(self, key: str, expect: Entry) -> None: ...

    def flush(self) -> None:
        """Make the writes so far durable (before the peer hears of them)."""
        ...


class ReplicaCollection:
    """A :class:`Collection` over an accord place (a folder, a hub space)."""

    def __init__(self, replica: Replica, run: str | None = None) -> None:
        self.replica = replica
        self.url = replica.url
        self.run = run or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-syncml"

    def listing(self) -> dict[str, Entry]:
        return {e.key: e for e in self.replica.entries() if e.kind == FILE}

    def read(self, key: str) -> bytes:
        with self.replica.open_read(key) as stream:
            return stream.read()

    def write(self, key: str, data: bytes, expect: Entry | None) -> Entry:
        self._parents(key)
        digest = f"{DIGEST}:{hashlib.sha256(data).hexdigest()}"
        like = Entry(key, FILE, len(data), time.time_ns(), 0o644, "", digest)
        return self.replica.write(
            key, io.BytesIO(data), like=like, expect=expect, trash=self.run
        )

    def _parents(self, key: str) -> None:
        folder = parent_of(key)
        missing = []
        while folder and self.replica.stat(folder) is None:
            missing.append(folder)
            folder = parent_of(folder)
        for name in reversed(missing):
            self.replica.make_dir(name, like=Entry(name, DIR, 0, 0, 0o755), expect=None)

    def delete(self, key: str, expect: Entry) -> None:
        self.replica.delete(key, expect=expect, trash=self.run)

    def flush(self) -> None:
        self.replica.flush()


class Stores(Protocol):
    """The stores a server offers: a store name (the Alert's target) for a
    user, or None when there is none (or the user may not sync it)."""

    def open(self, user: str, name: str) -> tuple[Collection, ServerState] | None: ...


class Accounts(Protocol):
    """Who may log in. An account store that keeps only its own password
    hashes (the hub) answers ``check`` for Basic and None from ``secret``;
    MD5 then needs it to keep ``b64(md5(user:password))`` as well."""

    def secret(self, user: str) -> bytes | None:
        """``b64(md5(user:password))`` of ``user``, or None: not known."""
        ...

    def check(self, user: str, password: str) -> bool:
        """True when ``password`` is ``user``'s (a Basic login)."""
        ...


class SingleUser:
    """One account (``accord syncml serve``)."""

    def __init__(self, user: str, password: str) -> None:
        self.user = user
        self._secret = auth.secret(user, password)

    def secret(self, user: str) -> bytes | None:
        return self._secret if user == self.user else None

    def check(self, user: str, password: str) -> bool:
        return auth.verify(
            auth.Login(auth.BASIC, user, password, None), self.secret(user), b""
        )


class PeerKey(NamedTuple):
    device: str
    store: str


class Seen(NamedTuple):
    """What a peer was last known to hold of one note."""

    guid: str
    luid: str | None
    version: str  # the collection's version of the note then
    digest: str  # of the body the peer holds
    ctype: str | None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS guids (guid TEXT PRIMARY KEY, key TEXT UNIQUE);
CREATE TABLE IF NOT EXISTS peers (
    device TEXT NOT NULL, store TEXT NOT NULL, user TEXT, nonce TEXT,
    client_last TEXT, server_last TEXT, devinf TEXT,
    PRIMARY KEY (device, store)
);
CREATE TABLE IF NOT EXISTS nonces (device TEXT PRIMARY KEY, nonce TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen (
    device TEXT NOT NULL, store TEXT NOT NULL, guid TEXT NOT NULL, luid TEXT,
    version TEXT NOT NULL, digest TEXT NOT NULL, ctype TEXT,
    PRIMARY KEY (device, store, guid)
);
CREATE INDEX IF NOT EXISTS seen_luid ON seen (device, store, luid);
CREATE TABLE IF NOT EXISTS blobs (digest TEXT PRIMARY KEY, data BLOB NOT NULL);
"""


def open_db(path: Path, schema: str, what: str) -> sqlite3.Connection:
    """A SQLite file for accord's SyncML state: WAL, every commit durable,
    transactions begun and committed by the caller."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(schema)
    except sqlite3.Error as exc:
        raise StateError(f"cannot open {what} {path}: {exc}") from exc
    return db


def body_digest(data: bytes) -> str:
    return f"{DIGEST}:{hashlib.sha256(data).hexdigest()}"


class ServerState:
    """The server's memory of one collection and its peers (SQLite)."""

    def __init__(self, path: Path) -> None:
        self.lock = threading.RLock()
        self.db = open_db(path, _SCHEMA, "the SyncML server state")

    def close(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        self.db.close()

    def begin(self) -> None:
        """Start one message's changes (committed together by ``commit``)."""
        if not self.db.in_transaction:
            self.db.execute("BEGIN")

    def commit(self) -> None:
        if self.db.in_transaction:
            self.db.execute("COMMIT")

    def rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    # -- ids -------------------------------------------------------------------
    def guid(self, key: str) -> str:
        """The server id of ``key`` (made on first sight; short: a peer may
        take only 64 characters)."""
        with self.lock:
            row = self.db.execute(
                "SELECT guid FROM guids WHERE key = ?", (key,)
            ).fetchone()
            if row:
                return str(row[0])
            guid = os.urandom(6).hex()
            self.db.execute("INSERT INTO guids VALUES (?, ?)", (guid, key))
            return guid

    def key(self, guid: str) -> str | None:
        row = self.db.execute(
            "SELECT key FROM guids WHERE guid = ?", (guid,)
        ).fetchone()
        return str(row[0]) if row else None

    def rekey(self, guid: str, key: str) -> None:
        with self.lock:
            self.db.execute(
                "DELETE FROM guids WHERE key = ? AND guid != ?", (key, guid)
            )
            self.db.execute("INSERT OR REPLACE INTO guids VALUES (?, ?)", (guid, key))

    def forget_guid(self, guid: str) -> None:
        self.db.execute("DELETE FROM guids WHERE guid = ?", (guid,))

    # -- nonces (per device, each good for one login) --------------------------
    def nonce(self, device: str) -> str | None:
        row = self.db.execute(
            "SELECT nonce FROM nonces WHERE device = ?", (device,)
        ).fetchone()
        return str(row[0]) if row else None

    def set_nonce(self, device: str, nonce: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO nonces VALUES (?, ?)", (device, nonce))

    # -- anchors ---------------------------------------------------------------
    def anchors(self, peer: PeerKey) -> tuple[str | None, str | None]:
        row = self.db.execute(
            "SELECT client_last, server_last FROM peers WHERE device = ? AND store = ?",
            peer,
        ).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def save_anchors(
        self, peer: PeerKey, user: str, client: str | None, server: str
    ) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO peers (device, store, user, client_last, server_last) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (device, store) DO UPDATE SET "
                "user = excluded.user, client_last = excluded.client_last, "
                "server_last = excluded.server_last",
                (*peer, user, client, server),
            )

    # -- what a peer holds -----------------------------------------------------
    def seen(self, peer: PeerKey) -> dict[str, Seen]:
        rows = self.db.execute(
            "SELECT guid, luid, version, digest, ctype FROM seen "
            "WHERE device = ? AND store = ?",
            peer,
        ).fetchall()
        return {row[0]: Seen(*row) for row in rows}

    def by_luid(self, peer: PeerKey, luid: str) -> Seen | None:
        row = self.db.execute(
            "SELECT guid, luid, version, digest, ctype FROM seen "
            "WHERE device = ? AND store = ? AND luid = ?",
            (*peer, luid),
        ).fetchone()
        return Seen(*row) if row else None

    def record(self, peer: PeerKey, seen: Seen, body: bytes | None = None) -> None:
        """The peer holds this version now (committed at once)."""
        with self.lock:
            if body is not None:
                self.db.execute(
                    "INSERT OR IGNORE INTO blobs VALUES (?, ?)", (seen.digest, body)
                )
            self.db.execute(
                "INSERT OR REPLACE INTO seen VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*peer, *seen),
            )

    def map(self, peer: PeerKey, guid: str, luid: str) -> None:
        with self.lock:
            self.db.execute(
                "UPDATE seen SET luid = ? WHERE device = ? AND store = ? AND guid = ?",
                (luid, *peer, guid),
            )

    def unsee(self, peer: PeerKey, guid: str) -> None:
        self.db.execute(
            "DELETE FROM seen WHERE device = ? AND store = ? AND guid = ?",
            (*peer, guid),
        )

    def forget_peer(self, peer: PeerKey) -> None:
        """A refresh: the peer's copy starts again from nothing."""
        with self.lock:
            self.db.execute("DELETE FROM seen WHERE device = ? AND store = ?", peer)

    def base(self, digest: str) -> bytes | None:
        row = self.db.execute(
            "SELECT data FROM blobs WHERE digest = ?", (digest,)
        ).fetchone()
        return bytes(row[0]) if row else None

    def prune_blobs(self) -> None:
        """Drop bases no peer refers to any more."""
        with self.lock:
            self.db.execute(
                "DELETE FROM blobs WHERE digest NOT IN (SELECT digest FROM seen)"
            )

    def keys(self) -> Iterator[tuple[str, str]]:
        yield from self.db.execute("SELECT guid, key FROM guids")


class FolderStore:
    """One store (``notes``) kept in one folder, for one account's users
    (``accord syncml serve``). Its state lives in accord's state folder."""

    def __init__(
        self, folder: str, name: str = "notes", state_dir: Path | None = None
    ) -> None:
        from accord.config import default_state_dir
        from accord.registry import open_replica

        self.name = name
        self.replica = open_replica(folder)
        self.replica.open(create=False)
        where = (state_dir or default_state_dir()) / "syncml-server"
        digest = hashlib.sha256(self.replica.identity.encode()).hexdigest()[:24]
        self.state = ServerState(where / f"{digest}.db")
        self.collection = ReplicaCollection(self.replica)

    def open(self, user: str, name: str) -> tuple[Collection, ServerState] | None:
        if name != self.name:
            return None
        return self.collection, self.state

    def close(self) -> None:
        self.state.close()
        self.replica.close()
