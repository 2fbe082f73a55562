"""accord.db: an app's own database kept in step with a central one,
through an accord hub.

::

    import accord.db
    accord.db.init("postgresql://127.0.0.1/central", hub="http://127.0.0.1:8470",
                   tables=["customers", "orders"])             # once, by an admin
    accord.db.attach("sqlite:///app.db", hub="http://127.0.0.1:8470", node="shop-17")
    accord.db.sync("sqlite:///app.db")    # pull, merge, push; again if refused
    accord.db.status("sqlite:///app.db")

Every call takes the node's database URL; what it is attached to (hub,
database, node) is kept in that database (``accord_meta``). Requests are
signed with this machine's hub credentials (``accord login``). Calls that
move data take ``on_progress(event)``: a dict with ``stage``
(``snapshot``, ``pull``, ``merge``, ``push``, ``done``) and counts.
Conflict policies, per table: ``local-wins`` (the default),
``server-wins``, ``field-merge``, ``field-merge/server-wins``, or a
function ``(table, key, local row, server row, base row or None) -> row``.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from accord.errors import (
    ConfigError,
    InvalidInput,
    PermissionDenied,
    PreconditionFailed,
    PullFirst,
)
from accord.replicas.hub_client import HubClient
from accord.replication import capture
from accord.replication.local import Local
from accord.replication.merge import POLICIES, Change, Policy, merge
from accord.replication.values import decode_row, encode_row

__all__ = [
    "attach",
    "detach",
    "grant",
    "init",
    "pull",
    "push",
    "query",
    "repair",
    "status",
    "sync",
]

Progress = Callable[[dict[str, Any]], None] | None
_BASE = "/api/v1/db"


def _tell(on_progress: Progress, stage: str, **counts: Any) -> None:
    if on_progress is not None:
        on_progress({"stage": stage, **counts})


def _default_name(url: str) -> str:
    database = sa.make_url(url).database or "db"
    return database.rsplit("/", 1)[-1].split(".")[0] or "db"


def init(
    url: str,
    *,
    hub: str,
    tables: list[str],
    name: str | None = None,
    expire_days: float | None = None,
) -> dict[str, Any]:
    """Register the central database ``url`` on ``hub`` and install change
    capture on ``tables`` (admins). The hub connects to ``url`` itself."""
    if not tables:
        raise InvalidInput("name the tables to replicate", hint="--tables a,b,c")
    body = {
        "name": name or _default_name(url),
        "url": url,
        "tables": tables,
        "expire_days": expire_days,
    }
    with HubClient(hub, admin=True) as client:
        return dict(client.api("POST", "/db/", json_body=body))


def grant(hub: str, db: str, user: str, tables: list[str], access: str) -> None:
    """Give ``user`` ``read``, ``write`` or ``none`` on ``tables`` (admins)."""
    with HubClient(hub, admin=True) as client:
        client.api(
            "PUT",
            f"/db/{db}/grants",
            json_body={"user": user, "tables": tables, "access": access},
        )


class _Node:
    """An attached node: its database, its hub client, its state."""

    def __init__(self, url: str) -> None:
        self.local = Local(url)
        meta = self.local.meta()
        if "node" not in meta:
            self.local.close()
            raise ConfigError(
                f"{url} is not attached to a hub",
                hint="attach it: accord db attach URL --hub HUB --node NAME",
            )
        self.meta = meta
        self.local.use(json.loads(meta["schema"]))
        self.client = HubClient(meta["hub"])
        self.path = f"/db/{meta['db']}"

    def close(self) -> None:
        self.client.close()
        self.local.close()

    def call(self, method: str, path: str, **kw: Any) -> Any:
        return self.client.api(method, self.path + path, **kw)

    @property
    def version(self) -> int:
        return int(self.local.meta().get("version", "0"))

    def fetch(self, table: str, keys: list[str]) -> list[dict[str, Any]]:
        answer = self.call("POST", "/query", json_body={"table": table, "keys": keys})
        return [decode_row(r) for r in answer["rows"]]  # type: ignore[misc]


@contextmanager
def _node(url: str) -> Iterator[_Node]:
    node = _Node(url)
    try:
        yield node
    finally:
        node.close()


def attach(
    url: str,
    *,
    hub: str,
    node: str,
    db: str | None = None,
    policies: dict[str, str] | None = None,
    discard_local: bool = False,
    on_progress: Progress = None,
) -> dict[str, Any]:
    """Attach the database ``url`` as node ``node``: check (or create) its
    tables, install change capture, copy the server's rows."""
    _check_policies(policies or {})
    with HubClient(hub) as client:
        if db is None:
            names = client.api("GET", "/db/")["databases"]
            if len(names) != 1:
                raise InvalidInput(
                    "which database? give --db NAME",
                    hint=f"the hub has: {', '.join(names) or 'none'}",
                )
            db = str(names[0])
        found = client.api("GET", f"/db/{db}/schema")
        user = (client.node or {}).get("user")
    if not found["tables"]:  # nothing granted: a node of nothing, refused
        raise PermissionDenied(
            f"{user or 'this machine'} may read none of the tables of database "
            f"{db}; nothing was attached",
            where=hub,
            hint=f"an admin grants them: accord db grant {user or 'USER'} {db} "
            f"--tables A,B --access write --hub {hub}",
        )
    local = Local(url, create=True)
    try:
        local.use(found["tables"])
        if local.meta().get("node") not in (None, node):
            raise ConfigError(
                f"{url} is attached as another node already",
                hint="detach it first: accord db detach URL",
            )
        # checked before capture is installed: a refusal leaves it as it was
        if not discard_local and local.has_rows():
            raise PreconditionFailed(
                "the local tables already hold rows; the first copy would replace "
                "them; nothing was changed",
                where=url,
                hint="add --discard-local to replace them with the server's",
            )
        local.install()
        with local.engine.begin() as conn:
            local.set_meta(
                conn,
                hub=hub,
                db=db,
                node=node,
                version=0,
                schema=json.dumps(found["tables"]),
                writable=json.dumps(found["writable"]),
                policies=json.dumps(policies or {}),
            )
    finally:
        local.close()
    return repair(url, discard_local=True, on_progress=on_progress)


def detach(url: str) -> bool:
    """Remove change capture and accord's tables from the node ``url``.

    Answers whether anything of accord's was there to remove: False for a
    database never attached, or detached already (detaching again is
    harmless)."""
    local = Local(url)
    try:
        return capture.remove(local.engine)
    finally:
        local.close()


def repair(
    url: str, *, discard_local: bool = False, on_progress: Progress = None
) -> dict[str, Any]:
    """Local tracked rows := the server's; refused while un-pushed changes
    exist, unless ``discard_local``."""
    with _node(url) as node:
        _refuse_pending(node, url, discard_local, node.local.pending_count())
        version = node.call("POST", "/nodes", json_body={"node": node.meta["node"]})
        total = 0
        with node.local.engine.begin() as conn:  # exclusive on SQLite
            local, _, _ = node.local.changes(conn)
            _refuse_pending(node, url, discard_local, len(local))
            node.local.begin_merge(conn)
            node.local.clear_all(conn)
            for table in node.local.order:
                for rows in _pages(node, table):
                    node.local.insert_rows(conn, table, rows)
                    total += len(rows)
                    _tell(on_progress, "snapshot", table=table, rows=total)
            node.local.set_meta(
                conn, version=version["version"], push_id=None, push_seq=None
            )
        _tell(on_progress, "done", rows=total)
        return {"version": version["version"], "rows": total}


def _refuse_pending(node: _Node, url: str, discard_local: bool, pending: int) -> None:
    if pending and not discard_local:
        raise PreconditionFailed(
            f"{pending} local change(s) are not pushed yet; a repair would lose them",
            where=url,
            hint="push them first (accord db sync), or add --discard-local",
        )


def _pages(node: _Node, table: str) -> Iterator[list[dict[str, Any]]]:
    """A table's rows on the server, a page at a time, in key order."""
    after = None
    while True:
        params = {"table": table, **({"after": after} if after else {})}
        page = node.call("GET", "/snapshot", params=params)
        yield [decode_row(r) for r in page["rows"]]  # type: ignore[misc]
        after = page["next"]
        if after is None:
            return


def _check_policies(policies: dict[str, Any]) -> None:
    for table, policy in policies.items():
        if not callable(policy) and policy not in POLICIES:
            raise InvalidInput(
                f"unknown conflict policy {policy!r} for {table}",
                hint=", ".join(POLICIES),
            )


def pull(
    url: str, *, policies: dict[str, Policy] | None = None, on_progress: Progress = None
) -> dict[str, Any]:
    """Pull the hub's newer versions and merge them here, in one transaction."""
    with _node(url) as node:
        _settle(node, on_progress)
        return _pull(node, policies, on_progress)


def _pull(
    node: _Node, policies: dict[str, Policy] | None, on_progress: Progress
) -> dict[str, Any]:
    _tell(on_progress, "pull", version=node.version)
    answer = node.call(
        "POST", "/pull", json_body={"node": node.meta["node"], "version": node.version}
    )
    remote: dict[tuple[str, str], Change] = {}
    remote_keys: dict[str, list[Any]] = {}
    for table, key, op, row in answer["changes"]:
        if table in node.local.tables:
            remote[table, key] = Change(op, decode_row(row))
            desc = node.local.desc(table)
            if row is not None and len(desc["pk"]) == 1:
                value = remote[table, key].row[desc["pk"][0]]  # type: ignore[index]
                if isinstance(value, int):
                    remote_keys.setdefault(table, []).append(value)
    chosen = {**json.loads(node.meta.get("policies", "{}")), **(policies or {})}
    _check_policies(chosen)
    _tell(on_progress, "merge", changes=len(remote))
    descriptions = {d["name"]: d for d in node.local.descriptions}
    with node.local.engine.begin() as conn:
        node.local.begin_merge(conn)
        local, last, nothing = node.local.changes(conn)
        outcome = merge(local, remote, descriptions=descriptions, policies=chosen)
        node.local.apply(
            conn,
            outcome,
            last,
            nothing,
            node.fetch,
            {t: [max(v)] for t, v in remote_keys.items()},
        )
        node.local.set_meta(conn, version=answer["version"])
    _tell(on_progress, "done", version=answer["version"], changes=len(remote))
    return {
        "version": answer["version"],
        "pulled": len(remote),
        "conflicts": len(outcome.conflicts),
    }


def _settle(node: _Node, on_progress: Progress) -> None:
    """A push whose answer never came: send it again (the hub applies a
    push once), or forget it when the hub refuses it."""
    if node.local.meta().get("push_id"):
        with contextlib.suppress(PullFirst):  # not applied: pull, then push again
            _push(node, on_progress)


def push(url: str, *, on_progress: Progress = None) -> dict[str, Any]:
    """Push the local changes as one version; refused (``PullFirst``) while
    the hub has versions this node has not pulled."""
    with _node(url) as node:
        return _push(node, on_progress)


def _push(node: _Node, on_progress: Progress) -> dict[str, Any]:
    meta = node.local.meta()
    with node.local.engine.connect() as conn, conn.begin():
        local, last, _ = node.local.changes(conn)
        conflicts = conn.execute(
            sa.select(capture.conflicts).where(capture.conflicts.c.pushed.is_(False))
        ).all()
    if meta.get("push_seq"):
        last = int(meta["push_seq"])  # the same push again
    writable = set(json.loads(meta.get("writable", "[]")))
    changes = [
        [t, k, ch.op, encode_row(ch.row)]
        for (t, k), ch in local.items()
        if t in writable
    ]
    if not changes and not conflicts and not meta.get("push_id"):
        return {"version": node.version, "pushed": 0}
    push_id = meta.get("push_id") or uuid.uuid4().hex
    with node.local.engine.begin() as conn:
        node.local.set_meta(conn, push_id=push_id, push_seq=last)
    _tell(on_progress, "push", changes=len(changes))
    body = {
        "node": node.meta["node"],
        "push_id": push_id,
        "version": node.version,
        "changes": changes,
        "conflicts": [
            {
                "table": x.tbl,
                "key": x.pk,
                "kind": x.kind,
                "resolution": x.resolution,
                "at": x.at,
                "detail": json.loads(x.detail or "null"),
            }
            for x in conflicts
        ],
    }
    try:
        answer = node.call("POST", "/push", json_body=body)
    except PullFirst:  # not applied (the hub answers an applied push's version)
        with node.local.engine.begin() as conn:
            node.local.set_meta(conn, push_id=None, push_seq=None)
        raise
    with node.local.engine.begin() as conn:
        rows = (
            conn.execute(sa.select(capture.log.c.seq).where(capture.log.c.seq <= last))
            .scalars()
            .all()
        )
        if rows:
            conn.execute(capture.log.delete().where(capture.log.c.seq <= last))
        if conflicts:
            conn.execute(
                capture.conflicts.update()
                .where(capture.conflicts.c.id.in_([x.id for x in conflicts]))
                .values(pushed=True)
            )
        node.local.set_meta(
            conn, version=answer["version"], push_id=None, push_seq=None
        )
    _tell(on_progress, "done", version=answer["version"], changes=len(changes))
    return {"version": answer["version"], "pushed": len(changes)}


def sync(
    url: str,
    *,
    policies: dict[str, Policy] | None = None,
    retries: int = 8,
    on_progress: Progress = None,
) -> dict[str, Any]:
    """Pull, merge, push; when another node pushed in between, again, with
    growing pauses (at most ``retries`` times)."""
    with _node(url) as node:
        _settle(node, on_progress)
        pulled = conflicts = 0
        for attempt in range(retries + 1):
            got = _pull(node, policies, on_progress)
            pulled += got["pulled"]
            conflicts += got["conflicts"]
            try:
                sent = _push(node, on_progress)
            except PullFirst:
                if attempt == retries:
                    raise
                time.sleep(min(0.05 * 2**attempt, 2.0) * (0.5 + random.random()))
                continue
            return {
                **sent,
                "pulled": pulled,
                "conflicts": conflicts,
                "attempts": attempt + 1,
            }
    raise AssertionError("unreachable")


def query(
    url: str, table: str, where: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """The server's rows of ``table`` whose columns equal ``where``."""
    with _node(url) as node:
        answer = node.call(
            "POST", "/query", json_body={"table": table, "where": where or {}}
        )
        return [decode_row(r) for r in answer["rows"]]  # type: ignore[misc]


def status(url: str, *, remote: bool = True) -> dict[str, Any]:
    """Un-pushed changes, the last version, and the conflict log."""
    with _node(url) as node:
        with node.local.engine.connect() as conn:
            local, _, _ = node.local.changes(conn)
            conflicts = [
                dict(r._mapping)
                for r in conn.execute(
                    sa.select(capture.conflicts).order_by(capture.conflicts.c.id)
                )
            ]
        out: dict[str, Any] = {
            "node": node.meta["node"],
            "hub": node.meta["hub"],
            "db": node.meta["db"],
            "version": node.version,
            "pending": [
                {"table": t, "key": k, "op": ch.op}
                for (t, k), ch in sorted(local.items())
            ],
            "conflicts": conflicts,
            "push_in_flight": bool(node.local.meta().get("push_id")),
        }
        if remote:
            out["hub_version"] = node.call("GET", "/status")["version"]
        return out
