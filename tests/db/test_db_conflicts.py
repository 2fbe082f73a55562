"""Conflicts between nodes, each resolved by its table's policy and
recorded: in the node's status and in the hub's conflict log."""

from __future__ import annotations

import json

from _dbs import run, table_rows

import accord.db


def _two(client):
    a, b = client("shop-a"), client("shop-b")
    run(a, "INSERT INTO customers VALUES (1, 'Ada', 'Lyon', 'ada@x', 10)")
    accord.db.sync(a)
    accord.db.sync(b)
    return a, b


def _on_both(client, *statements: str):
    """Nodes shop-a and shop-b, both holding the rows ``statements`` made on a."""
    a, b = client("shop-a"), client("shop-b")
    run(a, *statements)
    accord.db.sync(a)
    accord.db.sync(b)
    return a, b


def _kinds(url: str) -> list[tuple[str, str]]:
    return [(c["kind"], c["resolution"]) for c in accord.db.status(url)["conflicts"]]


def test_update_update_local_wins_by_default(central, client) -> None:
    a, b = _two(client)
    run(a, "UPDATE customers SET city = 'Paris' WHERE id = 1")
    accord.db.sync(a)
    run(b, "UPDATE customers SET city = 'Metz' WHERE id = 1")
    accord.db.sync(b)
    assert central.rows("customers")[0][2] == "Metz"
    assert _kinds(b) == [("update/update", "local row kept (local-wins)")]
    accord.db.sync(a)
    assert table_rows(a, "customers")[0][2] == "Metz"
    hub_log = accord.db.status(b)
    assert hub_log["pending"] == []
    from accord.replicas.hub_client import HubClient

    with HubClient(central.hub) as hub:
        seen = hub.api("GET", f"/db/{central.name}/status")["conflicts"]
    assert [(c["node"], c["kind"]) for c in seen] == [("shop-b", "update/update")]
    assert json.loads(seen[0]["detail"])["remote"]["city"] == "Paris"


def test_server_wins_policy(central, client) -> None:
    a, b = _two(client)
    run(a, "UPDATE customers SET city = 'Paris' WHERE id = 1")
    accord.db.sync(a)
    run(b, "UPDATE customers SET city = 'Metz' WHERE id = 1")
    accord.db.sync(b, policies={"customers": "server-wins"})
    assert table_rows(b, "customers")[0][2] == "Paris"
    assert central.rows("customers")[0][2] == "Paris"
    assert _kinds(b) == [("update/update", "server's row kept")]
    (conflict,) = accord.db.status(b)["conflicts"]
    assert json.loads(conflict["detail"])["policy"] == "server-wins"


def test_field_merge_keeps_both_columns(central, client) -> None:
    a, b = _two(client)
    run(a, "UPDATE customers SET city = 'Paris' WHERE id = 1")
    accord.db.sync(a)
    run(b, "UPDATE customers SET email = 'ada@y' WHERE id = 1")
    accord.db.sync(b, policies={"customers": "field-merge"})
    row = central.rows("customers")[0]
    assert row[2:4] == ("Paris", "ada@y")
    accord.db.sync(a)
    assert table_rows(a, "customers")[0][2:4] == ("Paris", "ada@y")
    assert _kinds(b) == [("update/update", "fields merged")]


def test_a_callback_decides(central, client) -> None:
    a, b = _two(client)
    run(a, "UPDATE customers SET name = 'Ada L.' WHERE id = 1")
    accord.db.sync(a)
    run(b, "UPDATE customers SET name = 'Ada K.' WHERE id = 1")
    seen = []

    def choose(table, key, local, remote, base):
        seen.append((table, key, local["name"], remote["name"], base["name"]))
        return {**remote, "name": local["name"] + " / " + remote["name"]}

    accord.db.sync(b, policies={"customers": choose})
    assert seen == [("customers", "[1]", "Ada K.", "Ada L.", "Ada")]
    assert central.rows("customers")[0][1] == "Ada K. / Ada L."
    (conflict,) = accord.db.status(b)["conflicts"]
    assert json.loads(conflict["detail"])["policy"] == "callback"


def test_update_beats_delete_both_ways(central, client) -> None:
    a, b = _two(client)
    run(a, "DELETE FROM customers WHERE id = 1")
    accord.db.sync(a)
    run(b, "UPDATE customers SET city = 'Metz' WHERE id = 1")
    accord.db.sync(b)  # remote delete, local update: pushed back
    assert central.rows("customers")[0][2] == "Metz"
    accord.db.sync(a)
    assert table_rows(a, "customers")[0][2] == "Metz"
    run(a, "UPDATE customers SET city = 'Nice' WHERE id = 1")
    accord.db.sync(a)
    run(b, "DELETE FROM customers WHERE id = 1")
    accord.db.sync(b)  # remote update, local delete: the row comes back
    assert table_rows(b, "customers")[0][2] == "Nice"
    assert [k for k, _ in _kinds(b)] == ["delete/update", "update/delete"]


def test_same_key_inserted_on_two_nodes_gets_a_fresh_key(central, client) -> None:
    a, b = client("shop-a"), client("shop-b")
    run(a, "INSERT INTO customers VALUES (5, 'Ada', 'Lyon', 'ada@x', 1)")
    accord.db.sync(a)
    run(
        b,
        "INSERT INTO customers VALUES (5, 'Bob', 'Metz', 'bob@x', 2)",
        "INSERT INTO orders VALUES (1, 5, 'tea', 1)",
    )
    accord.db.sync(b)
    rows = central.rows("customers")
    assert [(r[0], r[1]) for r in rows] == [(5, "Ada"), (6, "Bob")]
    assert central.rows("orders") == [(1, 6, "tea", 1)]
    assert table_rows(b, "orders") == [(1, 6, "tea", 1)]
    assert _kinds(b)[0][0] == "insert/insert"


def test_parent_deleted_remotely_while_a_local_child_points_to_it(central, client):
    a, b = _two(client)
    run(a, "DELETE FROM customers WHERE id = 1")
    accord.db.sync(a)
    run(b, "INSERT INTO orders VALUES (1, 1, 'tea', 1)")
    accord.db.sync(b)
    assert [r[0] for r in central.rows("customers")] == [1]
    assert central.rows("orders") == [(1, 1, "tea", 1)]
    assert _kinds(b)[0][0] == "dependency"


def test_parent_deleted_here_while_a_pulled_child_points_to_it(central, client):
    a, b = _two(client)
    run(a, "INSERT INTO orders VALUES (1, 1, 'tea', 1)")
    accord.db.sync(a)
    run(b, "DELETE FROM customers WHERE id = 1")
    accord.db.sync(b)
    assert [r[0] for r in table_rows(b, "customers")] == [1]
    assert table_rows(b, "orders") == [(1, 1, "tea", 1)]
    assert [r[0] for r in central.rows("customers")] == [1]
    assert _kinds(b)[0][0] == "reverse dependency"


def test_unique_values_swapped_between_rows(central, client) -> None:
    a, b = _on_both(
        client,
        "INSERT INTO customers VALUES (1, 'Ada', 'Lyon', 'one@x', 1)",
        "INSERT INTO customers VALUES (2, 'Bob', 'Metz', 'two@x', 2)",
    )
    run(
        a,
        "UPDATE customers SET email = 'tmp@x' WHERE id = 1",
        "UPDATE customers SET email = 'one@x' WHERE id = 2",
        "UPDATE customers SET email = 'two@x' WHERE id = 1",
    )
    accord.db.sync(a)
    assert [r[3] for r in central.rows("customers")] == ["two@x", "one@x"]
    accord.db.sync(b)
    assert [r[3] for r in table_rows(b, "customers")] == ["two@x", "one@x"]
    assert accord.db.status(b)["conflicts"] == []


def test_a_unique_value_taken_on_both_nodes_is_reported(central, client) -> None:
    a, b = client("shop-a"), client("shop-b")
    run(a, "INSERT INTO customers VALUES (1, 'Ada', 'Lyon', 'same@x', 1)")
    accord.db.sync(a)
    run(b, "INSERT INTO customers VALUES (2, 'Bob', 'Metz', 'same@x', 2)")
    accord.db.sync(b)
    assert [r[:2] for r in central.rows("customers")] == [(1, "Ada")]
    assert [r[:4] for r in table_rows(b, "customers")] == [(1, "Ada", "Lyon", "same@x")]
    (conflict,) = accord.db.status(b)["conflicts"]
    assert conflict["kind"] == "unique"
    assert conflict["tbl"] == "customers" and conflict["pk"] == "[2]"
    assert "email" in conflict["resolution"]


def test_a_child_of_a_local_row_undone_by_a_unique_clash_is_undone_too(
    central, client
) -> None:
    """A local insert that loses a unique value is dropped; the local order
    pointing to it cannot be kept either: it is dropped and reported, and
    the pull commits."""
    a, b = client("shop-a"), client("shop-b")
    run(a, "INSERT INTO customers VALUES (1, 'Ada', 'Lyon', 'same@x', 1)")
    accord.db.sync(a)
    run(
        b,
        "INSERT INTO customers VALUES (2, 'Bob', 'Metz', 'same@x', 2)",
        "INSERT INTO orders VALUES (7, 2, 'tea', 1)",
    )
    accord.db.sync(b)
    assert [r[:2] for r in table_rows(b, "customers")] == [(1, "Ada")]
    assert table_rows(b, "orders") == central.rows("orders") == []
    assert accord.db.status(b)["pending"] == []
    found = {(c["tbl"], c["pk"]): c for c in accord.db.status(b)["conflicts"]}
    assert found["customers", "[2]"]["kind"] == "unique"
    order = found["orders", "[7]"]
    assert order["kind"] == "dependency"
    assert json.loads(order["detail"])["local"]["customer_id"] == 2
    accord.db.sync(a)
    assert table_rows(a, "orders") == []


def test_a_fresh_key_then_a_unique_clash_leaves_no_orphan(central, client) -> None:
    """The same key inserted on two nodes with the same unique value: the
    local row gets a fresh key, then loses the value; its order, following
    the fresh key, is dropped and reported (found by the stateful test)."""
    a, b = client("shop-a"), client("shop-b")
    run(a, "INSERT INTO customers VALUES (2, 'Ada', 'Lyon', 'd@x', 1)")
    accord.db.sync(a)
    run(
        b,
        "INSERT INTO customers VALUES (2, 'Bob', 'Metz', 'd@x', 2)",
        "INSERT INTO orders VALUES (7, 2, 'tea', 1)",
    )
    accord.db.sync(b)
    assert [r[:2] for r in table_rows(b, "customers")] == [(2, "Ada")]
    assert [r[:2] for r in central.rows("customers")] == [(2, "Ada")]
    assert table_rows(b, "orders") == central.rows("orders") == []
    kinds = {(c["tbl"], c["pk"], c["kind"]) for c in accord.db.status(b)["conflicts"]}
    assert ("orders", "[7]", "dependency") in kinds


def test_an_order_given_back_its_server_row_brings_back_its_customer(
    central, client
) -> None:
    """An order moved here to a new customer that loses its unique value
    gets the server's row back; the customer it pointed to there, deleted
    here, comes back too."""
    a, b = _on_both(
        client,
        "INSERT INTO customers VALUES (1, 'Ada', 'Lyon', 'one@x', 1)",
        "INSERT INTO orders VALUES (7, 1, 'tea', 1)",
    )
    run(
        b,
        "INSERT INTO customers VALUES (3, 'Bob', 'Metz', 'same@x', 2)",
        "UPDATE orders SET customer_id = 3 WHERE id = 7",
        "DELETE FROM customers WHERE id = 1",
    )
    run(a, "INSERT INTO customers VALUES (2, 'Cy', 'Nice', 'same@x', 3)")
    accord.db.sync(a)
    accord.db.sync(b)
    assert [r[0] for r in table_rows(b, "customers")] == [1, 2]
    assert table_rows(b, "orders") == central.rows("orders") == [(7, 1, "tea", 1)]
    assert [r[0] for r in central.rows("customers")] == [1, 2]
    assert accord.db.status(b)["pending"] == []
    kinds = {(c["tbl"], c["pk"], c["kind"]) for c in accord.db.status(b)["conflicts"]}
    assert kinds == {
        ("customers", "[3]", "unique"),
        ("orders", "[7]", "dependency"),
        ("customers", "[1]", "reverse dependency"),
    }


def test_a_unique_value_freed_and_taken_in_one_push(central, client) -> None:
    """A row deleted and another taking its unique value, both here: the
    freed row steps aside first; a node pulling it does so too, with no
    conflict (found by the stateful test)."""
    a, b = _on_both(
        client,
        "INSERT INTO customers VALUES (6, 'Ada', 'Lyon', 'same@x', 1)",
        "INSERT INTO orders VALUES (1, 6, 'tea', 1)",
    )
    run(
        a,
        "DELETE FROM orders WHERE id = 1",
        "DELETE FROM customers WHERE id = 6",
        "INSERT INTO customers VALUES (3, 'Bob', 'Metz', 'same@x', 2)",
    )
    accord.db.sync(a)
    assert [r[:2] for r in central.rows("customers")] == [(3, "Bob")]
    assert central.rows("orders") == []
    accord.db.sync(b)
    assert [r[:2] for r in table_rows(b, "customers")] == [(3, "Bob")]
    assert accord.db.status(b)["conflicts"] == []


def test_a_unique_value_freed_while_its_orders_move_to_the_row_taking_it(
    central, client
) -> None:
    """The row taking the value must exist before the orders move to it,
    and they must move before the old row can go: the old row steps aside
    (its unique value emptied) until the push's deletes."""
    a, b = _on_both(
        client,
        "INSERT INTO customers VALUES (6, 'Ada', 'Lyon', 'same@x', 1)",
        "INSERT INTO orders VALUES (1, 6, 'tea', 1)",
    )
    run(
        a,
        "INSERT INTO customers VALUES (3, 'Bob', 'Metz', 'tmp@x', 2)",
        "UPDATE orders SET customer_id = 3 WHERE id = 1",
        "DELETE FROM customers WHERE id = 6",
        "UPDATE customers SET email = 'same@x' WHERE id = 3",
    )
    accord.db.sync(a)
    assert [r[:4] for r in central.rows("customers")] == [(3, "Bob", "Metz", "same@x")]
    assert central.rows("orders") == [(1, 3, "tea", 1)]
    accord.db.sync(b)
    assert table_rows(b, "orders") == [(1, 3, "tea", 1)]
    assert accord.db.status(b)["conflicts"] == []
