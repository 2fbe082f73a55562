"""Rows read and written by key, in batches, on any of the dialects.

Used on both ends: the hub applying a push to the central database, a
node applying a pull to its own. Writes here are never captured: callers
run them inside :func:`accord.replication.capture.applying`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from accord.replication.values import key_text, key_values

__all__ = [
    "clear_columns",
    "delete_rows",
    "insert_log",
    "insert_rows",
    "key_of",
    "normal_key",
    "read_rows",
    "upsert_rows",
]

_BATCH = 500


def key_of(desc: dict[str, Any], row: dict[str, Any]) -> str:
    return key_text([row[c] for c in desc["pk"]])


def normal_key(raw: str) -> str:
    """A key as a trigger wrote it, in the one text form accord uses."""
    if raw[1:-1].isdigit() and raw[0] == "[":
        return raw  # one non-negative integer: already in that form
    return key_text(json.loads(raw))


def _where(table: sa.Table, desc: dict[str, Any], keys: list[str]) -> Any:
    columns = [table.c[c] for c in desc["pk"]]
    values = [key_values(k) for k in keys]
    if len(columns) == 1:
        return columns[0].in_([v[0] for v in values])
    return sa.tuple_(*columns).in_([tuple(v) for v in values])


def _batches(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]


def read_rows(
    conn: sa.Connection, table: sa.Table, desc: dict[str, Any], keys: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """The rows that exist among ``keys``, by key."""
    found: dict[str, dict[str, Any]] = {}
    for batch in _batches(sorted(set(keys))):
        for row in conn.execute(sa.select(table).where(_where(table, desc, batch))):
            data = dict(row._mapping)
            found[key_of(desc, data)] = data
    return found


def insert_rows(
    conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]
) -> None:
    """Insert ``rows`` (all with the same columns) in one executemany
    (measured: faster here than multi-row VALUES statements, which
    SQLAlchemy compiles anew for every batch)."""
    if rows:
        conn.execute(table.insert(), rows)


def upsert_rows(
    conn: sa.Connection,
    table: sa.Table,
    desc: dict[str, Any],
    rows: list[dict[str, Any]],
) -> None:
    """Insert the rows that are new, update the others (by key): one
    ``INSERT ... ON CONFLICT (key) DO UPDATE`` a row on PostgreSQL and
    SQLite; on MariaDB (whose ``ON DUPLICATE KEY`` would also fire on a
    unique column) the keys present are read first."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        conn.execute(_on_conflict(table, desc, dialect), rows)
        return
    present = set(read_rows(conn, table, desc, [key_of(desc, r) for r in rows]))
    insert_rows(conn, table, [r for r in rows if key_of(desc, r) not in present])
    old = [r for r in rows if key_of(desc, r) in present]
    others = [c.name for c in table.columns if c.name not in desc["pk"]]
    if old and others:
        statement = (
            table.update()
            .where(*[table.c[c] == sa.bindparam(f"k_{c}") for c in desc["pk"]])
            .values({c: sa.bindparam(f"v_{c}") for c in others})
        )
        params = [
            {**{f"k_{c}": r[c] for c in desc["pk"]}, **{f"v_{c}": r[c] for c in others}}
            for r in old
        ]
        conn.execute(statement, params)


def _on_conflict(table: sa.Table, desc: dict[str, Any], dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(table)
    others = [c.name for c in table.columns if c.name not in desc["pk"]]
    if not others:
        return statement.on_conflict_do_nothing(index_elements=desc["pk"])
    return statement.on_conflict_do_update(
        index_elements=desc["pk"], set_={c: statement.excluded[c] for c in others}
    )


def insert_log(conn: sa.Connection, log: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Log rows of one version: one statement on PostgreSQL (arrays)."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        insert_rows(conn, log, rows)
        return
    conn.execute(
        sa.text(
            "INSERT INTO accord_log (tbl, pk, op, version) "
            "SELECT t, k, o, :v FROM unnest(CAST(:t AS text[]), CAST(:k AS text[]), "
            "CAST(:o AS text[])) AS x(t, k, o)"
        ),
        {
            "v": rows[0]["version"],
            "t": [r["tbl"] for r in rows],
            "k": [r["pk"] for r in rows],
            "o": [r["op"] for r in rows],
        },
    )


def delete_rows(
    conn: sa.Connection, table: sa.Table, desc: dict[str, Any], keys: Iterable[str]
) -> None:
    for batch in _batches(sorted(set(keys))):
        conn.execute(table.delete().where(_where(table, desc, batch)))


def clear_columns(
    conn: sa.Connection,
    table: sa.Table,
    desc: dict[str, Any],
    keys: Iterable[str],
    columns: Iterable[str],
) -> None:
    """Set ``columns`` to NULL in the rows ``keys`` (a row stepping aside
    from its unique values before it is deleted)."""
    values = dict.fromkeys(columns)
    for batch in _batches(sorted(set(keys))):
        conn.execute(table.update().where(_where(table, desc, batch)).values(values))
