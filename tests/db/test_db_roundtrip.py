"""Push, pull and sync between SQLite nodes and a central database."""

from __future__ import annotations

import pytest
from _dbs import run, table_rows

import accord.db
from accord.errors import PullFirst


def test_push_then_pull_reaches_another_node(central, client) -> None:
    a, b = client("shop-a"), client("shop-b")
    run(
        a,
        "INSERT INTO customers VALUES (1, 'Ada', 'Lyon', 'ada@x', 12.50)",
        "INSERT INTO orders VALUES (1, 1, 'tea', 2)",
    )
    assert accord.db.push(a)["pushed"] == 2
    assert [r[:3] for r in central.rows("customers")] == [(1, "Ada", "Lyon")]
    accord.db.pull(b)
    assert table_rows(b, "orders") == [(1, 1, "tea", 2)]
    assert table_rows(b, "customers")[0][:4] == (1, "Ada", "Lyon", "ada@x")


def test_a_push_is_refused_while_behind(central, client) -> None:
    a, b = client("shop-a"), client("shop-b")
    run(a, "INSERT INTO customers VALUES (1, 'Ada', 'Lyon', 'ada@x', 1)")
    accord.db.push(a)
    run(b, "INSERT INTO customers VALUES (2, 'Bob', 'Metz', 'bob@x', 2)")
    with pytest.raises(PullFirst, match="newer versions"):
        accord.db.push(b)
    assert not accord.db.status(b)["push_in_flight"]  # refused: not in flight
    result = accord.db.sync(b)
    assert result["pulled"] == 1
    assert [r[0] for r in central.rows("customers")] == [1, 2]


def test_direct_writes_on_central_reach_nodes(central, client) -> None:
    a = client("shop-a")
    central.execute(
        "INSERT INTO customers VALUES (7, 'Eve', 'Nice', 'eve@x', 3.25)",
        "UPDATE customers SET city = 'Paris' WHERE id = 7",
    )
    accord.db.pull(a)
    assert table_rows(a, "customers")[0][:3] == (7, "Eve", "Paris")
    central.execute("DELETE FROM customers WHERE id = 7")
    accord.db.sync(a)
    assert table_rows(a, "customers") == []
