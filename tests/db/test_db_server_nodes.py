"""Nodes on PostgreSQL and MariaDB too: capture, round trips and a field
merge (which reads the row before, as each database's trigger kept it)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import accord.db
from accord.replication.schema import driver_url


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(driver_url(url))
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def rows(url: str, table: str) -> list[tuple]:
    engine = sa.create_engine(driver_url(url))
    with engine.connect() as conn:
        found = conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id").all()
    engine.dispose()
    return [tuple(r) for r in found]


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_a_server_database_as_a_node(kind, central, new_database, tmp_path) -> None:
    node = new_database(kind)
    accord.db.attach(node, hub=central.hub, node=f"{kind}-node", db=central.name)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    accord.db.attach(other, hub=central.hub, node="other", db=central.name)
    execute(
        node,
        "INSERT INTO customers (id, name, city, email, balance)"
        " VALUES (1, 'Ada', 'Lyon', 'a@x', 1.25)",
    )
    accord.db.sync(node)
    accord.db.sync(other)
    assert [r[:4] for r in rows(other, "customers")] == [(1, "Ada", "Lyon", "a@x")]
    execute(other, "UPDATE customers SET city = 'Metz' WHERE id = 1")
    accord.db.sync(other)
    execute(node, "UPDATE customers SET email = 'ada@y', balance = 2.5 WHERE id = 1")
    accord.db.sync(node, policies={"customers": "field-merge"})
    (merged,) = [r[:4] for r in central.rows("customers")]
    assert merged == (1, "Ada", "Metz", "ada@y")
    assert [r[:4] for r in rows(node, "customers")] == [merged]
    (conflict,) = accord.db.status(node)["conflicts"]
    assert conflict["resolution"] == "fields merged"
    execute(node, "DELETE FROM customers WHERE id = 1")
    accord.db.sync(node)
    accord.db.sync(other)
    assert rows(other, "customers") == []
    accord.db.detach(node)
    engine = sa.create_engine(driver_url(node))
    assert "accord_log" not in sa.inspect(engine).get_table_names()
    engine.dispose()
