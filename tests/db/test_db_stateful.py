"""Random scripts on three nodes, synced in random order, with pushes
whose answer is lost and pulls that crash mid-merge: in the end every
node equals the server, and every acknowledged write is either on the
server, overwritten by a later acknowledged write, or in the hub's
conflict log."""

from __future__ import annotations

import sqlite3
import uuid

import pytest
from _dbs import Central, table_rows
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import accord.db
from accord.errors import TransientError
from accord.replicas.hub_client import HubClient
from accord.replication.local import Local

SCHEMA = [
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL,"
    " email VARCHAR(20) UNIQUE)",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL"
    " REFERENCES customers(id), qty INTEGER)",
]
NODES = 3
KEYS = st.integers(1, 8)
EMAILS = st.sampled_from(["a@x", "b@x", "c@x", "d@x", None])


class Crash(Exception):
    """A node dying at this point (its transaction is not committed)."""


@pytest.fixture
def world(tmp_path, new_database, hub_server):
    url = new_database("postgresql")
    return {"url": url, "hub": hub_server.base, "tmp": tmp_path}


def test_random_scripts_on_three_nodes(world) -> None:
    class Machine(RuleBasedStateMachine):
        @initialize()
        def setup(self) -> None:
            name = "s" + uuid.uuid4().hex[:8]
            self.database = _fresh_database(world["url"])
            url = world["url"].rsplit("/", 1)[0] + "/" + self.database
            self.central = Central(url, world["hub"], name)
            self.central.execute(*SCHEMA)
            accord.db.init(
                url, hub=world["hub"], tables=["customers", "orders"], name=name
            )
            self.nodes = []
            for index in range(NODES):
                path = world["tmp"] / f"{name}-{index}.db"
                node = f"sqlite:///{path}"
                accord.db.attach(
                    node, hub=world["hub"], node=f"{name}-{index}", db=name
                )
                self.nodes.append(node)
            self.written: dict[int, list[tuple]] = {i: [] for i in range(NODES)}
            self.acknowledged: list[tuple] = []

        def _sql(self, index: int, statement: str, params: tuple, write: tuple) -> None:
            path = self.nodes[index][len("sqlite:///") :]
            db = sqlite3.connect(path)
            db.execute("PRAGMA foreign_keys=ON")
            try:
                changed = db.execute(statement, params).rowcount
                db.commit()
            except sqlite3.IntegrityError:
                return
            finally:
                db.close()
            if changed:
                self.written[index].append(write)

        @rule(index=st.integers(0, NODES - 1), key=KEYS, email=EMAILS)
        def insert_customer(self, index, key, email) -> None:
            name = f"n{index}-{uuid.uuid4().hex[:4]}"
            self._sql(
                index,
                "INSERT INTO customers VALUES (?, ?, ?)",
                (key, name, email),
                ("customers", key, "w", (key, name, email)),
            )

        @rule(index=st.integers(0, NODES - 1), key=KEYS, email=EMAILS)
        def update_customer(self, index, key, email) -> None:
            name = f"u{index}-{uuid.uuid4().hex[:4]}"
            self._sql(
                index,
                "UPDATE customers SET name = ?, email = ? WHERE id = ?",
                (name, email, key),
                ("customers", key, "w", (key, name, email)),
            )

        @rule(index=st.integers(0, NODES - 1), key=KEYS)
        def delete_customer(self, index, key) -> None:
            self._sql(
                index,
                "DELETE FROM customers WHERE id = ?",
                (key,),
                ("customers", key, "d", None),
            )

        @rule(index=st.integers(0, NODES - 1), key=KEYS, parent=KEYS)
        def insert_order(self, index, key, parent) -> None:
            self._sql(
                index,
                "INSERT INTO orders VALUES (?, ?, ?)",
                (key, parent, 1),
                ("orders", key, "w", (key, parent, 1)),
            )

        @rule(index=st.integers(0, NODES - 1), key=KEYS)
        def delete_order(self, index, key) -> None:
            self._sql(
                index,
                "DELETE FROM orders WHERE id = ?",
                (key,),
                ("orders", key, "d", None),
            )

        @rule(index=st.integers(0, NODES - 1))
        def sync(self, index) -> None:
            accord.db.sync(self.nodes[index])
            self._acknowledge(index)

        @rule(index=st.integers(0, NODES - 1))
        def push_answer_lost(self, index) -> None:
            real = accord.db._Node.call
            applied = []

            def lost(node, method, path, **kw):
                answer = real(node, method, path, **kw)
                if path == "/push":
                    applied.append(answer)
                    raise TransientError("the connection broke")
                return answer

            accord.db._Node.call = lost
            try:
                accord.db.sync(self.nodes[index])
            except TransientError:
                pass
            finally:
                accord.db._Node.call = real
            if applied:  # on the server now, before later writes elsewhere
                self._acknowledge(index)

        @rule(index=st.integers(0, NODES - 1))
        def pull_crashes_mid_merge(self, index) -> None:
            real = Local.apply

            def crash(self, *args, **kw):
                real(self, *args, **kw)
                raise Crash

            Local.apply = crash
            try:
                accord.db.pull(self.nodes[index])
            except Crash:
                pass
            finally:
                Local.apply = real

        def _acknowledge(self, index: int) -> None:
            self.acknowledged.extend(self.written[index])
            self.written[index] = []

        @invariant()
        def nothing(self) -> None:
            pass

        def teardown(self) -> None:
            if not hasattr(self, "nodes"):
                return
            try:
                self._check()
            finally:
                from fixtures.sqldb import _drop

                _drop("postgresql", self.database)

        def _check(self) -> None:
            for _ in range(3):
                for index in range(NODES):
                    accord.db.sync(self.nodes[index])
                    self._acknowledge(index)
            for table in ("customers", "orders"):
                server = self.central.rows(table)
                for node in self.nodes:
                    assert table_rows(node, table) == server, table
                    assert accord.db.status(node)["pending"] == []
            with HubClient(world["hub"]) as hub:
                conflicts = hub.api("GET", f"/db/{self.central.name}/status")[
                    "conflicts"
                ]
            noted = {(c["tbl"], c["pk"]) for c in conflicts}
            self._accounted(noted)

        def _moved(self, table: str, row: tuple, noted: set) -> bool:
            """A row given a fresh key (same key inserted on two nodes)."""
            return any(
                t == table
                and values is not None
                and values[1:] == row[1:]
                and (t, f"[{key}]") in noted
                for t, key, _, values in self.acknowledged
            )

        def _followed(self, table: str, row: tuple, values: tuple, noted) -> bool:
            """An order following its customer to a fresh key (the same
            customer key inserted on two nodes): only its customer differs."""
            return (
                table == "orders"
                and row[::2] == values[::2]
                and ("customers", f"[{values[1]}]") in noted
            )

        def _accounted(self, noted: set) -> None:
            rows = {
                t: {r[0]: r for r in self.central.rows(t)}
                for t in ("customers", "orders")
            }
            last: dict[tuple, int] = {}
            for position, (table, key, _, _) in enumerate(self.acknowledged):
                last[table, key] = position
            for position, (table, key, kind, values) in enumerate(self.acknowledged):
                if last[table, key] != position or (table, f"[{key}]") in noted:
                    continue  # overwritten later, or in the conflict log
                if kind == "d":
                    there = rows[table].get(key)
                    assert there is None or self._moved(table, there, noted), (
                        table,
                        key,
                        "deleted, yet there",
                    )
                else:
                    there = rows[table].get(key)
                    assert there == values or (
                        there is not None
                        and (
                            self._moved(table, there, noted)
                            or self._followed(table, there, values, noted)
                        )
                    ), (table, key, values)

    Machine.TestCase.settings = settings(
        max_examples=5,
        stateful_step_count=30,
        deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    Machine.TestCase().runTest()


def _fresh_database(url: str) -> str:
    from fixtures.sqldb import _create

    name = "accord_st_" + uuid.uuid4().hex[:8]
    _create("postgresql", name)
    return name
