"""What a hub collection holds, and every change to it.

Each function is one transaction. A change first bumps the collection's
``seq`` (which serialises writers of that collection across every server
process, see ``schema``), then checks what the caller expects to replace
with the same :func:`~accord.replica.check_expected` every place uses, so
a stale write changes nothing and answers 412. Content is in the blob store
before its row is committed: a reader sees the old item or the new one,
never half of one. Each change is also an event (who, what, when) for the
history and the live feed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import sqlalchemy as sa

from accord.errors import (
    AlreadyExists,
    InvalidInput,
    NotEmpty,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
)
from accord.hub import accounts
from accord.hub import schema as t
from accord.hub.accounts import Account
from accord.model import DIR, FILE, LINK, Entry, parent_of
from accord.replica import check_digest, check_expected, check_key

__all__ = [
    "Change",
    "Collection",
    "apply_at",
    "apply_changes",
    "bump",
    "collection",
    "entries",
    "event",
    "held_digests",
    "list_collections",
    "stat",
]

_PAGE = 2000


class Collection(NamedTuple):
    id: int
    name: str
    access: str  # read or write


class Change(NamedTuple):
    """One requested change (a write, a folder, a link, a delete...)."""

    op: str  # file, dir, link, meta, delete, move, restore
    key: str
    like: Entry | None = None
    expect: Entry | None = None
    trash: str | None = None
    new_key: str | None = None
    digest: str | None = None  # file: the blob holding the content
    size: int = 0
    trash_id: int | None = None  # restore


def check_name(key: str) -> str:
    """``key`` from a client, or UnsafeName (the shared check of every place)."""
    return check_key(key, "the hub")


def check_collection_name(name: str) -> str:
    ok = name and len(name) <= 200 and name[0] not in ".-"
    if not ok or any(not (c.isalnum() or c in "._-") for c in name):
        raise InvalidInput(
            f"refused collection name {name!r}",
            hint="use letters, digits, '.', '_' and '-' (not first)",
        )
    return name


def collection(
    conn: sa.Connection,
    account: Account,
    name: str,
    *,
    write: bool = False,
    create: bool = False,
) -> Collection:
    """The collection ``name`` as ``account`` may use it. A missing one and
    one without a grant answer alike (existence is not leaked)."""
    check_collection_name(name)
    row = conn.execute(
        sa.select(t.collections).where(t.collections.c.name == name)
    ).first()
    if row is None and create and account.admin:
        conn.execute(
            t.collections.insert().values(name=name, seq=0, created=time.time())
        )
        row = conn.execute(
            sa.select(t.collections).where(t.collections.c.name == name)
        ).first()
    if row is None and account.admin:  # an admin may know what exists
        raise NotFound(
            f"no collection {name!r} on this hub",
            hint="sync to it to create it, or: accord hub grant USER NAME --write",
        )
    access = accounts.access_of(conn, account, row.id) if row is not None else "none"
    if row is None or access == "none":
        raise PermissionDenied(
            f"no collection {name!r} that {account.user} may use",
            hint="ask the hub's admin for a grant: accord hub grant "
            f"{account.user} {name} --read|--write",
        )
    if write and access != "write":
        raise PermissionDenied(
            f"{account.user} may read {name!r} but not change it",
            hint="ask for write access: "
            f"accord hub grant {account.user} {name} --write",
        )
    return Collection(row.id, row.name, access)


def list_collections(conn: sa.Connection, account: Account) -> list[dict[str, Any]]:
    """The collections ``account`` may read, with their sizes."""
    c, i = t.collections, t.items
    query = (
        sa.select(
            c.c.name,
            c.c.seq,
            sa.func.count(i.c.key).label("items"),
            sa.func.coalesce(sa.func.sum(i.c.size), 0).label("bytes"),
        )
        .select_from(c.outerjoin(i, (i.c.collection_id == c.c.id) & i.c.alive))
        .where(c.c.id.in_(accounts.readable_ids(conn, account)))
        .group_by(c.c.id, c.c.name, c.c.seq)
        .order_by(c.c.name)
    )
    return [
        {"name": r.name, "seq": r.seq, "items": r.items, "bytes": int(r.bytes)}
        for r in conn.execute(query)
    ]


def _entry(row: Any) -> Entry:
    return Entry(
        row.key,
        row.kind,
        row.size,
        row.mtime_ns,
        row.mode,
        str(row.seq),
        row.digest,
        row.target,
    )


def _current(conn: sa.Connection, cid: int, key: str) -> Entry | None:
    row = conn.execute(
        sa.select(t.items).where(
            t.items.c.collection_id == cid, t.items.c.key == key, t.items.c.alive
        )
    ).first()
    return _entry(row) if row is not None else None


def stat(conn: sa.Connection, cid: int, key: str) -> Entry | None:
    return _current(conn, cid, check_name(key))


def seq_of(conn: sa.Connection, cid: int) -> int:
    return int(
        conn.execute(
            sa.select(t.collections.c.seq).where(t.collections.c.id == cid)
        ).scalar_one()
    )


def entries(
    engine: sa.Engine, cid: int, since: int | None = None
) -> Iterator[tuple[Entry, bool]]:
    """Every live entry by key (``since`` None), or every item changed after
    ``since`` by seq with deleted ones; ``(entry, alive)``. Read in pages,
    each its own short transaction: memory stays bounded."""
    i = t.items
    last: Any = "" if since is None else since
    while True:
        query = sa.select(i).where(i.c.collection_id == cid).limit(_PAGE)
        if since is None:
            query = query.where(i.c.alive, i.c.key > last).order_by(i.c.key)
        else:
            query = query.where(i.c.seq > last).order_by(i.c.seq, i.c.key)
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            yield _entry(row), bool(row.alive)
        if len(rows) < _PAGE:
            return
        last = rows[-1].key if since is None else rows[-1].seq
        if since is not None and rows[-1].seq == rows[0].seq:
            raise InvalidInput("too many changes in one step to page through")


def held_digests(
    conn: sa.Connection, account: Account, digests: list[str]
) -> dict[str, int]:
    """Which of ``digests`` the hub holds in collections ``account`` may
    read (content elsewhere is not admitted to exist), with their sizes."""
    readable = accounts.readable_ids(conn, account)
    found: dict[str, int] = {}
    for table in (t.items, t.trash):
        query = sa.select(table.c.digest, table.c.size).where(
            table.c.digest.in_(digests), table.c.collection_id.in_(readable)
        )
        found.update((row.digest, int(row.size)) for row in conn.execute(query))
    return found


def event(
    conn: sa.Connection,
    account: Account | None,
    cid: int | None,
    kind: str,
    data: dict[str, Any],
) -> None:
    """Record one event (a change, a run starting or ending)."""
    conn.execute(
        t.events.insert().values(
            at=time.time(),
            collection_id=cid,
            kind=kind,
            user=account.user if account else None,
            node=account.node if account else None,
            data=json.dumps(data, separators=(",", ":")),
        )
    )


def _bump(conn: sa.Connection, cid: int) -> int:
    """The collection's next seq (and its write lock until commit)."""
    c = t.collections
    return int(
        conn.execute(
            c.update().where(c.c.id == cid).values(seq=c.c.seq + 1).returning(c.c.seq)
        ).scalar_one()
    )


def _put(conn: sa.Connection, cid: int, entry: Entry, seq: int) -> Entry:
    """Install ``entry`` at its key (replacing any row, live or not)."""
    i = t.items
    conn.execute(i.delete().where(i.c.collection_id == cid, i.c.key == entry.key))
    conn.execute(i.insert().values(**_row(cid, entry), seq=seq, alive=True))
    return entry._replace(version=str(seq))


def _row(cid: int, entry: Entry) -> dict[str, Any]:
    """The columns an item and a trashed item share."""
    return {
        "collection_id": cid,
        "key": entry.key,
        "kind": entry.kind,
        "size": entry.size,
        "mtime_ns": entry.mtime_ns,
        "mode": entry.mode,
        "digest": entry.digest,
        "target": entry.target,
    }


def _bury(conn: sa.Connection, cid: int, key: str, seq: int) -> None:
    """Mark ``key`` deleted at ``seq`` (the change feed reports it)."""
    i = t.items
    conn.execute(
        i.update()
        .where(i.c.collection_id == cid, i.c.key == key)
        .values(alive=False, seq=seq)
    )


def _parents(conn: sa.Connection, cid: int, key: str, seq: int) -> None:
    """Make the folders above ``key`` that are missing; a file in the way
    is refused."""
    missing = []
    parent = parent_of(key)
    while parent:
        current = _current(conn, cid, parent)
        if current is not None:
            if current.kind != DIR:
                raise PreconditionFailed(
                    "a file is where a folder should be", key=parent
                )
            break
        missing.append(parent)
        parent = parent_of(parent)
    for folder in reversed(missing):
        _put(conn, cid, Entry(folder, DIR, 0, 0, 0o755), seq)


def _trash(
    conn: sa.Connection, account: Account, cid: int, run: str, entry: Entry
) -> None:
    conn.execute(
        t.trash.insert().values(
            **_row(cid, entry), run=run, at=time.time(), by_user=account.user
        )
    )


def _children(conn: sa.Connection, cid: int, key: str) -> list[Entry]:
    i = t.items
    rows = conn.execute(
        sa.select(i)
        .where(
            i.c.collection_id == cid,
            i.c.alive,
            i.c.key > key + "/",
            i.c.key < key + "0",  # '0' follows '/': the folder's whole range
        )
        .order_by(i.c.key)
    ).all()
    return [_entry(row) for row in rows]


def apply_changes(
    engine: sa.Engine,
    account: Account,
    col: Collection,
    changes: list[Change],
    inline: dict[str, bytes] | None = None,
) -> list[Entry | Exception | None]:
    """Apply ``changes`` in one transaction, each on its own: one refused
    change (a stale expectation) does not stop the others. For each, the
    new entry (None for a delete) or the error. ``inline``: small content
    (by digest) stored in the same transaction."""
    if col.access != "write":
        raise PermissionDenied(f"{account.user} may not change {col.name!r}")
    with engine.begin() as conn:
        seq = _bump(conn, col.id)
        results = apply_at(conn, account, col, seq, changes, inline)
        from accord.hub import faults

        faults.point("commit")
    return results


def bump(conn: sa.Connection, col: Collection) -> int:
    """Begin changing ``col`` in the transaction of ``conn``: its next seq
    (every change of the transaction gets it), and its write lock until
    that transaction ends (see :func:`apply_at`)."""
    if col.access != "write":
        raise PermissionDenied(f"{col.name!r} may not be changed here")
    return _bump(conn, col.id)


def apply_at(
    conn: sa.Connection,
    account: Account,
    col: Collection,
    seq: int,
    changes: list[Change],
    inline: dict[str, bytes] | None = None,
) -> list[Entry | Exception | None]:
    """:func:`apply_changes` in the caller's transaction, at the ``seq``
    that :func:`bump` gave it."""
    if col.access != "write":
        raise PermissionDenied(f"{account.user} may not change {col.name!r}")
    results: list[Entry | Exception | None] = []
    done: list[dict[str, Any]] = []
    if inline:
        rows = [{"digest": d, "data": data} for d, data in inline.items()]
        conn.execute(t.insert_new(conn, t.inline), rows)
    if all(change.op == "file" for change in changes):
        results = _files(conn, account, col.id, seq, changes)
        done = [
            _described(c)
            for c, r in zip(changes, results, strict=True)
            if isinstance(r, Entry)
        ]
    else:
        for change in changes:
            try:
                with conn.begin_nested():
                    results.append(_one(conn, account, col.id, seq, change))
                done.append(_described(change))
            except _REFUSED as exc:
                results.append(exc)
    if done:
        event(conn, account, col.id, "change", {"seq": seq, "changes": done})
    return results


_REFUSED = (PreconditionFailed, AlreadyExists, NotFound, InvalidInput)


def _files(
    conn: sa.Connection, account: Account, cid: int, seq: int, changes: list[Change]
) -> list[Entry | Exception | None]:
    """File writes (a batch): every check against rows read in one query,
    then one delete, one insert and one trash insert for all that pass.
    Statements per batch, not per file: a batch of 64 small files costs
    a few milliseconds of database work, not hundreds."""
    wanted: set[str] = set()
    for change in changes:
        key = change.key
        wanted.add(key)
        while (key := parent_of(key)) and key not in wanted:
            wanted.add(key)
    now = _rows(conn, cid, wanted)
    results: list[Entry | Exception | None] = []
    written: dict[str, Entry] = {}
    trashed: list[dict[str, Any]] = []
    for change in changes:
        try:
            entry, old, folders = _checked_file(now, change)
        except _REFUSED as exc:
            results.append(exc)
            continue
        for folder in folders:
            now[folder.key] = written[folder.key] = folder._replace(version=str(seq))
        if change.trash and old is not None:
            trashed.append(
                {
                    **_row(cid, old),
                    "run": change.trash,
                    "at": time.time(),
                    "by_user": account.user,
                }
            )
        now[entry.key] = written[entry.key] = entry._replace(version=str(seq))
        results.append(now[entry.key])
    if written:
        i = t.items
        for chunk in _chunks(sorted(written)):
            conn.execute(i.delete().where(i.c.collection_id == cid, i.c.key.in_(chunk)))
        rows = [{**_row(cid, e), "seq": seq, "alive": True} for e in written.values()]
        conn.execute(i.insert(), rows)
    if trashed:
        conn.execute(t.trash.insert(), trashed)
    return results


def _chunks(keys: list[str], size: int = 500) -> list[list[str]]:
    return [keys[start : start + size] for start in range(0, len(keys), size)]


def _rows(conn: sa.Connection, cid: int, keys: set[str]) -> dict[str, Entry]:
    """The live entries of ``keys`` (those that exist), in few queries."""
    i = t.items
    found: dict[str, Entry] = {}
    for chunk in _chunks(sorted(keys)):
        query = sa.select(i).where(
            i.c.collection_id == cid, i.c.alive, i.c.key.in_(chunk)
        )
        found.update((row.key, _entry(row)) for row in conn.execute(query))
    return found


def _checked_file(
    now: dict[str, Entry], change: Change
) -> tuple[Entry, Entry | None, list[Entry]]:
    """``(new entry, the entry it replaces, folders to make)`` for a file
    write, or the refusal: the same checks as a write on its own."""
    key, like, expect = change.key, change.like, change.expect
    if like is None or not change.digest:
        raise InvalidInput("a file without its entry or content", key=key)
    if expect is not None and expect.kind == DIR:
        raise PreconditionFailed("a folder is there", key=key)
    current = now.get(key)
    check_expected(current, expect, "")
    check_digest(like, change.digest, "", key)
    folders = []
    parent = parent_of(key)
    while parent:
        above = now.get(parent)
        if above is not None:
            if above.kind != DIR:
                raise PreconditionFailed(
                    "a file is where a folder should be", key=parent
                )
            break
        folders.append(Entry(parent, DIR, 0, 0, 0o755))
        parent = parent_of(parent)
    entry = Entry(
        key, FILE, change.size, like.mtime_ns, like.mode or 0o644, "", change.digest
    )
    return entry, current, folders


def _described(change: Change) -> dict[str, Any]:
    item: dict[str, Any] = {"op": change.op, "key": change.key}
    if change.new_key:
        item["new_key"] = change.new_key
    return item


def _one(
    conn: sa.Connection, account: Account, cid: int, seq: int, change: Change
) -> Entry | None:
    key = check_name(change.key)
    current = _current(conn, cid, key)
    op = change.op
    if op == "restore":
        return _restore(conn, cid, seq, change, current)
    expect = change.expect
    if op in ("file", "link") and expect is not None and expect.kind == DIR:
        raise PreconditionFailed("a folder is there", key=key)
    check_expected(current, change.expect, "")
    if op == "delete":
        return _delete(conn, account, cid, seq, change, current)
    if op == "move":
        return _move(conn, cid, seq, change, current)
    like = change.like
    if like is None:
        raise InvalidInput("a change without its entry", key=key)
    if op == "meta":
        assert current is not None
        if current.kind == DIR:
            return current
        return _put(
            conn, cid, current._replace(mtime_ns=like.mtime_ns, mode=like.mode), seq
        )
    if op == "dir":
        if current is not None and current.kind == DIR:
            return current
        _parents(conn, cid, key, seq)
        return _put(conn, cid, Entry(key, DIR, 0, 0, like.mode or 0o755), seq)
    _parents(conn, cid, key, seq)
    if change.trash and current is not None:
        _trash(conn, account, cid, change.trash, current)
    if op == "link":
        return _put(
            conn,
            cid,
            Entry(key, LINK, 0, like.mtime_ns, 0o777, "", None, like.target),
            seq,
        )
    if op != "file" or not change.digest:
        raise InvalidInput(f"unknown change {op!r}", key=key)
    check_digest(like, change.digest, "", key)
    entry = Entry(
        key, FILE, change.size, like.mtime_ns, like.mode or 0o644, "", change.digest
    )
    return _put(conn, cid, entry, seq)


def _delete(
    conn: sa.Connection,
    account: Account,
    cid: int,
    seq: int,
    change: Change,
    current: Entry | None,
) -> None:
    assert current is not None
    if current.kind == DIR and _children(conn, cid, current.key):
        raise NotEmpty(
            "the folder is not empty: something was added; left alone", key=current.key
        )
    if change.trash and current.kind != DIR:
        _trash(conn, account, cid, change.trash, current)
    _bury(conn, cid, current.key, seq)
    return None


def _move(
    conn: sa.Connection, cid: int, seq: int, change: Change, current: Entry | None
) -> Entry:
    assert current is not None and change.new_key
    new_key = check_name(change.new_key)
    check_expected(_current(conn, cid, new_key), None, "")
    _parents(conn, cid, new_key, seq)
    moved = [current]
    if current.kind == DIR:
        moved += _children(conn, cid, current.key)
    for entry in moved:
        target = new_key + entry.key[len(current.key) :]
        _bury(conn, cid, entry.key, seq)
        _put(conn, cid, entry._replace(key=target), seq)
    return current._replace(key=new_key, version=str(seq))


def _restore(
    conn: sa.Connection, cid: int, seq: int, change: Change, current: Entry | None
) -> Entry:
    if current is not None:
        raise AlreadyExists(
            "something is already there",
            key=change.key,
            hint="restore it under another name with --to",
        )
    row = conn.execute(
        sa.select(t.trash).where(
            t.trash.c.id == change.trash_id, t.trash.c.collection_id == cid
        )
    ).first()
    if row is None:
        raise NotFound("no such item in the trash", key=change.key)
    _parents(conn, cid, change.key, seq)
    conn.execute(t.trash.delete().where(t.trash.c.id == row.id))
    entry = Entry(
        change.key,
        row.kind,
        row.size,
        row.mtime_ns,
        row.mode,
        "",
        row.digest,
        row.target,
    )
    return _put(conn, cid, entry, seq)
