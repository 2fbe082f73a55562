"""Several nodes syncing at once, and crashes mid-push: nothing is lost,
nothing is applied twice, every node ends equal to the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from _dbs import SCHEMA, Central, run, table_rows

import accord.db
from accord.errors import TransientError

WORKER = r"""
import random, sys, sqlite3, accord.db
url, index, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
path = url[len("sqlite:///"):]
rng = random.Random(index)
for n in range(rounds):
    db = sqlite3.connect(path, timeout=60)
    key = index * 1000 + n
    row = (key, f"c{key}", f"{key}@x")
    db.execute("INSERT INTO customers VALUES (?, ?, 'x', ?, 1)", row)
    db.execute("INSERT INTO orders VALUES (?, ?, 'tea', ?)", (key, key, n))
    db.execute("UPDATE customers SET city = ? WHERE id = 1", (f"n{index}r{n}",))
    db.commit()
    db.close()
    accord.db.sync(url, retries=50)
"""


def _attach(tmp_path, central, name):
    url = f"sqlite:///{tmp_path / (name + '.db')}"
    accord.db.attach(url, hub=central.hub, node=name, db=central.name)
    return url


def test_three_processes_sync_at_once(tmp_path, central) -> None:
    central.execute("INSERT INTO customers VALUES (1, 'shared', 'x', 's@x', 0)")
    urls = [_attach(tmp_path, central, f"n{i}") for i in range(1, 4)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(i), "6"], stderr=subprocess.PIPE
        )
        for i, url in enumerate(urls, 1)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err.decode()[-3000:]
    for url in urls * 2:
        accord.db.sync(url)
    server = central.rows("customers")
    assert len(server) == 1 + 3 * 6
    assert len(central.rows("orders")) == 3 * 6
    for url in urls:
        assert [r[:4] for r in table_rows(url, "customers")] == [r[:4] for r in server]
        assert table_rows(url, "orders") == central.rows("orders")
        assert accord.db.status(url)["pending"] == []


def test_a_push_whose_answer_was_lost_is_applied_once(
    tmp_path, pg_central, monkeypatch
):
    url = _attach(tmp_path, pg_central, "a")
    run(url, "INSERT INTO customers VALUES (1, 'Ada', 'Lyon', 'a@x', 1)")
    real = accord.db._Node.call

    def lost(self, method, path, **kw):
        answer = real(self, method, path, **kw)
        if path == "/push":
            raise TransientError("the connection to the hub broke")
        return answer

    monkeypatch.setattr(accord.db._Node, "call", lost)
    with pytest.raises(TransientError):
        accord.db.push(url)
    monkeypatch.setattr(accord.db._Node, "call", real)
    assert accord.db.status(url)["push_in_flight"]
    run(url, "UPDATE customers SET city = 'Metz' WHERE id = 1")
    accord.db.sync(url)
    status = accord.db.status(url)
    assert status["pending"] == [] and not status["push_in_flight"]
    assert pg_central.rows("customers")[0][2] == "Metz"
    engine = pg_central.engine()
    with engine.connect() as conn:
        versions = conn.exec_driver_sql(
            "SELECT node, changes FROM accord_versions ORDER BY id"
        ).all()
    engine.dispose()
    assert [tuple(v) for v in versions] == [("a", 1), ("a", 1)]


def test_a_client_killed_mid_push_leaves_nothing_half_done(tmp_path, pg_central):
    url = _attach(tmp_path, pg_central, "a")
    rows = ", ".join(f"({i}, 'c{i}', 'x', '{i}@x', 1)" for i in range(1, 5001))
    run(url, f"INSERT INTO customers VALUES {rows}")
    worker = subprocess.Popen(
        [sys.executable, "-c", f"import accord.db; accord.db.push({url!r})"],
        start_new_session=True,
    )
    time.sleep(0.8)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    accord.db.sync(url)
    assert len(pg_central.rows("customers")) == 5000
    assert accord.db.status(url)["pending"] == []


def test_the_hub_killed_mid_push(tmp_path, new_database, hub_credentials) -> None:
    from accord.hub import init_hub
    from fixtures.hub import HubProcess, login_admin

    folder = tmp_path / "hub"
    _, token = init_hub(folder)
    hub = HubProcess(folder).start()
    try:
        login_admin(hub, token)
        url = new_database("postgresql")
        central = Central(url, hub.base, "k" + uuid.uuid4().hex[:6])
        central.execute(*SCHEMA.values())
        accord.db.init(url, hub=hub.base, tables=list(SCHEMA), name=central.name)
        node = _attach(tmp_path, central, "a")
        other = _attach(tmp_path, central, "b")
        rows = ", ".join(f"({i}, 'c{i}', 'x', '{i}@x', 1)" for i in range(1, 20001))
        run(node, f"INSERT INTO customers VALUES {rows}")
        worker = subprocess.Popen(
            [sys.executable, "-c", f"import accord.db; accord.db.push({node!r})"],
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
        hub.kill()
        worker.wait(120)
        hub.start()
        accord.db.sync(node)
        assert len(central.rows("customers")) == 20000
        assert accord.db.status(node)["pending"] == []
        worker = subprocess.Popen(  # and mid-pull
            [sys.executable, "-c", f"import accord.db; accord.db.pull({other!r})"],
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
        hub.kill()
        worker.wait(120)
        hub.start()
        accord.db.sync(other)
        got = [r[:4] for r in table_rows(other, "customers")]
        assert got == [r[:4] for r in central.rows("customers")]
    finally:
        hub.stop()


def test_a_before_push_hook_can_refuse(tmp_path, new_database, hub_credentials):
    from accord.errors import PermissionDenied
    from accord.hub import init_hub
    from fixtures.hub import HubProcess, login_admin

    (tmp_path / "shop_rules.py").write_text(
        "from accord.errors import PermissionDenied\n"
        "def check(push):\n"
        "    for table, key, op, row in push['changes']:\n"
        "        if row and row.get('name') == 'forbidden':\n"
        "            raise PermissionDenied(f'{push[\"user\"]} may not add {key}')\n"
    )
    folder = tmp_path / "hub"
    _, token = init_hub(folder)
    hub = HubProcess(
        folder,
        env={"ACCORD_DB_BEFORE_PUSH": "shop_rules:check", "PYTHONPATH": str(tmp_path)},
    ).start()
    try:
        login_admin(hub, token)
        url = new_database("postgresql")
        central = Central(url, hub.base, "h" + uuid.uuid4().hex[:6])
        central.execute(*SCHEMA.values())
        accord.db.init(url, hub=hub.base, tables=list(SCHEMA), name=central.name)
        node = _attach(tmp_path, central, "a")
        run(node, "INSERT INTO customers VALUES (1, 'forbidden', 'x', 'f@x', 1)")
        with pytest.raises(PermissionDenied, match="admin may not add"):
            accord.db.sync(node)
        assert central.rows("customers") == []
        run(node, "UPDATE customers SET name = 'fine'")
        accord.db.sync(node)
        assert central.rows("customers")[0][1] == "fine"
    finally:
        hub.stop()
