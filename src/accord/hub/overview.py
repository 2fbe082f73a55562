"""What the dashboard shows of a hub, as a user may see it.

Collections and their sizes, nodes and when each was last seen, recent
history (changes and runs), open conflicts (the conflict copies a sync
left in a collection, ``name.conflict-<when>-<side>.ext``, until someone
deletes or renames them), and the syncs running now: those holding a
collection's run lock (any machine's). How far each has got comes live on
the event feed: ``accord sync`` posts its counts to each hub side, the
dashboard's own runs their counts and log. Each function reads in one
short transaction.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from accord.hub import accounts, items
from accord.hub import schema as t
from accord.hub.accounts import Account

__all__ = [
    "collection_items",
    "conflicts",
    "history",
    "overview",
    "running",
]

_CONFLICT = "%.conflict-%"


def _readable(conn: sa.Connection, account: Account) -> Any:
    return accounts.readable_ids(conn, account)


def history(
    conn: sa.Connection, account: Account, cid: int | None = None, limit: int = 30
) -> list[dict[str, Any]]:
    """The latest changes and runs, newest first."""
    e, c = t.events, t.collections
    query = (
        sa.select(e, c.c.name.label("collection"))
        .select_from(e.join(c, c.c.id == e.c.collection_id))
        .where(e.c.kind.in_(("change", "run")))
        .order_by(e.c.id.desc())
        .limit(limit)
    )
    if cid is not None:
        query = query.where(e.c.collection_id == cid)
    else:
        query = query.where(e.c.collection_id.in_(_readable(conn, account)))
    return [
        {
            "at": row.at,
            "kind": row.kind,
            "collection": row.collection,
            "user": row.user,
            "what": describe(row.kind, json.loads(row.data)),
        }
        for row in conn.execute(query)
    ]


def describe(kind: str, data: dict[str, Any]) -> str:
    """One line of history, in words."""
    if kind == "change":
        changes = data.get("changes") or []
        shown = ", ".join(
            f"{c.get('op')} {c.get('key')}"
            + (f" -> {c['new_key']}" if c.get("new_key") else "")
            for c in changes[:3]
        )
        more = f" and {len(changes) - 3} more" if len(changes) > 3 else ""
        return f"{shown}{more}"
    status = data.get("status") or "?"
    if status == "started":
        return "a sync started"
    counts = data.get("counts") or {}
    done = sum(v for v in counts.values() if isinstance(v, int))
    command = data.get("command") or "sync"
    return f"{command} {status}: {done} changes by {data.get('who') or '?'}"


def conflicts(
    conn: sa.Connection, account: Account, cid: int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Conflict copies present in the collections ``account`` may read."""
    i, c = t.items, t.collections
    query = (
        sa.select(c.c.name, i.c.key, i.c.size)
        .select_from(i.join(c, c.c.id == i.c.collection_id))
        .where(i.c.alive, i.c.key.like(_CONFLICT), i.c.kind == "file")
        .order_by(c.c.name, i.c.key)
        .limit(limit)
    )
    if cid is not None:
        query = query.where(i.c.collection_id == cid)
    else:
        query = query.where(i.c.collection_id.in_(_readable(conn, account)))
    return [
        {"collection": r.name, "key": r.key, "size": int(r.size)}
        for r in conn.execute(query)
    ]


def running(conn: sa.Connection, account: Account) -> list[dict[str, Any]]:
    """Runs holding a collection's lock now (any machine)."""
    o, c = t.own, t.collections
    query = (
        sa.select(c.c.name, o.c.data)
        .select_from(o.join(c, c.c.id == o.c.collection_id))
        .where(o.c.name == "lock", o.c.collection_id.in_(_readable(conn, account)))
        .order_by(c.c.name)
    )
    found = []
    for row in conn.execute(query):
        try:
            lock = json.loads(bytes(row.data))
        except ValueError:
            lock = {}
        if not isinstance(lock, dict):
            lock = {}
        found.append(
            {
                "collection": row.name,
                "who": str(lock.get("who") or "?"),
                "host": str(lock.get("host") or "?"),
                "since": lock.get("since"),
                "run": str(lock.get("run") or ""),
            }
        )
    return found


def collection_items(
    conn: sa.Connection, cid: int, limit: int = 1000
) -> list[dict[str, Any]]:
    """The first ``limit`` live items of a collection, by key."""
    i = t.items
    query = (
        sa.select(i.c.key, i.c.kind, i.c.size, i.c.mtime_ns)
        .where(i.c.collection_id == cid, i.c.alive)
        .order_by(i.c.key)
        .limit(limit)
    )
    return [
        {"key": r.key, "kind": r.kind, "size": int(r.size), "mtime": r.mtime_ns / 1e9}
        for r in conn.execute(query)
    ]


def overview(conn: sa.Connection, account: Account) -> dict[str, Any]:
    """Everything the dashboard's first page shows."""
    return {
        "user": account.user,
        "admin": account.admin,
        "collections": items.list_collections(conn, account),
        "nodes": accounts.list_nodes(conn, account),
        "history": history(conn, account),
        "conflicts": conflicts(conn, account),
        "running": running(conn, account),
    }
