"""Keys accord db carries besides an integer: text and composite keys,
a child table pointing to a composite key."""

from __future__ import annotations

import uuid

from _dbs import Central, run

import accord.db


def test_text_and_composite_keys(tmp_path, new_database, hub_server) -> None:
    url = new_database("postgresql")
    central = Central(url, hub_server.base, "k" + uuid.uuid4().hex[:8])
    central.execute(
        "CREATE TABLE codes (code VARCHAR(10) PRIMARY KEY, label TEXT)",
        "CREATE TABLE lines (order_id INTEGER, line INTEGER, item TEXT,"
        " PRIMARY KEY (order_id, line))",
    )
    accord.db.init(url, hub=central.hub, tables=["codes", "lines"], name=central.name)
    a, b = (f"sqlite:///{tmp_path / n}.db" for n in "ab")
    for name, node in (("a", a), ("b", b)):
        accord.db.attach(node, hub=central.hub, node=name, db=central.name)
    run(
        a,
        "INSERT INTO codes VALUES ('FR', 'France'), ('é\"x', 'odd')",
        "INSERT INTO lines VALUES (1, 1, 'tea'), (1, 2, 'milk'), (2, 1, 'jam')",
    )
    accord.db.sync(a)
    central.execute(
        "UPDATE lines SET item = 'sugar' WHERE order_id = 1 AND line = 2",
        "UPDATE codes SET label = 'odd!' WHERE code = 'é\"x'",
    )
    run(a, "DELETE FROM lines WHERE order_id = 2")
    accord.db.sync(a)
    accord.db.sync(b)
    for node in (a, b):
        assert accord.db.query(node, "lines", {"order_id": "1"}) == [
            {"order_id": 1, "line": 1, "item": "tea"},
            {"order_id": 1, "line": 2, "item": "sugar"},
        ]
    import sqlalchemy as sa

    engine = sa.create_engine(b)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT * FROM lines ORDER BY 1, 2").all() == [
            (1, 1, "tea"),
            (1, 2, "sugar"),
        ]
        assert dict(conn.exec_driver_sql("SELECT * FROM codes").all()) == {
            "FR": "France",
            'é"x': "odd!",
        }
    engine.dispose()
    run(b, "UPDATE lines SET item = 'honey' WHERE order_id = 1 AND line = 1")
    run(a, "UPDATE lines SET item = 'salt' WHERE order_id = 1 AND line = 1")
    accord.db.sync(b)
    accord.db.sync(a)
    assert accord.db.status(a)["conflicts"][0]["pk"] == "[1,1]"
