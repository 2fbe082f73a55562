"""``accord db`` from the command line: each procedure once, and errors
as one clear line, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from _dbs import SCHEMA, Central, run, table_rows


def accord(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "accord", "db", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def ok(*args: str) -> str:
    done = accord(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_command(tmp_path, new_database, hub_server) -> None:
    url = new_database("mariadb")
    central = Central(url, hub_server.base, "cli" + uuid.uuid4().hex[:6])
    central.execute(*SCHEMA.values())
    central.execute("INSERT INTO customers VALUES (1, 'Ada', 'Lyon', 'a@x', 1.5)")
    hub = ["--hub", hub_server.base]
    out = ok("init", url, *hub, "--tables", "customers,orders", "--name", central.name)
    assert "registered: customers, orders" in out
    node = f"sqlite:///{tmp_path / 'app.db'}"
    out = ok("attach", node, *hub, "--node", "shop-1", "--db", central.name)
    assert "attached as shop-1: 1 rows" in out
    run(node, "INSERT INTO customers VALUES (2, 'Bob', 'Lyon', 'b@x', 2)")
    assert "un-pushed changes: 1" in ok("status", node)
    assert "pushed 1 change(s)" in ok("push", node)
    central.execute("UPDATE customers SET city = 'Metz' WHERE id = 1")
    assert "pulled 1 change(s)" in ok("pull", node)
    assert table_rows(node, "customers")[0][2] == "Metz"
    assert "pulled 0, pushed 0" in ok("sync", node)
    rows = ok("query", node, "customers", "--where", "city=Lyon", "--json")
    assert [json.loads(line)["name"] for line in rows.splitlines()] == ["Bob"]
    run(node, "UPDATE customers SET city = 'Nice' WHERE id = 2")
    refused = accord("repair", node)
    assert refused.returncode != 0
    assert "1 local change(s) are not pushed yet" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "repaired: 2 rows" in ok("repair", node, "--discard-local")
    status = json.loads(ok("status", node, "--json"))
    assert status["pending"] == [] and status["version"] == status["hub_version"]
    assert ok("detach", node) == f"{node} detached\n"
    assert "was not attached: nothing to remove" in ok("detach", node)
    ok("drop", central.name, *hub)
    assert "accord_log" not in str(central.rows("customers"))


def test_errors_are_one_clear_line(tmp_path, hub_server) -> None:
    done = accord("push", f"sqlite:///{tmp_path / 'none.db'}")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "no such database file (in sqlite:///" in done.stderr
    assert not (tmp_path / "none.db").exists()
    run(f"sqlite:///{tmp_path / 'plain.db'}", "CREATE TABLE t (id INTEGER)")
    done = accord("push", f"sqlite:///{tmp_path / 'plain.db'}")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "is not attached to a hub" in done.stderr
    done = accord(
        "init", "sqlite:///x.db", "--hub", "http://127.0.0.1:9", "--tables", "a"
    )
    assert done.returncode != 0 and "cannot reach the hub" in done.stderr
    done = accord("init", "bogus", "--hub", hub_server.base, "--tables", "a")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "error:" in done.stderr


def test_detach_of_a_database_never_attached_says_so(tmp_path) -> None:
    """Nothing of accord's there: no "detached", as if capture were
    removed, but that there was nothing to remove (and exit 0: detach is
    idempotent)."""
    plain = f"sqlite:///{tmp_path / 'plain.db'}"
    run(plain, "CREATE TABLE t (id INTEGER PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    done = accord("detach", plain)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == f"{plain} was not attached: nothing to remove\n"
    assert table_rows(plain, "t") == [(1,)]
