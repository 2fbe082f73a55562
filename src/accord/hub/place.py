"""A hub collection as a place inside the hub's own process.

The dashboard's syncs run in the server: one of their sides is often a
collection of this very hub. :class:`CollectionPlace` opens it as the
user who asked, straight on the store (``items``, ``extras``, the blob
store), with the same checks the file API makes: that user's grant, a
stale write refused (``PreconditionFailed``), names checked, deletes and
overwrites kept in the trash, changes recorded with who made them. No
HTTP, no credentials, no TLS to trust: the hub talks to itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import IO, Any

from accord.capabilities import Capabilities
from accord.errors import (
    AccordError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    ReplicaError,
    Unreachable,
)
from accord.hub import extras, items
from accord.hub.accounts import Account
from accord.hub.items import Change, Collection
from accord.hub.store import INLINE, Hub
from accord.keys import IgnoreRules
from accord.model import DIR, FILE, Entry, Problem
from accord.replica import (
    Replica,
    TrashItem,
    WriteItem,
    check_key,
    check_run,
)

__all__ = ["CollectionPlace"]


class CollectionPlace(Replica):
    """Collection ``name`` of ``hub``, used as ``account``."""

    scheme = "hub"

    def __init__(self, hub: Hub, account: Account, name: str) -> None:
        self.hub = hub
        self.account = account
        self.name = items.check_collection_name(name)
        self.url = f"hub:{name}"
        self.identity = f"hub://{hub.hub_id}/{name}"
        self.capabilities = Capabilities(
            listed_digests=frozenset({"sha256"}),
            batch_writes=True,
            utf8_names=True,
        )
        self._col: Collection | None = None

    # -- lifetime ---------------------------------------------------------
    def open(self, create: bool = False) -> None:
        engine = self.hub.writer if create else self.hub.reader
        try:
            with engine.begin() as conn:
                self._col = items.collection(
                    conn, self.account, self.name, create=create
                )
        except NotFound as exc:
            raise Unreachable(exc.reason, where=self.url, hint=exc.hint) from exc
        if self._col.access != "write":
            self.capabilities = self.capabilities._replace(read_only=True)

    def exists(self) -> bool:
        try:
            with self.hub.reader.connect() as conn:
                items.collection(conn, self.account, self.name)
        except NotFound:
            return False
        except AccordError:
            return True
        return True

    @property
    def col(self) -> Collection:
        if self._col is None:
            self.open()
        assert self._col is not None
        return self._col

    # -- reading ----------------------------------------------------------
    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str]:
        get = known.get if known is not None else None
        for entry, _ in items.entries(self.hub.reader, self.col.id):
            if ignore and ignore.excludes(entry.key, entry.kind == DIR):
                continue
            if get is not None and get(entry.key) == entry.version:
                yield entry.key
            else:
                yield entry

    def stat(self, key: str) -> Entry | None:
        check_key(key, self.url)
        with self.hub.reader.connect() as conn:
            return items.stat(conn, self.col.id, key)

    def digest(self, entry: Entry) -> Entry:
        if entry.digest or entry.kind != FILE:
            return entry
        now = self.stat(entry.key)
        if now is None:
            raise NotFound("vanished", where=self.url, key=entry.key)
        return now

    def open_read(self, key: str) -> AbstractContextManager[IO[bytes]]:
        entry = self.stat(key)
        if entry is None or entry.kind != FILE or not entry.digest:
            raise NotFound("no such file", where=self.url, key=key)
        return self.hub.open(entry.digest)  # type: ignore[return-value]

    # -- writing ----------------------------------------------------------
    def _apply(
        self, changes: list[Change], inline: dict[str, bytes] | None = None
    ) -> list[Entry | Exception | None]:
        return items.apply_changes(
            self.hub.writer, self.account, self.col, changes, inline
        )

    def _one(self, change: Change) -> Entry | None:
        check_key(change.key, self.url)
        if change.new_key is not None:
            check_key(change.new_key, self.url)
        (result,) = self._apply([change])
        if isinstance(result, Exception):
            raise result
        return result

    def write(
        self,
        key: str,
        data: IO[bytes],
        *,
        like: Entry,
        expect: Entry | None,
        trash: str | None = None,
    ) -> Entry:
        check_key(key, self.url)
        if expect is not None and expect.kind == DIR:
            raise PreconditionFailed("a folder is there", where=self.url, key=key)
        if like.size <= INLINE:
            return self.write_batched(key, data, like=like, expect=expect, trash=trash)
        digest, size = self.hub.blobs.put(data)
        self.hub.blobs.flush()
        change = Change("file", key, like, expect, trash, digest=digest, size=size)
        done = self._one(change)
        assert done is not None
        return done

    def write_batch(self, batch: list[WriteItem]) -> list[Entry | AccordError]:
        changes, inline = [], {}
        for item in batch:
            check_key(item.key, self.url)
            digest = f"sha256:{hashlib.sha256(item.data).hexdigest()}"
            inline[digest] = item.data
            changes.append(
                Change(
                    "file",
                    item.key,
                    item.like,
                    item.expect,
                    item.trash,
                    digest=digest,
                    size=len(item.data),
                )
            )
        out: list[Entry | AccordError] = []
        for result in self._apply(changes, inline):
            if isinstance(result, AccordError):
                out.append(result)
            elif isinstance(result, Exception):
                raise result
            else:
                out.append(result if result is not None else ReplicaError("no entry"))
        return out

    def make_dir(self, key: str, *, like: Entry, expect: Entry | None) -> Entry:
        done = self._one(Change("dir", key, like, expect))
        assert done is not None
        return done

    def make_link(
        self, key: str, *, like: Entry, expect: Entry | None, trash: str | None = None
    ) -> Entry:
        done = self._one(Change("link", key, like, expect, trash))
        assert done is not None
        return done

    def set_meta(self, key: str, *, like: Entry, expect: Entry) -> Entry:
        done = self._one(Change("meta", key, like, expect))
        assert done is not None
        return done

    def delete(self, key: str, *, expect: Entry, trash: str | None = None) -> None:
        self._one(Change("delete", key, None, expect, trash))

    def move(self, key: str, new_key: str, *, expect: Entry) -> Entry:
        done = self._one(Change("move", key, None, expect, new_key=new_key))
        assert done is not None
        return done

    # -- accord's own files -------------------------------------------------
    def meta_create(self, name: str, data: bytes) -> bool:
        return extras.own_create(self.hub.writer, self.account, self.col.id, name, data)

    def meta_read(self, name: str) -> bytes | None:
        with self.hub.reader.connect() as conn:
            return extras.own_read(conn, self.col.id, name)

    def meta_delete(self, name: str) -> None:
        with self.hub.writer.begin() as conn:
            extras.own_delete(conn, self.col.id, name)

    def meta_list(self, prefix: str) -> list[str]:
        with self.hub.reader.connect() as conn:
            return extras.own_list(conn, self.col.id, prefix)

    def forget_meta(self) -> None:
        with self.hub.writer.begin() as conn:
            extras.own_delete(conn, self.col.id, None)

    # -- trash ------------------------------------------------------------
    def trash_list(self) -> Iterator[TrashItem]:
        with self.hub.reader.connect() as conn:
            found: list[Any] = extras.trash_list(conn, self.col.id)
        for run, key, entry in found:
            yield TrashItem(run, key, Entry(*entry))

    def trash_restore(self, item: TrashItem, key: str) -> Entry:
        check_key(item.key, self.url)
        check_run(item.run, self.url)
        trash_id = int(item.entry.version)
        done = self._one(Change("restore", key, trash_id=trash_id))
        assert done is not None
        return done

    def trash_purge(self, run: str) -> int:
        check_run(run, self.url)
        if self.col.access != "write":
            raise PermissionDenied(f"{self.account.user} may not change {self.name!r}")
        with self.hub.writer.begin() as conn:
            return extras.trash_purge(conn, self.col.id, run)
