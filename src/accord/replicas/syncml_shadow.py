"""The shadow of a SyncML server store: what accord's client knows it holds.

One SQLite file per server store (in accord's state folder). Each row is a
note: our id for it (the LUID the server maps), its name (the key accord's
engine sees), its body, and what is still to be sent (``pending``: Add,
Replace or Delete). The engine reads and writes the shadow; SyncML
sessions carry its pending changes to the server and the server's changes
into it.

Transactions follow the protocol: what a session receives is written in
one transaction committed only when the session completed (with the
anchors), so an interrupted session leaves the shadow as it was and the
next one repeats the work. The engine's writes are committed at each
``flush`` (its barrier before it records the archive), so a queued change
is durable before the archive says both sides agree; it is sent at the end
of the run, or by the next session if that fails.

Matching: a note the server adds whose body equals (line ends and trailing
blank lines aside) one of ours that the server may not have confirmed yet,
or one it resends during a refresh, is that note, not a new one: an
interrupted session or a refresh never makes a duplicate.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from accord.errors import PreconditionFailed
from accord.model import DIR, FILE, Entry, parent_of
from accord.replica import DIGEST, check_expected
from accord.syncml import notes
from accord.syncml.client import ClientState, Outgoing
from accord.syncml.devinf import DevInf, from_node
from accord.syncml.message import text_safe
from accord.syncml.store import open_db
from accord.syncml.tree import from_xml, to_xml

__all__ = ["Shadow"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    luid TEXT PRIMARY KEY, key TEXT UNIQUE, kind TEXT NOT NULL,
    data BLOB, ctype TEXT, extra BLOB, digest TEXT, norm TEXT,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, mode INTEGER NOT NULL,
    rev INTEGER NOT NULL, pending TEXT, seen INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS items_norm ON items (norm);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS own (name TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS trash (
    id INTEGER PRIMARY KEY, run TEXT NOT NULL, key TEXT NOT NULL, data BLOB,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL
);
"""
_COLUMNS = (
    "luid, key, kind, data, ctype, extra, digest, size, mtime_ns, mode, rev, pending"
)


def _digest(data: bytes) -> str:
    return f"{DIGEST}:{hashlib.sha256(data).hexdigest()}"


def _norm(data: bytes) -> str:
    return hashlib.sha256(notes.plain_text(data)).hexdigest()


class Shadow:
    """The client's copy of one server store (also the session's store)."""

    def __init__(self, path: Path, where: str) -> None:
        self.where = where
        self._lock = threading.RLock()
        self.db = open_db(path, _SCHEMA, "the SyncML client state")
        self.db.execute("BEGIN")
        self.content_type = notes.TEXT
        self.session_open = False

    def close(self) -> None:
        with self._lock:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            self.db.close()

    # -- transactions ----------------------------------------------------------
    def commit(self) -> None:
        """Make what the engine wrote durable (its flush)."""
        with self._lock:
            if self.db.in_transaction:
                self.db.execute("COMMIT")
            self.db.execute("BEGIN")

    def session_begin(self) -> None:
        self.commit()
        self.session_open = True

    def session_end(self, state: ClientState | None, nonce: str | None = None) -> None:
        """Commit what the session received (with ``state``), or roll it back
        (keeping the server's latest ``nonce``: each one is good once)."""
        with self._lock:
            self.session_open = False
            if state is None:
                self.db.execute("ROLLBACK")
                self.db.execute("BEGIN")
                old = self.state()
                self._save_state(old._replace(nonce=nonce, session=old.session + 1))
                self.commit()
                return
            self.db.execute("DELETE FROM items WHERE seen = 0")
            self._save_state(state)
            self.db.execute("COMMIT")
            self.db.execute("BEGIN")

    # -- per-store state -------------------------------------------------------
    def meta(self, name: str) -> str | None:
        row = self.db.execute(
            "SELECT value FROM meta WHERE name = ?", (name,)
        ).fetchone()
        return row[0] if row else None

    def set_meta(self, name: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))

    def device_id(self) -> str:
        """This client's device id for the server (made once, then kept)."""
        with self._lock:
            known = self.meta("device_id")
            if known:
                return known
            made = "accord-" + os.urandom(8).hex()
            self.set_meta("device_id", made)
            self.commit()
            return made

    def state(self) -> ClientState:
        raw = self.meta("state")
        if not raw:
            return ClientState()
        data = json.loads(raw)
        info = data.pop("server_devinf", None)
        devinf = from_node(from_xml(info.encode())) if info else None
        return ClientState(**data, server_devinf=devinf)

    def _save_state(self, state: ClientState) -> None:
        from accord.syncml.devinf import to_node

        data = state._asdict()
        info: DevInf | None = data.pop("server_devinf")
        data["server_devinf"] = to_xml(to_node(info)).decode() if info else None
        self.set_meta("state", json.dumps(data))

    def forget_anchors(self) -> None:
        """The next session is a slow sync (the anchors are gone)."""
        state = self.state()._replace(last_local=None, last_remote=None)
        self._save_state(state)
        self.commit()

    # -- what the engine sees --------------------------------------------------
    def entries(self) -> Iterator[Entry]:
        with self._lock:
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM items WHERE key IS NOT NULL"
            ).fetchall()
        folders: set[str] = set()
        for row in rows:
            entry = _entry(row)
            if entry.kind == DIR:
                folders.add(entry.key)
            yield entry
        implied = {parent_of(r[1]) for r in rows if "/" in r[1]}
        for folder in sorted(implied):
            while folder and folder not in folders:
                folders.add(folder)
                yield Entry(folder, DIR, 0, 0, 0o755, "d")
                folder = parent_of(folder)

    def row(self, key: str) -> tuple[Any, ...] | None:
        with self._lock:
            found: tuple[Any, ...] | None = self.db.execute(
                f"SELECT {_COLUMNS} FROM items WHERE key = ?", (key,)
            ).fetchone()
        return found

    def stat(self, key: str) -> Entry | None:
        row = self.row(key)
        if row is not None:
            return _entry(row)
        if self._is_implied_dir(key):
            return Entry(key, DIR, 0, 0, 0o755, "d")
        return None

    def _is_implied_dir(self, key: str) -> bool:
        prefix = key + "/"
        found = self.db.execute(
            "SELECT 1 FROM items WHERE key >= ? AND key < ? LIMIT 1",
            (prefix, key + "0"),
        ).fetchone()
        return found is not None

    def read(self, key: str) -> bytes:
        row = self.row(key)
        if row is None or row[2] != FILE:
            raise PreconditionFailed("the note is gone", where=self.where, key=key)
        return bytes(row[3] or b"")

    # -- what the engine writes ------------------------------------------------
    def put(
        self,
        key: str,
        data: bytes,
        like: Entry,
        expect: Entry | None,
        trash: str | None = None,
    ) -> Entry:
        with self._lock:
            row = self.row(key)
            current = _entry(row) if row is not None else self.stat(key)
            check_expected(current, expect, self.where)
            if trash is not None and row is not None and row[2] == FILE:
                self._to_trash(trash, row)
            if row is None:
                luid = os.urandom(5).hex()
                self.db.execute(
                    f"INSERT INTO items ({_COLUMNS}, norm) "
                    "VALUES (?, ?, 'file', ?, ?, NULL, ?, ?, ?, ?, 1, 'Add', ?)",
                    (
                        luid,
                        key,
                        data,
                        self.content_type,
                        _digest(data),
                        len(data),
                        like.mtime_ns,
                        like.mode,
                        _norm(data),
                    ),
                )
            else:
                luid = row[0]
                pending = "Add" if row[11] == "Add" else "Replace"
                self.db.execute(
                    "UPDATE items SET data = ?, digest = ?, norm = ?, size = ?, "
                    "mtime_ns = ?, mode = ?, rev = rev + 1, pending = ?, kind = 'file' "
                    "WHERE luid = ?",
                    (
                        data,
                        _digest(data),
                        _norm(data),
                        len(data),
                        like.mtime_ns,
                        like.mode,
                        pending,
                        luid,
                    ),
                )
            return self._entry_of(luid)

    def make_dir(self, key: str, expect: Entry | None) -> Entry:
        with self._lock:
            check_expected(self.stat(key), expect, self.where)
            self.db.execute(
                f"INSERT INTO items ({_COLUMNS}) "
                "VALUES (?, ?, 'dir', NULL, NULL, NULL, NULL, 0, 0, 493, 1, NULL)",
                ("dir:" + key, key),
            )
            return self._entry_of("dir:" + key)

    def touch(self, key: str, like: Entry, expect: Entry) -> Entry:
        with self._lock:
            row = self.row(key)
            check_expected(_entry(row) if row else None, expect, self.where)
            assert row is not None
            self.db.execute(
                "UPDATE items SET mtime_ns = ?, mode = ?, rev = rev + 1 WHERE luid = ?",
                (like.mtime_ns, like.mode, row[0]),
            )
            return self._entry_of(row[0])

    def remove(self, key: str, expect: Entry, trash: str | None) -> None:
        with self._lock:
            row = self.row(key)
            check_expected(_entry(row) if row else self.stat(key), expect, self.where)
            if row is None:
                return  # an implied folder: nothing is stored for it
            if trash is not None and row[2] == FILE:
                self._to_trash(trash, row)
            if row[2] == DIR or row[11] == "Add":
                self.db.execute("DELETE FROM items WHERE luid = ?", (row[0],))
            else:
                self.db.execute(
                    "UPDATE items SET key = NULL, pending = 'Delete', rev = rev + 1 "
                    "WHERE luid = ?",
                    (row[0],),
                )

    def _to_trash(self, run: str, row: tuple[Any, ...]) -> None:
        self.db.execute(
            "INSERT INTO trash (run, key, data, size, mtime_ns) VALUES (?, ?, ?, ?, ?)",
            (run, row[1], row[3], row[7], row[8]),
        )

    def rename(self, key: str, new_key: str, expect: Entry) -> Entry:
        with self._lock:
            row = self.row(key)
            check_expected(_entry(row) if row else None, expect, self.where)
            check_expected(self.stat(new_key), None, self.where)
            assert row is not None
            # a SIF note carries its name: the server must hear of it
            resend = row[4] == notes.SIF and row[11] is None
            self.db.execute(
                "UPDATE items SET key = ?, rev = rev + 1, pending = "
                "CASE WHEN ? THEN 'Replace' ELSE pending END WHERE luid = ?",
                (new_key, resend, row[0]),
            )
            return self._entry_of(row[0])

    def _entry_of(self, luid: str) -> Entry:
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM items WHERE luid = ?", (luid,)
        ).fetchone()
        return _entry(row)

    # -- accord's own small files ----------------------------------------------
    def own_create(self, name: str, data: bytes) -> bool:
        with self._lock:
            try:
                self.db.execute("INSERT INTO own VALUES (?, ?)", (name, data))
            except sqlite3.IntegrityError:
                return False
            self.commit()
            return True

    def own_read(self, name: str) -> bytes | None:
        row = self.db.execute("SELECT data FROM own WHERE name = ?", (name,)).fetchone()
        return bytes(row[0]) if row else None

    def own_delete(self, name: str) -> None:
        with self._lock:
            self.db.execute("DELETE FROM own WHERE name = ?", (name,))
            self.commit()

    def own_list(self, prefix: str) -> list[str]:
        rows = self.db.execute(
            "SELECT name FROM own WHERE name >= ? AND name < ? ORDER BY name",
            (prefix, prefix + "\U0010ffff"),
        ).fetchall()
        return [r[0] for r in rows]

    # -- the trash -------------------------------------------------------------
    def trash_rows(self) -> list[tuple[int, str, str, int, int]]:
        return self.db.execute(
            "SELECT id, run, key, size, mtime_ns FROM trash ORDER BY run, key, id"
        ).fetchall()

    def trash_data(self, ident: int) -> bytes:
        row = self.db.execute(
            "SELECT data FROM trash WHERE id = ?", (ident,)
        ).fetchone()
        return bytes(row[0] or b"") if row else b""

    def trash_drop(self, run: str | None = None, ident: int | None = None) -> int:
        with self._lock:
            if ident is not None:
                cur = self.db.execute("DELETE FROM trash WHERE id = ?", (ident,))
            else:
                cur = self.db.execute("DELETE FROM trash WHERE run = ?", (run,))
            self.commit()
            return cur.rowcount

    # -- the session's store (accord.syncml.client.ClientStore) ----------------
    def outgoing(self, everything: bool) -> Iterator[Outgoing]:
        """Pending changes, or every note (slow sync, refresh from the client)."""
        where = (
            "kind = 'file' AND key IS NOT NULL" if everything else "pending IS NOT NULL"
        )
        rows = self.db.execute(
            f"SELECT luid, key, data, ctype, extra, pending FROM items WHERE {where}"
        ).fetchall()
        for luid, key, data, ctype, extra, pending in rows:
            op = "Add" if everything else pending
            if op == "Delete":
                yield Outgoing("Delete", luid, None, ctype or self.content_type)
                continue
            raw = bytes(data or b"")
            ctype = self.content_type if text_safe(raw) else "application/octet-stream"
            yield Outgoing(op, luid, notes.to_wire(ctype, key, raw, extra), ctype)

    def confirmed(self, op: str, luid: str, code: int) -> None:
        ok = code < 300 or code in (418, 419)
        if not ok:
            return  # left pending: sent again next session
        if op == "Delete":
            self.db.execute(
                "DELETE FROM items WHERE luid = ? AND pending = 'Delete'", (luid,)
            )
        else:
            self.db.execute("UPDATE items SET pending = NULL WHERE luid = ?", (luid,))

    def refresh(self) -> None:
        """The server resends everything: what it does not resend goes."""
        self.db.execute("UPDATE items SET seen = 0 WHERE kind = 'file'")

    def received(
        self,
        op: str,
        guid: str | None,
        luid: str | None,
        data: bytes | None,
        ctype: str | None,
    ) -> tuple[int, str | None]:
        """One change from the server, into the shadow; (status, our id)."""
        with self._lock:
            row = None
            if luid is not None:
                row = self.db.execute(
                    f"SELECT {_COLUMNS} FROM items WHERE luid = ?", (luid,)
                ).fetchone()
            if op == "Delete":
                if row is None:
                    return 211, None  # not deleted: we do not have it
                self.db.execute("DELETE FROM items WHERE luid = ?", (row[0],))
                return 200, None
            note = notes.from_wire(ctype, data or b"")
            if _is_text(ctype):
                note.body = notes.tidy(note.body)
            if row is None and op == "Add":
                row = self._twin(note.body)
            if row is None:
                new = self._insert(luid, note, ctype)
                return 201, new
            self._update(row, note, ctype)
            return (200 if op == "Replace" else 201), row[0]

    def _twin(self, body: bytes) -> tuple[Any, ...] | None:
        """Our note with this body that the server may not know it has."""
        return self.db.execute(
            f"SELECT {_COLUMNS} FROM items WHERE norm = ? AND kind = 'file' "
            "AND (seen = 0 OR pending = 'Add') LIMIT 1",
            (_norm(body),),
        ).fetchone()

    def _insert(self, luid: str | None, note: notes.Note, ctype: str | None) -> str:
        luid = luid or os.urandom(5).hex()
        key = self._free_name(note, ctype)
        body = note.body
        self.db.execute(
            f"INSERT INTO items ({_COLUMNS}, norm) "
            "VALUES (?, ?, 'file', ?, ?, ?, ?, ?, ?, 420, 1, NULL, ?)",
            (
                luid,
                key,
                body,
                ctype,
                note.extra,
                _digest(body),
                len(body),
                time.time_ns(),
                _norm(body),
            ),
        )
        return luid

    def _update(
        self, row: tuple[Any, ...], note: notes.Note, ctype: str | None
    ) -> None:
        body = note.body
        key = row[1]
        if note.name is not None and key is not None:
            wanted = notes.safe_name(note.name)
            folder = parent_of(key)
            wanted = f"{folder}/{wanted}" if folder and "/" not in note.name else wanted
            if wanted != key and self.stat(wanted) is None:
                key = wanted
        same = row[3] is not None and bytes(row[3]) == body
        if key is None:  # deleted here meanwhile: the server's edit brings it back
            key = self._free_name(note, ctype)
        self.db.execute(
            "UPDATE items SET key = ?, data = ?, ctype = ?, extra = ?, digest = ?, "
            "norm = ?, size = ?, seen = 1, pending = CASE WHEN pending = 'Delete' "
            "THEN NULL ELSE pending END, rev = rev + ?, mtime_ns = "
            "CASE WHEN ? THEN mtime_ns ELSE ? END WHERE luid = ?",
            (
                key,
                body,
                ctype or row[4],
                note.extra,
                _digest(body),
                _norm(body),
                len(body),
                0 if same and key == row[1] else 1,
                same,
                time.time_ns(),
                row[0],
            ),
        )

    def _free_name(self, note: notes.Note, ctype: str | None) -> str:
        if note.name is not None:
            name = "/".join(
                notes.safe_name(part) for part in note.name.split("/") if part
            )
            name = name or "note"
        elif ctype in (None, notes.TEXT, "text/x-vnote") or (ctype or "").startswith(
            "text/"
        ):
            name = notes.name_from_text(note.body)
        else:
            name = notes.safe_name("item", "item") + _extension(ctype)
        return notes.unique_name(name, _Taken(self))


class _Taken:
    """Names in use in the shadow (for ``notes.unique_name``)."""

    def __init__(self, shadow: Shadow) -> None:
        self.shadow = shadow

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.shadow.stat(name) is not None


def _is_text(ctype: str | None) -> bool:
    return ctype is None or ctype in (notes.TEXT, notes.SIF, "text/x-vnote")


def _extension(ctype: str | None) -> str:
    known = {
        "text/x-vcalendar": ".vcs",
        "text/calendar": ".ics",
        "text/x-vcard": ".vcf",
        "text/vcard": ".vcf",
    }
    return known.get(ctype or "", ".bin")


def _entry(row: tuple[Any, ...]) -> Entry:
    luid, key, kind, _data, _ct, _x, digest, size, mtime_ns, mode, rev, _p = row
    if kind == DIR:
        return Entry(key, DIR, 0, 0, mode, "d")
    return Entry(key, FILE, size, mtime_ns, mode, f"{luid}:{rev}", digest)
