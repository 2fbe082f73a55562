"""Helpers of the ``accord db`` tests: the shop schema, a central
database registered on a hub, rows of a table."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa

SCHEMA = {
    "customers": (
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL,"
        " city VARCHAR(100), email VARCHAR(100) UNIQUE, balance NUMERIC(12, 2))"
    ),
    "orders": (
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER"
        " REFERENCES customers(id), item VARCHAR(100), qty INTEGER)"
    ),
}


@dataclass
class Central:
    url: str
    hub: str
    name: str

    def engine(self):
        from accord.replication.schema import driver_url

        return sa.create_engine(driver_url(self.url))

    def execute(self, *statements: str) -> None:
        engine = self.engine()
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
        engine.dispose()

    def rows(self, table: str) -> list[tuple]:
        return table_rows(self.url, table)


def table_rows(url: str, table: str) -> list[tuple]:
    from accord.replication.schema import driver_url

    engine = sa.create_engine(driver_url(url))
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id").all()
    engine.dispose()
    return [tuple(r) for r in rows]


def make_central(new_database, hub_server, kind: str) -> Central:
    import accord.db

    url = new_database(kind)
    central = Central(url, hub_server.base, "c" + uuid.uuid4().hex[:8])
    central.execute(*SCHEMA.values())
    accord.db.init(url, hub=central.hub, tables=list(SCHEMA), name=central.name)
    return central


def run(url: str, *statements: str) -> None:
    """Statements on a node's SQLite database, as an app would run them."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()
