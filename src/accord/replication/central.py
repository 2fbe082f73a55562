"""The central database's side: versions, pushes, pulls, snapshots.

Every accepted push is one *version* (``accord_versions``); the log rows
it carried are stamped with it. Writes made directly on the central
database are captured by the same triggers with no version yet; they are
*sealed* into a version of their own before every push, pull and
snapshot, so nodes pull them like any other change.

A push is accepted only when no version newer than the node's touches
the tables it may read ("pull first" otherwise), and only once: it
carries an id, and sending it again answers the version it got (a push
whose answer was lost is not applied twice). Versions are taken under a
lock on ``accord_state`` (a row lock on PostgreSQL and MariaDB; SQLite
transactions are exclusive), so concurrent pushes are serialised.

The log is trimmed up to the oldest version a live node has; a node not
seen for ``expire_after`` seconds expires and no longer holds the trim
back (it must be repaired before it syncs again).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from accord.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    PullFirst,
    RepairNeeded,
)
from accord.replication import capture as c
from accord.replication import schema
from accord.replication.merge import compress
from accord.replication.rows import (
    clear_columns,
    delete_rows,
    insert_log,
    insert_rows,
    normal_key,
    read_rows,
    upsert_rows,
)
from accord.replication.values import decode_row, encode_row, key_text

__all__ = ["Central"]

EXPIRE_AFTER = 30 * 86400.0
_PAGE = 5000


class Central:
    """An opened central database with its tracked tables."""

    def __init__(self, url: str, expire_after: float = EXPIRE_AFTER) -> None:
        self.engine = schema.connect(url)
        self.expire_after = expire_after
        self.descriptions: list[dict[str, Any]] = []
        self.tables: dict[str, sa.Table] = {}
        self.order: list[str] = []

    def close(self) -> None:
        self.engine.dispose()

    # -- set up -----------------------------------------------------------------
    def init(self, names: list[str]) -> list[dict[str, Any]]:
        """Track ``names``: describe them, install capture, keep the schema."""
        descriptions = schema.describe(self.engine, names)
        c.install(self.engine, descriptions, central=True)
        with self.engine.begin() as conn:
            conn.execute(c.meta.delete().where(c.meta.c.name == "schema"))
            conn.execute(
                c.meta.insert().values(name="schema", value=json.dumps(descriptions))
            )
        self._use(descriptions)
        return descriptions

    def open(self) -> None:
        """Load the schema kept by ``init``."""
        try:
            with self.engine.connect() as conn:
                text = conn.execute(
                    sa.select(c.meta.c.value).where(c.meta.c.name == "schema")
                ).scalar()
        except sa.exc.SQLAlchemyError:
            text = None
        if text is None:
            raise NotFound(
                "this database is not set up for accord db",
                hint="run accord db init URL --hub HUB --tables ...",
            )
        self._use(json.loads(text))

    def remove(self) -> None:
        c.remove(self.engine)

    def _use(self, descriptions: list[dict[str, Any]]) -> None:
        self.descriptions = descriptions
        self.tables = schema.build_tables(
            descriptions, self.engine.dialect.name, sa.MetaData()
        )
        self.order = schema.dependency_order(descriptions)

    def describe(self, names: list[str]) -> list[dict[str, Any]]:
        return [d for d in self.descriptions if d["name"] in names]

    def desc(self, name: str) -> dict[str, Any]:
        for desc in self.descriptions:
            if desc["name"] == name:
                return desc
        raise NotFound(
            f"table {name} is not replicated",
            hint="see accord db status for the tables",
        )

    # -- grants -----------------------------------------------------------------
    def allowed(self, user: str, admin: bool, write: bool = False) -> list[str]:
        """The tables ``user`` may read (or write)."""
        names = [d["name"] for d in self.descriptions]
        if admin:
            return names
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(c.grants.c.tbl, c.grants.c.write).where(
                    c.grants.c.user_name == user
                )
            ).all()
        return [
            n for n in names if any(r.tbl == n and (r.write or not write) for r in rows)
        ]

    def grant(self, user: str, names: list[str], access: str) -> None:
        for name in names:
            self.desc(name)
        with self.engine.begin() as conn:
            conn.execute(
                c.grants.delete().where(
                    c.grants.c.user_name == user, c.grants.c.tbl.in_(names)
                )
            )
            if access != "none":
                conn.execute(
                    c.grants.insert(),
                    [
                        {"user_name": user, "tbl": n, "write": access == "write"}
                        for n in names
                    ],
                )

    # -- versions ---------------------------------------------------------------
    def _lock(self, conn: sa.Connection) -> None:
        query = sa.select(c.state.c.id).where(c.state.c.id == 1)
        if conn.dialect.name != "sqlite":
            query = query.with_for_update()
        conn.execute(query)

    def _seal(self, conn: sa.Connection) -> None:
        """Give the direct writes captured so far a version of their own."""
        count = conn.execute(
            sa.select(sa.func.count())
            .select_from(c.log)
            .where(c.log.c.version.is_(None))
        ).scalar()
        if not count:
            return
        version = conn.execute(
            c.versions.insert().values(node=None, created=time.time(), changes=count)
        ).inserted_primary_key[0]
        conn.execute(
            c.log.update().where(c.log.c.version.is_(None)).values(version=version)
        )

    def head(self, conn: sa.Connection) -> int:
        return int(conn.execute(sa.select(sa.func.max(c.versions.c.id))).scalar() or 0)

    def sealed(self) -> int:
        """Seal direct writes; the latest version."""
        with self.engine.begin() as conn:
            self._lock(conn)
            self._seal(conn)
            return self.head(conn)

    def _meta(self, conn: sa.Connection, name: str, default: str = "0") -> str:
        value = conn.execute(
            sa.select(c.meta.c.value).where(c.meta.c.name == name)
        ).scalar()
        return default if value is None else str(value)

    # -- nodes ------------------------------------------------------------------
    def register(self, name: str, user: str) -> int:
        """Register (or re-register, after a repair) node ``name``; the
        version its fresh copy starts from."""
        with self.engine.begin() as conn:
            self._lock(conn)
            self._seal(conn)
            head = self.head(conn)
            found = conn.execute(
                sa.select(c.nodes).where(c.nodes.c.name == name)
            ).first()
            if found is not None and found.user_name != user:
                raise PermissionDenied(f"node {name!r} belongs to another user")
            now = time.time()
            conn.execute(c.nodes.delete().where(c.nodes.c.name == name))
            conn.execute(
                c.nodes.insert().values(
                    name=name, user_name=user, version=head, created=now, last_seen=now
                )
            )
            return head

    def _node(self, conn: sa.Connection, name: str, user: str) -> Any:
        node = conn.execute(sa.select(c.nodes).where(c.nodes.c.name == name)).first()
        if node is None or node.user_name != user:
            raise RepairNeeded(
                f"node {name!r} is not registered with this database",
                hint="attach it: accord db attach URL --hub HUB --node NAME",
            )
        if node.expired is not None:
            raise RepairNeeded(
                f"node {name!r} expired (not seen for a long time)",
                hint="accord db repair URL gives it a fresh copy",
            )
        return node

    # -- push -------------------------------------------------------------------
    def push(
        self,
        *,
        node: str,
        user: str,
        readable: list[str],
        writable: list[str],
        push_id: str,
        base: int,
        changes: list[list[Any]],
        conflicts: list[dict[str, Any]],
        before_push: Callable[[dict[str, Any]], None] | None = None,
    ) -> int:
        """Apply one push as a new version; its number."""
        with self.engine.begin() as conn:
            self._lock(conn)
            done = conn.execute(
                sa.select(c.versions.c.id).where(c.versions.c.push_id == push_id)
            ).scalar()
            if done is not None:
                return int(done)
            self._node(conn, node, user)
            self._seal(conn)
            self._check_base(conn, base, readable)
            parsed = self._parse(changes, writable)
            if before_push is not None:
                before_push({"node": node, "user": user, "changes": parsed})
            version = conn.execute(
                c.versions.insert().values(
                    node=node, push_id=push_id, created=time.time(), changes=len(parsed)
                )
            ).inserted_primary_key[0]
            if parsed:
                with c.applying(conn):
                    self._apply(conn, parsed)
                insert_log(
                    conn,
                    c.log,
                    [
                        {"tbl": t, "pk": k, "op": op, "version": version}
                        for t, k, op, _ in parsed
                    ],
                )
            self._keep_conflicts(conn, node, conflicts)
            conn.execute(
                c.nodes.update()
                .where(c.nodes.c.name == node)
                .values(version=version, last_seen=time.time())
            )
            self._trim(conn, node)
            return int(version)

    def _check_base(self, conn: sa.Connection, base: int, readable: list[str]) -> None:
        head = self.head(conn)
        if base > head:
            raise RepairNeeded(
                "this node claims versions the hub never made",
                hint="accord db repair URL --discard-local",
            )
        newer = conn.execute(
            sa.select(sa.func.max(c.log.c.version)).where(
                c.log.c.version > base, c.log.c.tbl.in_(readable)
            )
        ).scalar()
        if newer is not None:
            raise PullFirst(
                f"the hub has newer versions (up to {head}); this node is at {base}",
                hint="pull first (accord db sync does pull, merge and push)",
            )

    def _parse(
        self, changes: list[list[Any]], writable: list[str]
    ) -> list[tuple[str, str, str, Any]]:
        parsed = []
        for item in changes:
            try:
                table, key, op, row = item
            except (TypeError, ValueError):
                raise InvalidInput("a malformed change in the push") from None
            if table not in writable:
                raise PermissionDenied(
                    f"this node may not write table {table}",
                    hint="ask an admin: accord db grant",
                )
            if op not in ("i", "u", "d"):
                raise InvalidInput(f"unknown change {op!r}")
            desc = self.desc(table)
            values = decode_row(row)
            if op != "d":
                if not isinstance(values, dict) or set(values) != {
                    col["name"] for col in desc["columns"]
                }:
                    raise InvalidInput(f"a change of {table} has the wrong columns")
                key = key_text([values[col] for col in desc["pk"]])
            parsed.append((table, key, op, values))
        return parsed

    def _apply(
        self, conn: sa.Connection, parsed: list[tuple[str, str, str, Any]]
    ) -> None:
        for at, table in enumerate(self.order):
            rows = [r for t, _, op, r in parsed if t == table and op != "d"]
            desc, sql_table = self.desc(table), self.tables[table]
            if desc["uniques"] and rows:
                gone = [  # this table's deletes, and those of the tables after it
                    (t, [k for t2, k, op, _ in parsed if t2 == t and op == "d"])
                    for t in reversed(self.order[at:])
                ]
                self._upsert_swapping(conn, sql_table, desc, rows, gone)
            else:
                upsert_rows(conn, sql_table, desc, rows)
        for table in reversed(self.order):
            keys = [k for t, k, op, _ in parsed if t == table and op == "d"]
            delete_rows(conn, self.tables[table], self.desc(table), keys)

    def _upsert_swapping(
        self,
        conn: sa.Connection,
        table: sa.Table,
        desc: dict[str, Any],
        rows: list[dict[str, Any]],
        gone: list[tuple[str, list[str]]],
    ) -> None:
        """Upsert; unique values swapped between rows (which no row-by-row
        order can apply) go in by deleting the rows, then inserting them.
        A value freed by a row this push deletes: that row steps aside
        first (its unique columns emptied; it is deleted at the end), or,
        when they cannot be empty, is deleted first, with the push's
        deletes of the tables after this one, children first (``gone``)."""
        written = [key_text([r[c] for c in desc["pk"]]) for r in rows]
        own = next((keys for name, keys in gone if name == desc["name"]), [])
        deletes = [(name, keys) for name, keys in gone if keys]
        unique = sorted({col for columns in desc["uniques"] for col in columns})

        def swap(first: list[tuple[str, list[str]]]) -> None:
            for name, keys in first:
                delete_rows(conn, self.tables[name], self.desc(name), keys)
            delete_rows(conn, table, desc, written)
            insert_rows(conn, table, rows)

        def aside() -> None:
            clear_columns(conn, table, desc, own, unique)
            upsert_rows(conn, table, desc, rows)

        ways: list[Callable[[], None]] = [
            lambda: upsert_rows(conn, table, desc, rows),
            lambda: swap([]),
        ]
        if own:
            ways.append(aside)
        if deletes:
            ways.append(lambda: swap(deletes))
        error = None
        for way in ways:
            try:
                with conn.begin_nested():
                    way()
                return
            except sa.exc.IntegrityError as exc:
                error = exc
        raise InvalidInput(
            f"the push breaks a unique constraint of {desc['name']} "
            f"(columns {desc['uniques']})",
            hint="pull, fix the rows, push again",
        ) from error

    def _keep_conflicts(
        self, conn: sa.Connection, node: str, conflicts: list[dict[str, Any]]
    ) -> None:
        rows = [
            {
                "node": node,
                "at": float(item.get("at", time.time())),
                "tbl": str(item["table"])[:128],
                "pk": str(item["key"])[:512],
                "kind": str(item["kind"])[:32],
                "resolution": str(item["resolution"]),
                "detail": json.dumps(item.get("detail")),
                "pushed": True,
            }
            for item in conflicts
            if isinstance(item, dict)
            and {"table", "key", "kind", "resolution"} <= set(item)
        ]
        if rows:
            conn.execute(c.conflicts.insert(), rows)

    # -- trim ---------------------------------------------------------------------
    def _trim(self, conn: sa.Connection, pushing: str) -> None:
        now = time.time()
        conn.execute(
            c.nodes.update()
            .where(
                c.nodes.c.expired.is_(None),
                c.nodes.c.name != pushing,
                c.nodes.c.last_seen < now - self.expire_after,
            )
            .values(expired=now)
        )
        floor = conn.execute(
            sa.select(sa.func.min(c.nodes.c.version)).where(c.nodes.c.expired.is_(None))
        ).scalar()
        if floor is None:
            floor = self.head(conn)
        trimmed = int(self._meta(conn, "trimmed"))
        if floor <= trimmed:
            return
        conn.execute(c.log.delete().where(c.log.c.version <= floor))
        conn.execute(c.meta.delete().where(c.meta.c.name == "trimmed"))
        conn.execute(c.meta.insert().values(name="trimmed", value=str(floor)))

    # -- pull -------------------------------------------------------------------
    def pull(
        self, *, node: str, user: str, base: int, readable: list[str]
    ) -> dict[str, Any]:
        """The changes since ``base`` to the tables ``readable``: compressed,
        with the rows' current values."""
        self.sealed()
        with (
            self.engine.connect().execution_options(
                isolation_level="REPEATABLE READ"
                if self.engine.dialect.name != "sqlite"
                else "SERIALIZABLE"
            ) as conn,
            conn.begin(),
        ):
            found = self._node(conn, node, user)
            if base < int(self._meta(conn, "trimmed")):
                raise RepairNeeded(
                    "this node is behind the hub's trimmed log",
                    hint="accord db repair URL gives it a fresh copy",
                )
            head = self.head(conn)
            first: dict[tuple[str, str], str] = {}
            query = (
                sa.select(c.log.c.tbl, c.log.c.pk, c.log.c.op)
                .where(c.log.c.version > base, c.log.c.tbl.in_(readable))
                .order_by(c.log.c.version, c.log.c.seq)
            )
            for row in conn.execute(query):
                first.setdefault((row.tbl, normal_key(row.pk)), row.op)
            changes = self._current(conn, first)
        with self.engine.begin() as conn:
            conn.execute(
                c.nodes.update()
                .where(c.nodes.c.name == found.name)
                .values(last_seen=time.time())
            )
        return {"version": head, "changes": changes}

    def _current(
        self, conn: sa.Connection, first: dict[tuple[str, str], str]
    ) -> list[list[Any]]:
        changes: list[list[Any]] = []
        for table in self.order:
            keys = [k for t, k in first if t == table]
            if not keys:
                continue
            rows = read_rows(conn, self.tables[table], self.desc(table), keys)
            for key in keys:
                op = compress(first[table, key], key in rows)
                if op is not None:
                    changes.append([table, key, op, encode_row(rows.get(key))])
        return changes

    # -- snapshot and query -----------------------------------------------------
    def snapshot(
        self, table: str, after: str | None, limit: int = _PAGE
    ) -> dict[str, Any]:
        """One page of ``table``'s rows in key order, after key ``after``."""
        desc, sql = self.desc(table), self.tables[table]
        columns = [sql.c[name] for name in desc["pk"]]
        query = sa.select(sql).order_by(*columns).limit(limit)
        if after is not None:
            from accord.replication.values import key_values

            values = key_values(after)
            if len(columns) == 1:
                query = query.where(columns[0] > values[0])
            else:
                query = query.where(sa.tuple_(*columns) > sa.tuple_(*values))
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        last = key_text([rows[-1][c] for c in desc["pk"]]) if rows else None
        return {
            "rows": [encode_row(r) for r in rows],
            "next": last if len(rows) == limit else None,
        }

    def query(
        self, table: str, where: dict[str, str], keys: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Rows of ``table`` whose columns equal ``where`` (text values,
        read as each column's type), or whose keys are ``keys``."""
        desc, sql = self.desc(table), self.tables[table]
        kinds = {col["name"]: col["kind"] for col in desc["columns"]}
        with self.engine.connect() as conn:
            if keys is not None:
                return [
                    encode_row(r) for r in read_rows(conn, sql, desc, keys).values()
                ]  # type: ignore[misc]
            query = sa.select(sql).order_by(*[sql.c[k] for k in desc["pk"]])
            for name, text in where.items():
                if name not in kinds:
                    raise InvalidInput(f"table {table} has no column {name!r}")
                query = query.where(sql.c[name] == _typed(kinds[name], text))
            return [
                encode_row(dict(r._mapping)) for r in conn.execute(query.limit(10000))
            ]  # type: ignore[misc]

    # -- status -------------------------------------------------------------------
    def status(
        self, user: str | None = None, readable: list[str] | None = None
    ) -> dict[str, Any]:
        """Versions, nodes and the latest conflicts: all of them, or those of
        ``user``'s nodes and ``readable`` tables."""
        nodes_query = sa.select(c.nodes).order_by(c.nodes.c.name)
        conflicts_query = sa.select(c.conflicts).order_by(c.conflicts.c.id.desc())
        tables = [d["name"] for d in self.descriptions]
        if user is not None:
            nodes_query = nodes_query.where(c.nodes.c.user_name == user)
            conflicts_query = conflicts_query.where(
                c.conflicts.c.tbl.in_(readable or [])
            )
            tables = [t for t in tables if t in (readable or [])]
        with self.engine.connect() as conn:
            nodes = [dict(r._mapping) for r in conn.execute(nodes_query)]
            conflicts = [
                dict(r._mapping) for r in conn.execute(conflicts_query.limit(500))
            ]
            return {
                "version": self.head(conn),
                "trimmed": int(self._meta(conn, "trimmed")),
                "tables": tables,
                "nodes": nodes,
                "conflicts": conflicts,
            }

    def recent_conflicts(
        self, readable: list[str] | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """The latest ``limit`` conflicts, newest first: all of them, or
        those of the ``readable`` tables."""
        cf = c.conflicts
        query = (
            sa.select(cf.c.node, cf.c.at, cf.c.tbl, cf.c.pk, cf.c.kind, cf.c.resolution)
            .add_columns(cf.c.detail)
            .order_by(cf.c.id.desc())
            .limit(limit)
        )
        if readable is not None:
            query = query.where(cf.c.tbl.in_(readable))
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for row in rows:
            row["policy"] = _policy(row.pop("detail"))
        return rows


def _policy(detail: str | None) -> str:
    """The policy a node recorded in a conflict's detail ('' if none)."""
    try:
        found = json.loads(detail or "null")
    except ValueError:
        return ""
    policy = found.get("policy") if isinstance(found, dict) else None
    return policy if isinstance(policy, str) else ""


def _typed(kind: str, text: str) -> Any:
    import datetime as dt
    from decimal import Decimal

    convert: dict[str, Any] = {
        "int": int,
        "float": float,
        "decimal": Decimal,
        "bool": lambda v: v.lower() in ("1", "true", "yes"),
        "date": dt.date.fromisoformat,
        "datetime": dt.datetime.fromisoformat,
        "time": dt.time.fromisoformat,
    }
    try:
        return convert.get(kind, str)(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a {kind} value") from None
