"""Change capture: triggers that log every write into ``accord_log``.

Every insert, update and delete of a tracked table, whoever makes it (the
app, a SQL console, another program), adds a row to ``accord_log``: the
table, the key (the JSON list of its primary-key values), ``i``/``u``/``d``
and, for updates and deletes, the row's values before (used to see which
columns changed on this side when both sides changed a row). An update
that changes nothing is not logged; one that changes the key is logged as
a delete and an insert. accord's own writes (applying pulled or pushed
changes) are not logged: they are made with capture switched off for the
transaction (``applying``).

========== ============================================================
SQLite     three triggers a table; ``accord_state.applying`` switches
           them off inside accord's own (exclusive) transactions
PostgreSQL one trigger a table calling ``accord_capture()`` (plpgsql);
           ``SET LOCAL accord.applying`` switches it off
MariaDB    three triggers a table; the session variable
           ``@accord_applying`` switches them off
========== ============================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

__all__ = [
    "applying",
    "conflicts",
    "grants",
    "install",
    "internal",
    "log",
    "meta",
    "nodes",
    "remove",
    "versions",
]

internal = sa.MetaData()
_Big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

log = sa.Table(
    "accord_log",
    internal,
    sa.Column("seq", _Big, primary_key=True, autoincrement=True),
    sa.Column("tbl", sa.String(128), nullable=False),
    sa.Column("pk", sa.String(512), nullable=False),
    sa.Column("op", sa.String(1), nullable=False),
    sa.Column("old", sa.Text),
    sa.Column("version", _Big),  # central: the version that carried it
    sa.Index("accord_log_version", "version"),
    sa.Index("accord_log_key", "tbl", "pk"),
)
state = sa.Table(
    "accord_state",
    internal,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applying", sa.Integer, nullable=False),
)
meta = sa.Table(
    "accord_meta",
    internal,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
versions = sa.Table(
    "accord_versions",
    internal,
    sa.Column("id", _Big, primary_key=True, autoincrement=True),
    sa.Column("node", sa.String(200)),  # None: direct writes on the central DB
    sa.Column("push_id", sa.String(64), unique=True),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("changes", sa.Integer, nullable=False),
)
nodes = sa.Table(
    "accord_nodes",
    internal,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("user_name", sa.String(200), nullable=False),
    sa.Column("version", _Big, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
    sa.Column("expired", sa.Float),
)
conflicts = sa.Table(
    "accord_conflicts",
    internal,
    sa.Column("id", _Big, primary_key=True, autoincrement=True),
    sa.Column("node", sa.String(200)),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("tbl", sa.String(128), nullable=False),
    sa.Column("pk", sa.String(512), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("resolution", sa.Text, nullable=False),
    sa.Column("detail", sa.Text),  # JSON: local and remote values
    sa.Column("pushed", sa.Boolean, nullable=False, default=False),
)
grants = sa.Table(
    "accord_grants",
    internal,
    sa.Column("user_name", sa.String(200), primary_key=True),
    sa.Column("tbl", sa.String(128), primary_key=True),
    sa.Column("write", sa.Boolean, nullable=False),
)

_CENTRAL = [log, state, meta, versions, nodes, conflicts, grants]
_CLIENT = [log, state, meta, conflicts]


def install(
    engine: sa.Engine, descriptions: list[dict[str, Any]], *, central: bool
) -> None:
    """Create accord's tables and the capture triggers (idempotent)."""
    internal.create_all(engine, tables=_CENTRAL if central else _CLIENT)
    dialect = engine.dialect.name
    with engine.begin() as conn:
        if conn.execute(sa.select(state.c.id)).first() is None:
            conn.execute(state.insert().values(id=1, applying=0))
        if dialect == "postgresql":
            conn.exec_driver_sql(_PG_FUNCTION)
        for desc in descriptions:
            for statement in _drop(dialect, desc["name"], conn):
                conn.exec_driver_sql(statement)
            for statement in _create(dialect, desc, conn):
                conn.exec_driver_sql(statement)


def remove(engine: sa.Engine) -> bool:
    """Drop the capture triggers and accord's tables. The triggers go from
    every table here (``DROP ... IF EXISTS``), not only those a node or a
    central database names: a trigger left on a table whose log is gone
    would fail the app's every write to it.

    Answers whether anything of accord's was there (one of its tables, a
    capture trigger, or, on PostgreSQL, the ``accord_capture()`` function):
    False when the database never had capture, or had it removed already
    (removing is idempotent)."""
    dialect = engine.dialect.name
    present = set(sa.inspect(engine).get_table_names())
    ours = {table.name for table in internal.sorted_tables}
    others = sorted(present - ours)
    with engine.begin() as conn:
        found = bool(present & ours) or _capture_present(dialect, others, conn)
        for name in others:
            for statement in _drop(dialect, name, conn):
                conn.exec_driver_sql(statement)
        if dialect == "postgresql":
            conn.exec_driver_sql("DROP FUNCTION IF EXISTS accord_capture() CASCADE")
    internal.drop_all(engine, tables=_CENTRAL, checkfirst=True)
    return found


def _capture_present(dialect: str, tables: list[str], conn: sa.Connection) -> bool:
    """Whether one of the triggers ``_drop`` drops from ``tables`` (or, on
    PostgreSQL, the function they call) exists, as the catalog says."""
    if dialect == "postgresql":
        if conn.exec_driver_sql(
            "SELECT to_regprocedure('accord_capture()') IS NOT NULL"
        ).scalar():
            return True
        on = conn.exec_driver_sql(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE t.tgname = 'accord_capture' AND NOT t.tgisinternal"
            " AND c.relnamespace ="
            " (SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
        ).scalars()
        return not set(tables).isdisjoint(on)
    if dialect == "mysql":
        query = (
            "SELECT trigger_name FROM information_schema.triggers"
            " WHERE trigger_schema = DATABASE()"
        )
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    names = {_trigger_name(table, op) for table in tables for op in "iud"}
    return not names.isdisjoint(conn.exec_driver_sql(query).scalars())


@contextmanager
def applying(conn: sa.Connection) -> Iterator[None]:
    """Within this block, writes on ``conn`` are not captured."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.exec_driver_sql("SELECT set_config('accord.applying', '1', true)")
    elif dialect == "mysql":
        conn.exec_driver_sql("SET @accord_applying = 1")
    else:
        conn.execute(state.update().values(applying=1))
    try:
        yield
    finally:
        if dialect == "postgresql":
            conn.exec_driver_sql("SELECT set_config('accord.applying', '', true)")
        elif dialect == "mysql":
            conn.exec_driver_sql("SET @accord_applying = NULL")
        else:
            conn.execute(state.update().values(applying=0))


def _q(conn: sa.Connection, name: str) -> str:
    return str(conn.dialect.identifier_preparer.quote(name))


def _lit(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _drop(dialect: str, table: str, conn: sa.Connection) -> list[str]:
    if dialect == "postgresql":
        return [f"DROP TRIGGER IF EXISTS accord_capture ON {_q(conn, table)}"]
    return [
        f"DROP TRIGGER IF EXISTS {_q(conn, _trigger_name(table, op))}" for op in "iud"
    ]


def _trigger_name(table: str, op: str) -> str:
    """A SQLite or MariaDB capture trigger's name (``op``: i, u or d)."""
    return f"accord_{table}_{op}"


def _create(dialect: str, desc: dict[str, Any], conn: sa.Connection) -> list[str]:
    if dialect == "postgresql":
        args = ", ".join(_lit(c) for c in desc["pk"])
        return [
            f"CREATE TRIGGER accord_capture AFTER INSERT OR UPDATE OR DELETE ON "
            f"{_q(conn, desc['name'])} FOR EACH ROW EXECUTE FUNCTION "
            f"accord_capture({args})"
        ]
    if dialect == "mysql":
        return _mysql(desc, conn)
    return _sqlite(desc, conn)


_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION accord_capture() RETURNS trigger AS $$
DECLARE
  o jsonb; n jsonb; oldk text; newk text;
BEGIN
  IF coalesce(current_setting('accord.applying', true), '') = '1' THEN
    RETURN NULL;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    o := to_jsonb(OLD);
    SELECT jsonb_agg(o -> a ORDER BY i)::text INTO oldk
      FROM unnest(TG_ARGV) WITH ORDINALITY AS x(a, i);
  END IF;
  IF TG_OP <> 'DELETE' THEN
    n := to_jsonb(NEW);
    SELECT jsonb_agg(n -> a ORDER BY i)::text INTO newk
      FROM unnest(TG_ARGV) WITH ORDINALITY AS x(a, i);
  END IF;
  IF TG_OP = 'INSERT' THEN
    INSERT INTO accord_log (tbl, pk, op) VALUES (TG_TABLE_NAME, newk, 'i');
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO accord_log (tbl, pk, op, old)
      VALUES (TG_TABLE_NAME, oldk, 'd', o::text);
  ELSIF o = n THEN
    RETURN NULL;
  ELSIF oldk = newk THEN
    INSERT INTO accord_log (tbl, pk, op, old)
      VALUES (TG_TABLE_NAME, oldk, 'u', o::text);
  ELSE
    INSERT INTO accord_log (tbl, pk, op, old)
      VALUES (TG_TABLE_NAME, oldk, 'd', o::text), (TG_TABLE_NAME, newk, 'i', NULL);
  END IF;
  RETURN NULL;
END
$$ LANGUAGE plpgsql
"""


def _old_sqlite(desc: dict[str, Any], conn: sa.Connection) -> str:
    parts = []
    for column in desc["columns"]:
        ref = f"OLD.{_q(conn, column['name'])}"
        if column["kind"] == "bytes":
            ref = f"hex({ref})"
        parts.append(f"{_lit(column['name'])}, {ref}")
    return f"json_object({', '.join(parts)})"


def _sqlite(desc: dict[str, Any], conn: sa.Connection) -> list[str]:
    table, name = _q(conn, desc["name"]), _lit(desc["name"])

    def key(row: str) -> str:
        return (
            "json_array(" + ", ".join(f"{row}.{_q(conn, c)}" for c in desc["pk"]) + ")"
        )

    live = "(SELECT applying FROM accord_state WHERE id = 1) = 0"
    changed = " OR ".join(
        f"OLD.{_q(conn, c['name'])} IS NOT NEW.{_q(conn, c['name'])}"
        for c in desc["columns"]
    )
    old = _old_sqlite(desc, conn)
    trigger = conn.dialect.identifier_preparer.quote
    return [
        f"CREATE TRIGGER {trigger(_trigger_name(desc['name'], 'i'))} AFTER INSERT ON "
        f"{table} WHEN {live} BEGIN INSERT INTO accord_log (tbl, pk, op) "
        f"VALUES ({name}, {key('NEW')}, 'i'); END",
        f"CREATE TRIGGER {trigger(_trigger_name(desc['name'], 'u'))} AFTER UPDATE ON "
        f"{table} WHEN {live} AND ({changed}) BEGIN "
        f"INSERT INTO accord_log (tbl, pk, op, old) SELECT {name}, {key('OLD')}, "
        f"CASE WHEN {key('OLD')} = {key('NEW')} THEN 'u' ELSE 'd' END, {old}; "
        f"INSERT INTO accord_log (tbl, pk, op) SELECT {name}, {key('NEW')}, 'i' "
        f"WHERE {key('OLD')} <> {key('NEW')}; END",
        f"CREATE TRIGGER {trigger(_trigger_name(desc['name'], 'd'))} AFTER DELETE ON "
        f"{table} WHEN {live} BEGIN INSERT INTO accord_log (tbl, pk, op, old) "
        f"VALUES ({name}, {key('OLD')}, 'd', {old}); END",
    ]


def _mysql(desc: dict[str, Any], conn: sa.Connection) -> list[str]:
    table, name = _q(conn, desc["name"]), _lit(desc["name"])

    def key(row: str) -> str:
        return (
            "JSON_ARRAY(" + ", ".join(f"{row}.{_q(conn, c)}" for c in desc["pk"]) + ")"
        )

    parts = []
    for column in desc["columns"]:
        ref = f"OLD.{_q(conn, column['name'])}"
        if column["kind"] == "bytes":
            ref = f"TO_BASE64({ref})"
        parts.append(f"{_lit(column['name'])}, {ref}")
    old = f"JSON_OBJECT({', '.join(parts)})"
    same = " AND ".join(
        f"OLD.{_q(conn, c['name'])} <=> NEW.{_q(conn, c['name'])}"
        for c in desc["columns"]
    )
    same_key = " AND ".join(
        f"OLD.{_q(conn, c)} <=> NEW.{_q(conn, c)}" for c in desc["pk"]
    )
    trigger = conn.dialect.identifier_preparer.quote
    live = "@accord_applying IS NULL"
    return [
        f"CREATE TRIGGER {trigger(_trigger_name(desc['name'], 'i'))} AFTER INSERT ON "
        f"{table} FOR EACH ROW BEGIN IF {live} THEN INSERT INTO accord_log "
        f"(tbl, pk, op) VALUES ({name}, {key('NEW')}, 'i'); END IF; END",
        f"CREATE TRIGGER {trigger(_trigger_name(desc['name'], 'u'))} AFTER UPDATE ON "
        f"{table} FOR EACH ROW BEGIN IF {live} AND NOT ({same}) THEN "
        f"IF {same_key} THEN INSERT INTO accord_log (tbl, pk, op, old) VALUES "
        f"({name}, {key('OLD')}, 'u', {old}); ELSE INSERT INTO accord_log "
        f"(tbl, pk, op, old) VALUES ({name}, {key('OLD')}, 'd', {old}), "
        f"({name}, {key('NEW')}, 'i', NULL); END IF; END IF; END",
        f"CREATE TRIGGER {trigger(_trigger_name(desc['name'], 'd'))} AFTER DELETE ON "
        f"{table} FOR EACH ROW BEGIN IF {live} THEN INSERT INTO accord_log "
        f"(tbl, pk, op, old) VALUES ({name}, {key('OLD')}, 'd', {old}); END IF; END",
    ]
