"""The server's side of one store in one session: the peer's changes in,
conflicts settled, the server's changes out.

A peer's change to a note the server also changed since that peer last
saw it is a conflict, settled by the server's policy:

=================  ==========================================================
client / server    outcome (status to the client)
=================  ==========================================================
mod / mod          the bodies are merged line by line when the edits touch
                   different lines, whatever the policy (207, the merge goes
                   back to the client); otherwise ``keep-both`` (the
                   default): the server's note
                   keeps its name, the client's is kept beside it as a
                   conflict copy and both go to the client (209);
                   ``client-wins`` (208); ``server-wins`` (419, the
                   server's version goes back)
mod / del          the modification is kept: the note is made again (208);
                   ``server-wins``: 419, the delete goes to the client
del / mod          the delete is refused and the note sent again as new
                   (419); ``client-wins``: deleted (200)
del / del          nothing to do (200)
=================  ==========================================================

In a slow sync (no anchors, or a 508) nothing is known of what changed: a
client note is matched to the server's by the peer's ids, else by its body
(line ends and trailing blank lines aside), so a first sync with notes on
both sides makes no duplicate; the server's notes the client did not send
go to it. A refresh from the client replaces the store's notes (what the
client does not send is deleted, into the place's trash); a refresh from
the server sends every note.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from accord.errors import AccordError, PermissionDenied, PreconditionFailed
from accord.keys import conflict_name
from accord.model import Entry
from accord.syncml import merge, notes
from accord.syncml.message import text_safe
from accord.syncml.store import Collection, PeerKey, Seen, ServerState, body_digest

__all__ = ["POLICIES", "ServerChange", "StoreSync"]

POLICIES = ("keep-both", "client-wins", "server-wins")
_OPAQUE = "application/octet-stream"
TWO_WAY, SLOW = 200, 201
ONE_WAY_FROM_CLIENT, REFRESH_FROM_CLIENT = 202, 203
ONE_WAY_FROM_SERVER, REFRESH_FROM_SERVER = 204, 205


class ServerChange(NamedTuple):
    """One change the server sends a peer."""

    op: str  # Add, Replace, Delete
    guid: str
    luid: str | None
    data: bytes | None
    ctype: str
    version: str
    digest: str


class StoreSync:
    """One store, one peer, one session."""

    def __init__(
        self,
        peer: PeerKey,
        user: str,
        collection: Collection,
        state: ServerState,
        mode: int,
        *,
        policy: str = "keep-both",
        ctype: str = notes.TEXT,
    ) -> None:
        self.peer = peer
        self.user = user
        self.collection = collection
        self.state = state
        self.mode = mode
        self.policy = policy
        self.ctype = ctype
        self.listing = collection.listing()
        self.seen = state.seen(peer)
        self.claimed: set[str] = set()  # guids the client spoke for this session
        self.followups: list[ServerChange] = []
        self.counts: dict[str, int] = {}
        self.buffers: dict[str, bytes] = {}
        self._twins: dict[str, list[str]] | None = None
        if mode == REFRESH_FROM_SERVER:
            state.forget_peer(peer)
            self.seen = {}

    # -- the client's changes --------------------------------------------------
    def apply(self, op: str, luid: str, data: bytes | None, ctype: str | None) -> int:
        """One change from the client; its status code."""
        self.counts[op] = self.counts.get(op, 0) + 1
        if self.mode in (ONE_WAY_FROM_SERVER, REFRESH_FROM_SERVER):
            return 406  # changes from the client are not taken in this mode
        seen = self.state.by_luid(self.peer, luid)
        try:
            if op == "Delete":
                return self._delete(seen)
            note = notes.from_wire(ctype, data or b"")
            if seen is None or (self.state.key(seen.guid) is None and self._slow):
                return self._add(luid, note, ctype)
            return self._replace(seen, luid, note, ctype)
        except PreconditionFailed:
            return 409  # changed behind our back meanwhile: the next session
        except PermissionDenied:
            return 403  # the user may only receive
        except AccordError:
            return 500

    @property
    def _slow(self) -> bool:
        return self.mode in (SLOW, REFRESH_FROM_CLIENT)

    def _entry(self, guid: str) -> tuple[str | None, Entry | None]:
        key = self.state.key(guid)
        return key, self.listing.get(key) if key is not None else None

    def _add(self, luid: str, note: notes.Note, ctype: str | None) -> int:
        twin = self._twin(note.body)
        if twin is not None:
            key, entry = twin
            guid = self.state.guid(key)
            self.claimed.add(guid)
            self._saw(guid, luid, entry, self.collection.read(key), ctype)
            return 201
        key = self._new_name(note, ctype, luid)
        entry = self._write(key, note.body, None)
        guid = self.state.guid(key)
        self.claimed.add(guid)
        self._saw(guid, luid, entry, note.body, ctype)
        return 201

    def _twin(self, body: bytes) -> tuple[str, Entry] | None:
        """A server note with this body the peer is not known to hold (each
        such note is read once per session, into an index by content)."""
        if self._twins is None:
            self._twins = {}
            for key in self.listing:
                guid = self.state.guid(key)
                if guid in self.claimed or (guid in self.seen and not self._slow):
                    continue
                digest = _text_digest(self.collection.read(key))
                self._twins.setdefault(digest, []).append(key)
        for key in self._twins.get(_text_digest(body), []):
            entry = self.listing.get(key)
            if entry is not None and self.state.guid(key) not in self.claimed:
                return key, entry
        return None

    def _replace(
        self, seen: Seen, luid: str, note: notes.Note, ctype: str | None
    ) -> int:
        guid = seen.guid
        self.claimed.add(guid)
        key, entry = self._entry(guid)
        if entry is None or key is None:
            return self._remake(seen, luid, note, ctype, key)
        current = self.collection.read(key)
        key = self._renamed(key, note, entry)
        if notes.same_text(current, note.body) and key == self.state.key(guid):
            self._saw(guid, luid, entry, current, ctype)
            return 200
        changed_here = entry.version != seen.version
        if not changed_here:
            entry = self._put(guid, key, note.body, entry)
            self._saw(guid, luid, entry, note.body, ctype)
            return 200
        return self._conflict(seen, luid, key, entry, current, note, ctype)

    def _renamed(self, key: str, note: notes.Note, entry: Entry) -> str:
        """A SIF note whose subject changed is renamed (if the name is free)."""
        if note.name is None:
            return key
        wanted = notes.safe_name(note.name)
        if wanted == key or wanted in self.listing:
            return key
        return wanted

    def _put(self, guid: str, key: str, body: bytes, entry: Entry) -> Entry:
        old = self.state.key(guid)
        if old is not None and old != key:
            self.collection.delete(old, entry)
            self.listing.pop(old, None)
            self.state.rekey(guid, key)
            return self._write(key, body, None)
        return self._write(key, body, entry)

    def _remake(
        self,
        seen: Seen,
        luid: str,
        note: notes.Note,
        ctype: str | None,
        key: str | None,
    ) -> int:
        """The client changed a note the server deleted: the change wins,
        unless the server's policy is server-wins."""
        if self.policy == "server-wins" and not self._slow:
            self.followups.append(self._change("Delete", seen.guid, luid))
            return 419
        name = (
            key
            if key and key not in self.listing
            else self._new_name(note, ctype, luid)
        )
        entry = self._write(name, note.body, None)
        self.state.rekey(seen.guid, name)
        self._saw(seen.guid, luid, entry, note.body, ctype)
        return 208

    def _conflict(
        self,
        seen: Seen,
        luid: str,
        key: str,
        entry: Entry,
        current: bytes,
        note: notes.Note,
        ctype: str | None,
    ) -> int:
        guid = seen.guid
        base = self.state.base(seen.digest)
        merged = None
        if base is not None:
            # peers rewrite line ends: merge the text, not the bytes
            merged = merge.merge(_text(base), _text(current), _text(note.body))
        if merged is not None:
            entry = self._write(key, merged, entry)
            self._saw(guid, luid, entry, note.body, ctype)
            self.followups.append(self._change("Replace", guid, luid))
            return 207
        if self.policy == "client-wins":
            entry = self._put(guid, key, note.body, entry)
            self._saw(guid, luid, entry, note.body, ctype)
            return 208
        if self.policy == "server-wins":
            self.followups.append(self._change("Replace", guid, luid))
            return 419
        # keep both: the client's version beside the server's, under a new name
        aside = _conflict_copy(key, self.listing)
        self._write(aside, note.body, None)
        self._saw(guid, luid, entry, note.body, ctype)
        self.followups.append(self._change("Replace", guid, luid))
        self.followups.append(self._change("Add", self.state.guid(aside), None))
        return 209

    def _delete(self, seen: Seen | None) -> int:
        if seen is None:
            return 211  # not known: nothing deleted
        guid = seen.guid
        self.claimed.add(guid)
        key, entry = self._entry(guid)
        if entry is None or key is None:
            self.state.unsee(self.peer, guid)
            self.seen.pop(guid, None)
            return 200
        if entry.version != seen.version and self.policy != "client-wins":
            # deleted there, changed here: keep the change, send it again
            self.state.unsee(self.peer, guid)
            self.seen.pop(guid, None)
            self.claimed.discard(guid)
            return 419
        self.collection.delete(key, entry)
        self.listing.pop(key, None)
        self.state.unsee(self.peer, guid)
        self.seen.pop(guid, None)
        self.state.forget_guid(guid)
        return 200

    def _write(self, key: str, body: bytes, expect: Entry | None) -> Entry:
        entry = self.collection.write(key, body, expect)
        self.listing[key] = entry
        return entry

    def _saw(
        self, guid: str, luid: str | None, entry: Entry, body: bytes, ctype: str | None
    ) -> None:
        seen = Seen(guid, luid, entry.version, body_digest(body), ctype)
        self.seen[guid] = seen
        self.state.record(self.peer, seen, body)

    def _new_name(self, note: notes.Note, ctype: str | None, luid: str) -> str:
        if note.name is not None:
            name = notes.safe_name(note.name)
        elif ctype is None or ctype.startswith("text/"):
            name = notes.name_from_text(note.body)
        else:
            name = notes.safe_name(f"item-{luid}", "item") + ".bin"
        return notes.unique_name(name, self.listing)

    # -- the end of the client's package ---------------------------------------
    def client_done(self) -> None:
        """After a refresh from the client, what it did not send goes."""
        if self.mode != REFRESH_FROM_CLIENT:
            return
        for key, entry in list(self.listing.items()):
            guid = self.state.guid(key)
            if guid in self.claimed:
                continue
            try:
                self.collection.delete(key, entry)
            except (PreconditionFailed, PermissionDenied):
                continue
            self.listing.pop(key, None)
            self.state.forget_guid(guid)

    # -- the server's changes --------------------------------------------------
    def outgoing(self) -> list[ServerChange]:
        """What the peer is to receive now (after its own changes)."""
        if self.mode in (ONE_WAY_FROM_CLIENT, REFRESH_FROM_CLIENT):
            return self.followups
        out: list[ServerChange] = list(self.followups)
        sent = {c.guid for c in out}
        current: set[str] = set()
        for key, entry in sorted(self.listing.items()):
            guid = self.state.guid(key)
            current.add(guid)
            if guid in sent:
                continue
            seen = self.seen.get(guid)
            if seen is None:
                if not (self._slow and guid in self.claimed):
                    out.append(self._change("Add", guid, None))
                continue
            if entry.version == seen.version or (self._slow and guid in self.claimed):
                continue
            body = self.collection.read(key)
            if body_digest(body) == seen.digest:
                self.state.record(self.peer, seen._replace(version=entry.version))
                continue
            op = "Replace" if seen.luid else "Add"
            out.append(self._change(op, guid, seen.luid))
        if not self._slow:
            for guid, seen in list(self.seen.items()):
                if guid not in current and guid not in sent and seen.luid:
                    out.append(self._change("Delete", guid, seen.luid))
        return out

    def _change(self, op: str, guid: str, luid: str | None) -> ServerChange:
        if op == "Delete":
            return ServerChange(op, guid, luid, None, self.ctype, "", "")
        key = self.state.key(guid)
        assert key is not None
        entry = self.listing.get(key) or Entry(key, "file")
        body = self.collection.read(key)
        ctype = self.ctype
        if not text_safe(body):
            ctype = _OPAQUE  # not a note: its bytes, as they are
        wire = notes.to_wire(ctype, key, body)
        return ServerChange(
            op, guid, luid, wire, ctype, entry.version, body_digest(body)
        )

    def acknowledged(self, change: ServerChange, code: int) -> None:
        """The peer's status for one change we sent."""
        if code >= 300 and code not in (418,):
            return  # not taken: it is sent again next session
        if change.op == "Delete":
            self.state.unsee(self.peer, change.guid)
            return
        key = self.state.key(change.guid)
        body = (
            self.collection.read(key)
            if key is not None and key in self.listing
            else None
        )
        seen = Seen(
            change.guid, change.luid, change.version, change.digest, change.ctype
        )
        self.state.record(self.peer, seen, body)

    def mapped(self, guid: str, luid: str) -> None:
        self.state.map(self.peer, guid, luid)


def _text_digest(body: bytes) -> str:
    """What two note bodies share when they are the same text."""
    return body_digest(notes.plain_text(body))


def _text(body: bytes) -> bytes:
    """``body`` with LF line ends and one final newline."""
    return notes.plain_text(body) + b"\n"


def _conflict_copy(key: str, taken: dict[str, Entry]) -> str:
    """``name.conflict-YYYYmmdd-HHMMSS-client.ext``, free in ``taken``."""
    return conflict_name(key, "client", time.time_ns(), taken)
