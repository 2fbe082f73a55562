"""The hub's dashboard lists the SQL replication conflicts of the tables
a user may read (an admin: all), every value escaped."""

from __future__ import annotations

import html
import uuid

import httpx
from _dbs import Central, run

import accord.db
from accord.replicas.hub_client import HubClient

CSRF = {"x-accord-csrf": "1"}
KEY = "<b>k&1</b>"


def _person(hub: str, admin: bool = False) -> tuple[str, str]:
    name = "w" + uuid.uuid4().hex[:8]
    password = "pw-" + uuid.uuid4().hex
    with HubClient(hub, admin=True) as client:
        client.add_user(name, admin=admin)
        client.set_password(name, password)
    return name, password


def _overview(hub: str, name: str, password: str) -> str:
    with httpx.Client(base_url=hub, timeout=60) as client:
        answer = client.post(
            "/api/v1/session", json={"user": name, "password": password}, headers=CSRF
        )
        assert answer.status_code == 200, answer.text
        page = client.get("/")
        assert page.status_code == 200
        return page.text


def _central(new_database, hub_server) -> Central:
    """A central database with a text key (so a key can hold markup)."""
    url = new_database("postgresql")
    central = Central(url, hub_server.base, "c" + uuid.uuid4().hex[:8])
    central.execute(
        "CREATE TABLE notes (k VARCHAR(50) PRIMARY KEY, body VARCHAR(100))",
        "CREATE TABLE other (id INTEGER PRIMARY KEY, body VARCHAR(100))",
    )
    accord.db.init(url, hub=central.hub, tables=["notes", "other"], name=central.name)
    return central


def test_the_overview_lists_sql_conflicts_to_whom_may_read_them(
    new_database, hub_server, tmp_path
) -> None:
    central = _central(new_database, hub_server)
    nodes = []
    for node in ("shop-a", "shop-b"):
        url = f"sqlite:///{tmp_path / (node + '.db')}"
        accord.db.attach(url, hub=central.hub, node=node, db=central.name)
        nodes.append(url)
    a, b = nodes
    run(a, f"INSERT INTO notes VALUES ('{KEY}', 'one')")
    accord.db.sync(a)
    accord.db.sync(b)
    run(a, f"UPDATE notes SET body = 'two' WHERE k = '{KEY}'")
    accord.db.sync(a)
    run(b, f"UPDATE notes SET body = 'three' WHERE k = '{KEY}'")
    accord.db.sync(b)

    granted, other, nobody = (
        _person(central.hub),
        _person(central.hub),
        _person(central.hub),
    )
    accord.db.grant(central.hub, central.name, granted[0], ["notes"], "read")
    accord.db.grant(central.hub, central.name, other[0], ["other"], "write")
    shown_key = html.escape('["' + KEY + '"]', quote=True)

    page = _overview(central.hub, *granted)
    assert 'id="db-conflicts"' in page
    table = page.split('id="db-conflicts"', 1)[1].split("</table>", 1)[0]
    assert shown_key in table and KEY not in page
    for value in (central.name, "notes", "update/update", "shop-b"):
        assert f"<td>{value}</td>" in table
    assert "<td>local-wins</td><td>local row kept (local-wins)</td>" in table
    assert " UTC</td>" in table

    everything = _overview(central.hub, *_person(central.hub, admin=True))
    assert shown_key in everything and "<td>shop-b</td>" in everything

    for name, password in (other, nobody):
        page = _overview(central.hub, name, password)
        assert shown_key not in page and "update/update" not in page
        assert "no SQL replication conflicts" in page
