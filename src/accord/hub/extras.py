"""A collection's trash, accord's own files, and resumable uploads.

accord's own files (``.accord/<name>`` in other places: the run lock and
the shared history records of ``accord.engine.history``) are rows of their
collection, created exclusively. Creating the lock and a history record
are also events (a run started, a run finished, with its counts), so the
live feed shows the runs of every machine syncing through the hub.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import IO, Any

import sqlalchemy as sa

from accord.errors import InvalidInput, NotFound, PreconditionFailed
from accord.hub import faults, items
from accord.hub import schema as t
from accord.hub.accounts import Account
from accord.hub.blobs import Blobs
from accord.model import Entry

__all__ = [
    "append_upload",
    "finish_upload",
    "own_create",
    "own_delete",
    "own_list",
    "own_read",
    "start_upload",
    "trash_list",
    "trash_purge",
]

_HISTORY = "history/"
_LOCK = "lock"


def trash_list(conn: sa.Connection, cid: int) -> list[list[Any]]:
    """``[run, key, entry]`` of each trashed item; the entry's version is
    the trash row's id (what a restore names)."""
    rows = conn.execute(
        sa.select(t.trash)
        .where(t.trash.c.collection_id == cid)
        .order_by(t.trash.c.run, t.trash.c.id)
    )
    return [
        [
            r.run,
            r.key,
            list(
                Entry(
                    r.key,
                    r.kind,
                    r.size,
                    r.mtime_ns,
                    r.mode,
                    str(r.id),
                    r.digest,
                    r.target,
                )
            ),
        ]
        for r in rows
    ]


def trash_purge(conn: sa.Connection, cid: int, run: str) -> int:
    done = conn.execute(
        t.trash.delete().where(t.trash.c.collection_id == cid, t.trash.c.run == run)
    )
    return int(done.rowcount or 0)


def _own_name(name: str) -> str:
    if not name or len(name) > 400 or items.check_name(name) != name:
        raise InvalidInput(f"refused name {name!r}")
    return name


def own_create(
    engine: sa.Engine, account: Account, cid: int, name: str, data: bytes
) -> bool:
    """Create accord's own file ``name`` unless it exists; False if it does."""
    _own_name(name)
    try:
        with engine.begin() as conn:
            conn.execute(t.own.insert().values(collection_id=cid, name=name, data=data))
            _run_event(conn, account, cid, name, data)
    except sa.exc.IntegrityError:
        return False
    return True


def _run_event(
    conn: sa.Connection, account: Account, cid: int, name: str, data: bytes
) -> None:
    if name == _LOCK:
        items.event(conn, account, cid, "run", {"status": "started"})
    elif name.startswith(_HISTORY) and name.endswith(".json"):
        try:
            record = json.loads(data)
        except ValueError:
            return
        if isinstance(record, dict):
            keep = ("run", "who", "command", "status", "counts", "started", "finished")
            items.event(conn, account, cid, "run", {k: record.get(k) for k in keep})


def own_read(conn: sa.Connection, cid: int, name: str) -> bytes | None:
    row = conn.execute(
        sa.select(t.own.c.data).where(
            t.own.c.collection_id == cid, t.own.c.name == _own_name(name)
        )
    ).first()
    return bytes(row.data) if row is not None else None


def own_delete(conn: sa.Connection, cid: int, name: str | None) -> None:
    """Remove one of accord's own files (``None``: all of them)."""
    query = t.own.delete().where(t.own.c.collection_id == cid)
    if name is not None:
        query = query.where(t.own.c.name == _own_name(name))
    conn.execute(query)


def own_list(conn: sa.Connection, cid: int, prefix: str) -> list[str]:
    rows = conn.execute(
        sa.select(t.own.c.name)
        .where(t.own.c.collection_id == cid)
        .order_by(t.own.c.name)
    )
    return [r.name for r in rows if r.name.startswith(prefix)]


# -- resumable uploads -------------------------------------------------------
def start_upload(
    engine: sa.Engine, account: Account, size: int, token: str | None
) -> dict[str, Any]:
    """A new upload, or the unfinished one of the same user, size and
    token (the client's name for that content: a transfer that broke, in
    this run or an earlier one, resumes where the hub's copy stops)."""
    u = t.uploads
    with engine.begin() as conn:
        if token:
            row = conn.execute(
                sa.select(u).where(
                    u.c.user_id == account.user_id,
                    u.c.token == token,
                    u.c.size == size,
                )
            ).first()
            if row is not None:
                return {"id": row.id, "offset": row.received}
        upload = secrets.token_hex(12)
        conn.execute(
            u.insert().values(
                id=upload,
                user_id=account.user_id,
                size=size,
                token=token,
                received=0,
                updated=time.time(),
            )
        )
    return {"id": upload, "offset": 0}


def _upload(conn: sa.Connection, account: Account, upload: str) -> Any:
    row = conn.execute(
        sa.select(t.uploads).where(
            t.uploads.c.id == upload, t.uploads.c.user_id == account.user_id
        )
    ).first()
    if row is None:
        raise NotFound("no such upload (it finished or was abandoned)", key=upload)
    return row


def upload_offset(engine: sa.Engine, account: Account, upload: str) -> int:
    with engine.connect() as conn:
        return int(_upload(conn, account, upload).received)


def append_upload(
    engine: sa.Engine,
    blobs: Blobs,
    account: Account,
    upload: str,
    offset: int,
    body: IO[bytes],
) -> int:
    """Add a (verified) chunk at ``offset``; the bytes the hub now holds."""
    with engine.connect() as conn:
        row = _upload(conn, account, upload)
    if offset != row.received:
        raise PreconditionFailed(
            f"the hub holds {row.received} bytes of this upload, not {offset}",
            key=upload,
        )
    received = blobs.append(upload, offset, body)
    if received > row.size:
        raise InvalidInput("more bytes than the upload announced", key=upload)
    faults.point("upload")
    with engine.begin() as conn:
        conn.execute(
            t.uploads.update()
            .where(t.uploads.c.id == upload)
            .values(received=received, updated=time.time())
        )
    return received


def finish_upload(
    engine: sa.Engine, blobs: Blobs, account: Account, upload: str
) -> tuple[str, int]:
    """The blob an upload became (made now if the upload is whole)."""
    with engine.connect() as conn:
        row = _upload(conn, account, upload)
    if row.result and blobs.has(row.result):
        return str(row.result), int(row.size)
    if row.received != row.size:
        raise PreconditionFailed(
            f"the upload is not whole ({row.received} of {row.size} bytes)", key=upload
        )
    digest, size = blobs.finish(upload)
    with engine.begin() as conn:
        conn.execute(
            t.uploads.update().where(t.uploads.c.id == upload).values(result=digest)
        )
    return digest, size


def forget_upload(engine: sa.Engine, upload: str) -> None:
    with engine.begin() as conn:
        conn.execute(t.uploads.delete().where(t.uploads.c.id == upload))
