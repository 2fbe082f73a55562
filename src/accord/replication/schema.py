"""Tables described portably, opened, compared and created.

The central database's tracked tables are reflected once, at
``accord db init``, into a *description* (plain JSON: columns with a kind,
primary key, foreign keys, unique constraints). A client builds its
SQLAlchemy tables from that description for its own dialect, so values
keep their exact type on every database: on SQLite, decimals and times or
datetimes with a time zone are kept as ISO text (SQLite has no such
types), never as floats or naive stamps.

``connect`` opens a database URL with the driver accord installs
(``postgresql://`` through psycopg, ``mysql://`` / ``mariadb://`` through
PyMySQL) and turns a bad URL into a clear error.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from accord.errors import ConfigError, InvalidInput, NotFound, Unreachable
from accord.sqlurls import driver_url, missing_sqlite_file, sql_reason

__all__ = [
    "build_tables",
    "check_columns",
    "connect",
    "dependency_order",
    "describe",
    "driver_url",
    "kind_of",
]

_KEY_KINDS = {"int", "str"}


def connect(url: str, *, create: bool = True) -> sa.Engine:
    """An engine for ``url``, checked by connecting once. A SQLite file
    that does not exist is made only with ``create`` (connecting makes it:
    a mistyped path would leave an empty database behind)."""
    try:
        engine = sa.create_engine(driver_url(url), pool_pre_ping=True)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ValueError) as exc:
        raise ConfigError(
            f"not a database URL accord can open: {url!r} ({exc})",
            hint="write sqlite:///PATH, postgresql://USER@HOST/DB or "
            "mysql://USER@HOST/DB",
        ) from exc
    if not create and missing_sqlite_file(url) is not None:
        engine.dispose()
        raise NotFound(
            "no such database file",
            where=url,
            hint="check the path; accord db attach makes a new one",
        )
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_setup)
        event.listen(engine, "begin", _sqlite_begin)
    elif engine.dialect.name not in ("postgresql", "mysql"):
        raise ConfigError(
            f"accord db does not support {engine.dialect.name} databases",
            hint="use SQLite, PostgreSQL or MariaDB/MySQL",
        )
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise Unreachable(
            f"cannot open the database: {sql_reason(exc)}",
            where=sa.make_url(driver_url(url)).render_as_string(hide_password=True),
            hint="check the URL, that the server runs and that the database exists",
        ) from exc
    return engine


def _sqlite_setup(dbapi: Any, record: Any) -> None:
    dbapi.isolation_level = None  # transactions are begun in _sqlite_begin
    cursor = dbapi.cursor()
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


class _IsoText(sa.types.TypeDecorator[Any]):
    """A value kept as text on SQLite (decimals; aware times and stamps)."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, parse: Any) -> None:
        super().__init__()
        self.parse = parse

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, (dt.date, dt.time)):
            return value.isoformat()
        return str(value)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return None if value is None else self.parse(str(value))


def kind_of(type_: Any) -> dict[str, Any]:
    """The portable kind of a reflected column type."""
    if isinstance(type_, sa.Boolean):
        return {"kind": "bool"}
    if isinstance(type_, sa.Integer):
        big = isinstance(type_, sa.BigInteger)
        return {"kind": "int", "big": big}
    if isinstance(type_, sa.Float):
        return {"kind": "float"}
    if isinstance(type_, sa.Numeric):
        return {"kind": "decimal", "precision": type_.precision, "scale": type_.scale}
    if isinstance(type_, sa.DateTime):
        return {"kind": "datetime", "tz": bool(type_.timezone)}
    if isinstance(type_, sa.Date):
        return {"kind": "date"}
    if isinstance(type_, sa.Time):
        return {"kind": "time", "tz": bool(type_.timezone)}
    if isinstance(type_, sa.JSON):
        return {"kind": "json"}
    if isinstance(type_, sa.LargeBinary | sa.types._Binary):
        return {"kind": "bytes"}
    if isinstance(type_, sa.String):
        return {"kind": "str", "length": type_.length}
    raise InvalidInput(f"accord db cannot replicate columns of type {type_}")


def _type(column: dict[str, Any], dialect: str) -> Any:
    kind = column["kind"]
    if kind == "int":
        if column.get("big") and dialect != "sqlite":
            return sa.BigInteger()
        return sa.Integer()
    if kind == "decimal":
        if dialect == "sqlite":
            return _IsoText(Decimal)
        return sa.Numeric(column.get("precision"), column.get("scale"))
    if kind in ("datetime", "time"):
        aware = column.get("tz")
        if dialect == "sqlite" and aware:
            parse = dt.datetime if kind == "datetime" else dt.time
            return _IsoText(parse.fromisoformat)
        return (sa.DateTime if kind == "datetime" else sa.Time)(timezone=bool(aware))
    if kind == "str":
        length = column.get("length")
        return sa.String(length) if length else sa.Text()
    simple = {
        "bool": sa.Boolean,
        "float": sa.Float,
        "date": sa.Date,
        "json": sa.JSON,
        "bytes": sa.LargeBinary,
    }
    return simple[kind]()


def describe(engine: sa.Engine, names: list[str]) -> list[dict[str, Any]]:
    """The descriptions of tables ``names`` (clear errors for missing ones,
    keys accord cannot carry, or types it cannot replicate)."""
    inspector = sa.inspect(engine)
    present = set(inspector.get_table_names())
    missing = [name for name in names if name not in present]
    if missing:
        raise NotFound(
            f"no such table: {', '.join(missing)}",
            hint="create the tables first, or fix --tables",
        )
    return [_describe_one(inspector, name, set(names)) for name in names]


def _describe_one(inspector: Any, name: str, tracked: set[str]) -> dict[str, Any]:
    columns = []
    for column in inspector.get_columns(name):
        try:
            kind = kind_of(column["type"])
        except InvalidInput as exc:
            raise InvalidInput(f"{exc.message} ({name}.{column['name']})") from None
        columns.append({"name": column["name"], "nullable": column["nullable"], **kind})
    pk = list(inspector.get_pk_constraint(name)["constrained_columns"])
    if not pk:
        raise InvalidInput(
            f"table {name} has no primary key", hint="accord db needs one per table"
        )
    kinds = {c["name"]: c["kind"] for c in columns}
    if any(kinds[c] not in _KEY_KINDS for c in pk):
        raise InvalidInput(f"the primary key of {name} must be integer or text columns")
    if len(pk) == 1 and kinds[pk[0]] == "int":
        # an auto-increment key can be given a fresh value on a collision
        columns[[c["name"] for c in columns].index(pk[0])]["serial"] = True
    fks = [
        {
            "columns": fk["constrained_columns"],
            "table": fk["referred_table"],
            "refcolumns": fk["referred_columns"],
        }
        for fk in inspector.get_foreign_keys(name)
        if fk["referred_table"] in tracked
    ]
    uniques = [u["column_names"] for u in inspector.get_unique_constraints(name)]
    for index in inspector.get_indexes(name):
        if index.get("unique") and index["column_names"] not in uniques:
            uniques.append(list(index["column_names"]))
    return {
        "name": name,
        "columns": columns,
        "pk": pk,
        "fks": fks,
        "uniques": [u for u in uniques if u != pk],
    }


def build_tables(
    descriptions: list[dict[str, Any]], dialect: str, metadata: sa.MetaData
) -> dict[str, sa.Table]:
    """SQLAlchemy tables for ``descriptions`` on ``dialect``."""
    tables = {}
    for desc in descriptions:
        columns: list[Any] = []
        for column in desc["columns"]:
            columns.append(
                sa.Column(
                    column["name"],
                    _type(column, dialect),
                    primary_key=column["name"] in desc["pk"],
                    nullable=column["nullable"] or column["name"] in desc["pk"],
                    autoincrement=bool(column.get("serial")),
                )
            )
        for fk in desc["fks"]:
            columns.append(
                sa.ForeignKeyConstraint(
                    fk["columns"], [f"{fk['table']}.{c}" for c in fk["refcolumns"]]
                )
            )
        for unique in desc["uniques"]:
            columns.append(sa.UniqueConstraint(*unique))
        tables[desc["name"]] = sa.Table(desc["name"], metadata, *columns)
    return tables


def check_columns(engine: sa.Engine, descriptions: list[dict[str, Any]]) -> list[str]:
    """Create the tables missing in ``engine``; check the others have the
    same columns (a clear error otherwise). The names of the created ones."""
    inspector = sa.inspect(engine)
    present = set(inspector.get_table_names())
    missing = []
    for desc in descriptions:
        if desc["name"] not in present:
            missing.append(desc["name"])
            continue
        here = {c["name"] for c in inspector.get_columns(desc["name"])}
        there = {c["name"] for c in desc["columns"]}
        if here != there:
            detail = []
            if there - here:
                detail.append(f"missing here: {', '.join(sorted(there - here))}")
            if here - there:
                detail.append(
                    f"missing on the server: {', '.join(sorted(here - there))}"
                )
            raise ConfigError(
                f"table {desc['name']} differs from the server's ({'; '.join(detail)})",
                hint="make both tables have the same columns, then attach again",
            )
    if missing:
        metadata = sa.MetaData()
        build_tables(descriptions, engine.dialect.name, metadata)
        metadata.create_all(engine, tables=[metadata.tables[n] for n in missing])
    return missing


def dependency_order(descriptions: list[dict[str, Any]]) -> list[str]:
    """Table names, parents before children (cycles broken arbitrarily)."""
    parents = {
        d["name"]: {fk["table"] for fk in d["fks"] if fk["table"] != d["name"]}
        for d in descriptions
    }
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str, path: set[str]) -> None:
        if name in seen or name in path:
            return
        path.add(name)
        for parent in sorted(parents.get(name, ())):
            visit(parent, path)
        seen.add(name)
        order.append(name)

    for name in parents:
        visit(name, set())
    return order
