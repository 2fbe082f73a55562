"""A node's own database: its state, its changes, and merging a pull.

A node keeps, beside its tables, ``accord_log`` (filled by the capture
triggers), ``accord_meta`` (hub, database, node, version, schema, the
push in flight) and ``accord_conflicts``. A merge runs in one
transaction (exclusive on SQLite, foreign keys checked at its end), so a
crash leaves the database as before it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from accord.replication import capture as c
from accord.replication import schema
from accord.replication.merge import Change, Conflict, Outcome, compress
from accord.replication.rows import (
    delete_rows,
    key_of,
    normal_key,
    read_rows,
    upsert_rows,
)
from accord.replication.rows import (
    insert_rows as bulk_insert,
)
from accord.replication.values import encode_row, key_text, key_values

__all__ = ["Local"]

Key = tuple[str, str]


class Local:
    """A node's database, opened."""

    def __init__(self, url: str, *, create: bool = False) -> None:
        self.url = url
        self.engine = schema.connect(url, create=create)
        self.dialect = self.engine.dialect.name
        self.descriptions: list[dict[str, Any]] = []
        self.tables: dict[str, sa.Table] = {}
        self.order: list[str] = []

    def close(self) -> None:
        self.engine.dispose()

    # -- state --------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        try:
            with self.engine.connect() as conn:
                return dict(
                    conn.execute(sa.select(c.meta.c.name, c.meta.c.value)).all()
                )  # type: ignore[arg-type]
        except sa.exc.SQLAlchemyError:
            return {}

    def set_meta(self, conn: sa.Connection, **values: Any) -> None:
        for name, value in values.items():
            conn.execute(c.meta.delete().where(c.meta.c.name == name))
            if value is not None:
                conn.execute(c.meta.insert().values(name=name, value=str(value)))

    def use(self, descriptions: list[dict[str, Any]]) -> None:
        self.descriptions = descriptions
        self.tables = schema.build_tables(descriptions, self.dialect, sa.MetaData())
        self.order = schema.dependency_order(descriptions)

    def desc(self, name: str) -> dict[str, Any]:
        return next(d for d in self.descriptions if d["name"] == name)

    def install(self) -> list[str]:
        """Create missing tables (check the others), install capture."""
        created = schema.check_columns(self.engine, self.descriptions)
        c.install(self.engine, self.descriptions, central=False)
        return created

    def has_rows(self) -> bool:
        """True when a replicated table that exists here holds a row."""
        present = set(sa.inspect(self.engine).get_table_names())
        with self.engine.connect() as conn:
            return any(
                conn.execute(sa.select(sa.literal(1)).select_from(t).limit(1)).first()
                for t in self.tables.values()
                if t.name in present
            )

    def pending_count(self) -> int:
        with self.engine.connect() as conn:
            return len(self.changes(conn)[0])

    # -- local changes ------------------------------------------------------------
    def changes(self, conn: sa.Connection) -> tuple[dict[Key, Change], int, set[Key]]:
        """The net local changes, the last log seq read, and the keys whose
        log entries add up to nothing."""
        first: dict[Key, tuple[str, str | None]] = {}
        last = 0
        for row in conn.execute(sa.select(c.log).order_by(c.log.c.seq)):
            last = row.seq
            if row.tbl not in self.tables:
                continue
            key = (row.tbl, normal_key(row.pk))
            first.setdefault(key, (row.op, row.old))
        out: dict[Key, Change] = {}
        nothing: set[Key] = set()
        for table in self.order:
            keys = [k for t, k in first if t == table]
            if not keys:
                continue
            desc = self.desc(table)
            rows = read_rows(conn, self.tables[table], desc, keys)
            for key in keys:
                op, old = first[table, key]
                net = compress(op, key in rows)
                if net is None:
                    nothing.add((table, key))
                    continue
                base = self._decode_old(old, desc) if op != "i" else None
                out[table, key] = Change(net, rows.get(key), base)
        return out, last, nothing

    def _decode_old(
        self, text: str | None, desc: dict[str, Any]
    ) -> dict[str, Any] | None:
        if not text:
            return None
        try:
            data = json.loads(text, parse_float=Decimal)
            return {
                col["name"]: _from_storage(col, data.get(col["name"]), self.dialect)
                for col in desc["columns"]
            }
        except (ValueError, TypeError, binascii.Error):
            return None

    # -- applying a pull ------------------------------------------------------------
    def begin_merge(self, conn: sa.Connection) -> None:
        if self.dialect == "sqlite":
            conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
        elif self.dialect == "postgresql":
            conn.exec_driver_sql("SET CONSTRAINTS ALL DEFERRED")

    def apply(
        self,
        conn: sa.Connection,
        outcome: Outcome,
        last_seq: int,
        nothing: set[Key],
        fetch: Callable[[str, list[str]], list[dict[str, Any]]],
        remote_keys: dict[str, list[Any]],
    ) -> None:
        with c.applying(conn):
            for key in sorted(outcome.rekey):
                self._rekey(conn, key, remote_keys.get(key[0], []))
            undone = self._make_room(conn, outcome, fetch)
            for table in self.order:
                rows = [
                    r
                    for (t, _), r in outcome.write.items()
                    if t == table and r is not None
                ]
                upsert_rows(conn, self.tables[table], self.desc(table), rows)
            for table in reversed(self.order):
                keys = [
                    k for (t, k), r in outcome.write.items() if t == table and r is None
                ]
                delete_rows(conn, self.tables[table], self.desc(table), keys)
            for table in self.order:
                keys = [k for t, k in outcome.restore if t == table]
                if keys:
                    upsert_rows(
                        conn, self.tables[table], self.desc(table), fetch(table, keys)
                    )
            self._undo_dependents(conn, outcome, fetch, undone)
        self._forget(conn, (outcome.forget | nothing) - outcome.push, last_seq)
        logged = {
            (r.tbl, normal_key(r.pk))
            for r in conn.execute(sa.select(c.log.c.tbl, c.log.c.pk))
        }
        extra = [
            {"tbl": t, "pk": k, "op": "u"}
            for t, k in outcome.push
            if (t, k) not in logged
        ]
        if extra:
            conn.execute(c.log.insert(), extra)
        self.keep_conflicts(conn, outcome.conflicts)

    def _forget(self, conn: sa.Connection, keys: set[Key], last_seq: int) -> None:
        by_table: dict[str, list[str]] = {}
        for table, key in keys:
            by_table.setdefault(table, []).append(key)
        if not by_table:
            return
        for row in conn.execute(
            sa.select(c.log.c.seq, c.log.c.tbl, c.log.c.pk).where(
                c.log.c.seq <= last_seq
            )
        ).all():
            if row.tbl in by_table and normal_key(row.pk) in by_table[row.tbl]:
                conn.execute(c.log.delete().where(c.log.c.seq == row.seq))

    def _rekey(self, conn: sa.Connection, key: Key, remote_max: list[Any]) -> None:
        """Give a local insert a fresh integer key; rows pointing to it follow."""
        table, old = key
        desc = self.desc(table)
        sql = self.tables[table]
        (column,) = desc["pk"]
        local_max = conn.execute(sa.select(sa.func.max(sql.c[column]))).scalar() or 0
        new = max([local_max, *remote_max]) + 1
        old_value = key_values(old)[0]
        conn.execute(
            sql.update().where(sql.c[column] == old_value).values({column: new})
        )
        for child in self.descriptions:
            for fk in child["fks"]:
                if fk["table"] == table and fk["refcolumns"] == [column]:
                    target = self.tables[child["name"]].c[fk["columns"][0]]
                    conn.execute(
                        self.tables[child["name"]]
                        .update()
                        .where(target == old_value)
                        .values({target.name: new})
                    )
        new_key = key_text([new])
        conn.execute(
            c.log.update()
            .where(c.log.c.tbl == table, c.log.c.pk.in_(_raw_forms(old)))
            .values(pk=new_key)
        )

    def _make_room(
        self,
        conn: sa.Connection,
        outcome: Outcome,
        fetch: Callable[[str, list[str]], list[dict[str, Any]]],
    ) -> list[tuple[str, dict[str, Any]]]:
        """Unique values taken by another local row: a row the pull also
        writes steps aside (a swap); a row changed here loses its change
        (restored from the server, the change kept in the conflict log).
        Answers the rows whose local change was undone, as they were."""
        undone: list[tuple[str, dict[str, Any]]] = []
        for table in self.order:
            desc = self.desc(table)
            if not desc["uniques"]:
                continue
            incoming = {
                k: r
                for (t, k), r in outcome.write.items()
                if t == table and r is not None
            }
            sql = self.tables[table]
            aside: set[str] = set()
            lost: dict[str, dict[str, Any]] = {}
            for key, row in incoming.items():
                for unique in desc["uniques"]:
                    values = [row[col] for col in unique]
                    if any(v is None for v in values):
                        continue
                    query = sa.select(sql).where(
                        *[
                            sql.c[col] == v
                            for col, v in zip(unique, values, strict=True)
                        ]
                    )
                    for found in conn.execute(query):
                        other = key_of(desc, dict(found._mapping))
                        if other == key:
                            continue
                        if other in incoming or (
                            (table, other) in outcome.write
                            and outcome.write[table, other] is None
                        ):
                            aside.add(other)  # rewritten or deleted by the pull
                        else:
                            lost[other] = dict(found._mapping)
                            outcome.conflicts.append(
                                Conflict(
                                    table,
                                    other,
                                    "unique",
                                    f"local change undone: {', '.join(unique)} "
                                    f"taken by {key} on the server",
                                    encode_row(dict(found._mapping)),
                                    None,
                                )
                            )
            delete_rows(conn, sql, desc, aside | set(lost))
            if lost:
                rows = fetch(table, list(lost))
                upsert_rows(conn, sql, desc, rows)
                for other in lost:
                    outcome.forget.add((table, other))
                    outcome.push.discard((table, other))
                    undone.append((table, lost[other]))
        return undone

    def _undo_dependents(
        self,
        conn: sa.Connection,
        outcome: Outcome,
        fetch: Callable[[str, list[str]], list[dict[str, Any]]],
        undone: list[tuple[str, dict[str, Any]]],
    ) -> None:
        """Local rows referring to a row whose local change was undone (a
        local insert the server never had is gone) cannot be kept either:
        each gets the server's row back, or goes when the server has none;
        each is kept in the conflict log and not pushed. Rows gone in turn
        are followed (their own children), so the merge commits."""
        seen: set[Key] = set()
        while undone:
            parent, row = undone.pop()
            for child in self.descriptions:
                for fk in child["fks"]:
                    if fk["table"] == parent:
                        undone += self._undo_children(
                            conn, outcome, fetch, (parent, row), child, fk, seen
                        )

    def _undo_children(
        self,
        conn: sa.Connection,
        outcome: Outcome,
        fetch: Callable[[str, list[str]], list[dict[str, Any]]],
        gone: tuple[str, dict[str, Any]],
        child: dict[str, Any],
        fk: dict[str, Any],
        seen: set[Key],
    ) -> list[tuple[str, dict[str, Any]]]:
        parent, row = gone
        values = [row[col] for col in fk["refcolumns"]]
        if any(v is None for v in values):
            return []
        target = self.tables[parent]
        still = sa.select(sa.literal(1)).select_from(target)
        still = still.where(
            *[
                target.c[col] == v
                for col, v in zip(fk["refcolumns"], values, strict=True)
            ]
        )
        if conn.execute(still.limit(1)).first() is not None:
            return []  # the value is there again (the server's row)
        sql = self.tables[child["name"]]
        query = sa.select(sql).where(
            *[sql.c[col] == v for col, v in zip(fk["columns"], values, strict=True)]
        )
        found = {
            key_of(child, dict(r._mapping)): dict(r._mapping)
            for r in conn.execute(query)
        }
        found = {k: r for k, r in found.items() if (child["name"], k) not in seen}
        if not found:
            return []
        server = {key_of(child, r): r for r in fetch(child["name"], list(found))}
        delete_rows(conn, sql, child, list(found))
        upsert_rows(conn, sql, child, list(server.values()))
        pointed = f"{parent} {key_of(self.desc(parent), row)}"
        for key, mine in found.items():
            seen.add((child["name"], key))
            outcome.forget.add((child["name"], key))
            outcome.push.discard((child["name"], key))
            theirs = server.get(key)
            outcome.conflicts.append(
                Conflict(
                    child["name"],
                    key,
                    "dependency",
                    f"local change undone: it refers to {pointed}, whose local "
                    "change was undone"
                    + ("; the server's row restored" if theirs else "; row removed"),
                    mine,
                    theirs,
                )
            )
        self._restore_parents(conn, outcome, fetch, child, list(server.values()))
        return [(child["name"], r) for r in found.values()]

    def _restore_parents(
        self,
        conn: sa.Connection,
        outcome: Outcome,
        fetch: Callable[[str, list[str]], list[dict[str, Any]]],
        desc: dict[str, Any],
        rows: list[dict[str, Any]],
    ) -> None:
        """Server rows written back here whose parent was deleted here: the
        parent comes back from the server (the local delete undone)."""
        for fk in desc["fks"]:
            parent = self.desc(fk["table"])
            if list(fk["refcolumns"]) != list(parent["pk"]):
                continue
            keys = {
                key_text([r[col] for col in fk["columns"]])
                for r in rows
                if all(r[col] is not None for col in fk["columns"])
            }
            sql = self.tables[parent["name"]]
            missing = sorted(keys - set(read_rows(conn, sql, parent, keys)))
            if not missing:
                continue
            back = fetch(parent["name"], missing)
            upsert_rows(conn, sql, parent, back)
            for key in missing:
                outcome.forget.add((parent["name"], key))
                outcome.push.discard((parent["name"], key))
                outcome.conflicts.append(
                    Conflict(
                        parent["name"],
                        key,
                        "reverse dependency",
                        "local delete undone: a row restored from the server "
                        "refers to it",
                    )
                )
            self._restore_parents(conn, outcome, fetch, parent, back)

    def keep_conflicts(self, conn: sa.Connection, conflicts: list[Conflict]) -> None:
        if not conflicts:
            return
        conn.execute(
            c.conflicts.insert(),
            [
                {
                    "node": None,
                    "at": time.time(),
                    "tbl": x.table,
                    "pk": x.key,
                    "kind": x.kind,
                    "resolution": x.resolution,
                    "pushed": False,
                    "detail": json.dumps(
                        {
                            "local": _jsonable(x.local),
                            "remote": _jsonable(x.remote),
                            "policy": x.policy or None,
                        }
                    ),
                }
                for x in conflicts
            ],
        )

    # -- snapshot -------------------------------------------------------------------
    def clear_all(self, conn: sa.Connection) -> None:
        """Empty the tracked tables and the log (a repair's first step)."""
        with c.applying(conn):
            for table in reversed(self.order):
                conn.execute(self.tables[table].delete())
        conn.execute(c.log.delete())

    def insert_rows(
        self, conn: sa.Connection, table: str, rows: list[dict[str, Any]]
    ) -> None:
        """Insert rows as they are, without capturing them."""
        if rows:
            with c.applying(conn):
                bulk_insert(conn, self.tables[table], rows)


def _raw_forms(key: str) -> list[str]:
    """The texts a trigger may have written for ``key``."""
    values = json.loads(key)
    return [key, json.dumps(values), json.dumps(values, separators=(",", ":"))]


def _jsonable(row: Any) -> Any:
    if row is None:
        return None
    if all(not isinstance(v, (bytes, Decimal, dt.date, dt.time)) for v in row.values()):
        return row
    return encode_row(row)


def _from_storage(column: dict[str, Any], value: Any, dialect: str) -> Any:
    """A value from a trigger's JSON of the row before, as Python."""
    if value is None:
        return None
    kind = column["kind"]
    if kind == "bytes":
        if dialect == "sqlite":
            return bytes.fromhex(value)
        if dialect == "postgresql":
            return bytes.fromhex(value[2:])
        return base64.b64decode(value)
    if kind == "decimal":
        return Decimal(str(value))
    if kind == "datetime":
        return dt.datetime.fromisoformat(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "time":
        return dt.time.fromisoformat(value)
    if kind == "json" and isinstance(value, str) and dialect != "postgresql":
        return json.loads(value, parse_float=Decimal)
    if kind == "bool":
        return bool(value)
    if kind == "float":
        return float(value)
    return value
