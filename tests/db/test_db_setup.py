"""Setting up, repairing, typed values, grants, trimming, and the clear
errors of ``accord db``."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from _dbs import Central, run, table_rows

import accord.db
from accord.errors import (
    ConfigError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    RepairNeeded,
    Unreachable,
)


def test_a_bad_database_url_is_a_clear_error(hub_server) -> None:
    with pytest.raises(ConfigError, match="cannot open the database"):
        accord.db.init(
            "postgresql://postgres@127.0.0.1:5432/no_such_db_x",
            hub=hub_server.base,
            tables=["t"],
        )
    with pytest.raises(ConfigError, match="not a database URL"):
        accord.db.init("nonsense://x", hub=hub_server.base, tables=["t"])


def test_a_missing_table_is_a_clear_error(new_database, hub_server) -> None:
    url = new_database("postgresql")
    with pytest.raises(NotFound, match="no such table: nope"):
        accord.db.init(url, hub=hub_server.base, tables=["nope"], name="x1")


def test_an_unreachable_hub_is_a_clear_error(tmp_path, pg_central) -> None:
    with pytest.raises(Unreachable, match="cannot reach the hub"):
        accord.db.attach(
            f"sqlite:///{tmp_path / 'a.db'}", hub="http://127.0.0.1:9", node="n", db="x"
        )


def test_a_node_not_attached_is_a_clear_error(tmp_path) -> None:
    missing = tmp_path / "a.db"
    with pytest.raises(NotFound, match="no such database file") as told:
        accord.db.push(f"sqlite:///{missing}")
    assert "attach" in (told.value.hint or "")
    assert not missing.exists()  # a mistyped path leaves no empty database
    url = f"sqlite:///{tmp_path / 'b.db'}"
    run(url, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
    with pytest.raises(ConfigError, match="not attached"):
        accord.db.push(url)


def _schema_of(url: str) -> list[tuple[str, str]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = conn.exec_driver_sql("SELECT type, name FROM sqlite_master").all()
    engine.dispose()
    return sorted((kind, name) for kind, name in found)


def test_a_refused_attach_leaves_the_database_as_it_was(tmp_path, pg_central) -> None:
    """Local rows refuse the first copy before capture is installed: no
    trigger, no table of accord's, and the app's writes go on."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    run(
        url,
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL,"
        " city VARCHAR(100), email VARCHAR(100) UNIQUE, balance NUMERIC(12, 2))",
        "INSERT INTO customers VALUES (9, 'Zed', NULL, NULL, 0)",
    )
    before = _schema_of(url)
    with pytest.raises(PreconditionFailed, match="nothing was changed"):
        accord.db.attach(url, hub=pg_central.hub, node="a", db=pg_central.name)
    assert _schema_of(url) == before
    run(url, "INSERT INTO customers VALUES (10, 'Yan', NULL, NULL, 0)")


def test_detach_removes_capture_an_attach_left_without_its_state(
    tmp_path, pg_central
) -> None:
    """Triggers installed with no node recorded (an attach stopped between
    the two, as an earlier accord did when it refused local rows) go on
    detach too: dropping accord's log under them would fail every write."""
    from accord.replicas.hub_client import HubClient
    from accord.replication.local import Local

    url = f"sqlite:///{tmp_path / 'a.db'}"
    with HubClient(pg_central.hub) as hub:
        tables = hub.api("GET", f"/db/{pg_central.name}/schema")["tables"]
    local = Local(url, create=True)
    local.use(tables)
    local.install()
    local.close()
    assert ("trigger", "accord_customers_i") in _schema_of(url)
    assert accord.db.detach(url) is True
    assert [n for _, n in _schema_of(url) if n.startswith("accord_")] == []
    run(url, "INSERT INTO customers VALUES (10, 'Yan', NULL, NULL, 0)")


def _execute(url: str, *statements: str) -> list[str]:
    """Run ``statements`` on any database; the names of its tables after."""
    from accord.replication.schema import driver_url

    engine = sa.create_engine(driver_url(url))
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    names = sorted(sa.inspect(engine).get_table_names())
    engine.dispose()
    return names


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mariadb"])
def test_detach_says_whether_anything_was_there(new_database, kind) -> None:
    """A database never attached has nothing of accord's: detach answers
    False and leaves it as it was. After capture was installed it answers
    True, also when only the triggers were left; a second detach, False."""
    from accord.replication import schema
    from accord.replication.local import Local

    url = new_database(kind)
    _execute(
        url,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name VARCHAR(20))",
        "INSERT INTO t VALUES (1, 'a')",
    )
    assert accord.db.detach(url) is False
    assert table_rows(url, "t") == [(1, "a")]

    def install() -> None:
        local = Local(url)
        local.use(schema.describe(local.engine, ["t"]))
        local.install()
        local.close()

    install()
    assert "accord_log" in _execute(url)
    assert accord.db.detach(url) is True
    assert _execute(url) == ["t"]
    assert accord.db.detach(url) is False
    install()  # then accord's tables dropped under its triggers
    ours = [name for name in _execute(url) if name.startswith("accord_")]
    _execute(url, *(f"DROP TABLE {name}" for name in ours))
    assert _execute(url) == ["t"]
    assert accord.db.detach(url) is True
    assert accord.db.detach(url) is False
    _execute(url, "INSERT INTO t VALUES (2, 'b')")  # no trigger left to fail it
    assert table_rows(url, "t") == [(1, "a"), (2, "b")]


def test_attach_checks_the_columns(tmp_path, pg_central) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    run(
        url,
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT,"
        " email TEXT, balance NUMERIC, fax TEXT)",
    )
    with pytest.raises(ConfigError, match="missing on the server: fax"):
        accord.db.attach(url, hub=pg_central.hub, node="a", db=pg_central.name)


def test_repair_refuses_while_changes_are_not_pushed(tmp_path, pg_central) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    pg_central.execute("INSERT INTO customers VALUES (1, 'Ada', 'Lyon', 'a@x', 1)")
    events = []
    accord.db.attach(
        url, hub=pg_central.hub, node="a", db=pg_central.name, on_progress=events.append
    )
    assert {"stage": "snapshot", "table": "customers", "rows": 1} in events
    run(url, "UPDATE customers SET city = 'Metz'", "DELETE FROM orders")
    with pytest.raises(PreconditionFailed, match="1 local change"):
        accord.db.repair(url)
    run(url, "PRAGMA foreign_keys=OFF", "DELETE FROM customers")
    accord.db.repair(url, discard_local=True)
    assert table_rows(url, "customers")[0][2] == "Lyon"
    assert accord.db.status(url)["pending"] == []


def test_values_keep_their_type(tmp_path, new_database, hub_server) -> None:
    url = new_database("postgresql")
    central = Central(url, hub_server.base, "t" + uuid.uuid4().hex[:8])
    central.execute(
        "CREATE TABLE kinds (id BIGINT PRIMARY KEY, amount NUMERIC(20, 6),"
        " day DATE, at TIMESTAMPTZ, naive TIMESTAMP, clock TIMETZ, data BYTEA,"
        " doc JSONB, flag BOOLEAN, note TEXT, ratio DOUBLE PRECISION)"
    )
    accord.db.init(url, hub=hub_server.base, tables=["kinds"], name=central.name)
    a, b = (f"sqlite:///{tmp_path / n}.db" for n in "ab")
    for node, path in (("a", a), ("b", b)):
        accord.db.attach(path, hub=hub_server.base, node=node, db=central.name)
    import sqlalchemy as sa

    from accord.replication.local import Local

    local = Local(a)
    local.use(accord.db.status(a, remote=False) and _schema(a))
    value = {
        "id": 2**40,
        "amount": Decimal("12345678901234.123456"),
        "day": dt.date(2024, 2, 29),
        "at": dt.datetime(
            2024, 5, 1, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))
        ),
        "naive": dt.datetime(2024, 5, 1, 10, 30, 15, 123456),
        "clock": dt.time(8, 15, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        "data": b"\x00\xffbytes",
        "doc": {"a": [1, 2.5, None]},
        "flag": True,
        "note": "héllo",
        "ratio": 0.1,
    }
    with local.engine.begin() as conn:
        conn.execute(local.tables["kinds"].insert(), value)
        conn.execute(local.tables["kinds"].insert(), {"id": 1})
    local.close()
    accord.db.sync(a)
    accord.db.sync(b)
    (row,) = accord.db.query(b, "kinds", {"day": "2024-02-29"})
    assert row["amount"] == value["amount"] and str(row["amount"]).endswith("123456")
    # PostgreSQL keeps the instant of a timestamptz (not its offset)
    assert row["at"] == value["at"] and row["at"].tzinfo is not None
    assert {k: row[k] for k in value if k != "at"} == {
        k: v for k, v in value.items() if k != "at"
    } | {"clock": row["clock"]}
    assert row["clock"].utcoffset() == dt.timedelta(hours=-5)
    local = Local(b)
    local.use(_schema(b))
    with local.engine.connect() as conn:
        got = dict(
            conn.execute(
                sa.select(local.tables["kinds"]).where(
                    local.tables["kinds"].c.id == 2**40
                )
            )
            .one()
            ._mapping
        )
    local.close()
    assert got["amount"] == value["amount"]
    assert got["at"] == value["at"] and got["data"] == value["data"]
    assert got["doc"] == value["doc"] and got["naive"] == value["naive"]


def _schema(url: str):
    import json

    from accord.replication.local import Local

    local = Local(url)
    try:
        return json.loads(local.meta()["schema"])
    finally:
        local.close()


def test_a_node_reads_only_granted_tables(tmp_path, pg_central, hub_server) -> None:
    from _hubs_db import as_user

    url = f"sqlite:///{tmp_path / 'a.db'}"
    pg_central.execute("INSERT INTO customers VALUES (1, 'Ada', 'Lyon', 'a@x', 1)")

    def grant(user: str) -> None:
        accord.db.grant(hub_server.base, pg_central.name, user, ["customers"], "read")

    with as_user(hub_server, tmp_path, before=grant):
        with pytest.raises(PermissionDenied) as refused:
            accord.db.init(pg_central.url, hub=hub_server.base, tables=["customers"])
        assert "hub user add NAME --admin" in (refused.value.hint or "")
        accord.db.attach(url, hub=hub_server.base, node="u1", db=pg_central.name)
        assert [r[0] for r in table_rows(url, "customers")] == [1]
        import sqlalchemy as sa

        assert "orders" not in sa.inspect(sa.create_engine(url)).get_table_names()
        run(url, "UPDATE customers SET city = 'Metz'")
        accord.db.sync(url)  # a read-only table's changes are not pushed
        assert pg_central.rows("customers")[0][2] == "Lyon"
        from accord.replicas.hub_client import HubClient

        with HubClient(hub_server.base) as hub:
            seen = hub.api("GET", f"/db/{pg_central.name}/status")
        assert seen["tables"] == ["customers"]
        assert [n["name"] for n in seen["nodes"]] == ["u1"]


def test_a_user_granted_no_table_is_told_so(tmp_path, pg_central, hub_server) -> None:
    from _hubs_db import as_user

    path = tmp_path / "a.db"
    refused = pytest.raises(PermissionDenied, match="may read none of the tables")
    with as_user(hub_server, tmp_path) as name, refused as told:
        accord.db.attach(
            f"sqlite:///{path}", hub=hub_server.base, node="n", db=pg_central.name
        )
    assert f"accord db grant {name} {pg_central.name}" in (told.value.hint or "")
    assert not path.exists()  # nothing was attached, nothing made


def test_init_uses_the_admin_token_kept_beside_a_users_login(
    tmp_path, new_database, hub_server
) -> None:
    """On the machine where ``accord hub init`` ran, its admin token is
    kept; a user logged in there too does not hide it from the admins'
    commands: ``db init`` takes it, as ``db grant`` and ``db drop`` do."""
    from _hubs_db import as_user

    from accord.replicas.hub_client import HubClient, save_token

    url = new_database("postgresql")
    central = Central(url, hub_server.base, "c" + uuid.uuid4().hex[:8])
    central.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    with as_user(hub_server, tmp_path):
        with HubClient(hub_server.base) as hub:
            save_token(hub.health()["hub"], hub_server.token)
        done = accord.db.init(
            url, hub=hub_server.base, tables=["notes"], name=central.name
        )
        assert done["tables"] == ["notes"]


def test_dead_nodes_expire_and_the_log_is_trimmed(tmp_path, new_database, hub_server):
    url = new_database("postgresql")
    central = Central(url, hub_server.base, "e" + uuid.uuid4().hex[:8])
    from _dbs import SCHEMA

    central.execute(*SCHEMA.values())
    accord.db.init(
        url, hub=hub_server.base, tables=list(SCHEMA), name=central.name, expire_days=0
    )
    a, b = (f"sqlite:///{tmp_path / n}.db" for n in "ab")
    accord.db.attach(a, hub=hub_server.base, node="a", db=central.name)
    accord.db.attach(b, hub=hub_server.base, node="b", db=central.name)
    run(a, "INSERT INTO customers VALUES (1, 'Ada', 'Lyon', 'a@x', 1)")
    accord.db.sync(a)
    with pytest.raises(RepairNeeded, match="expired"):
        accord.db.sync(b)
    accord.db.repair(b)
    assert [r[0] for r in table_rows(b, "customers")] == [1]
    status = accord.db.status(a)
    assert status["version"] == status["hub_version"]

    engine = central.engine()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM accord_log").scalar() == 0
    engine.dispose()
