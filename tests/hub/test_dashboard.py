"""The web dashboard of a real `accord hub serve` process: its login, the
pages, escaping, and a sync run from it through its JSON routes (the
browser test, tests/hub/test_browser.py, drives the same in Chromium)."""

from __future__ import annotations

import contextlib
import html
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _hubs import admin

import accord
from accord.engine.plan import Action, Plan
from accord.hub.places import add_place, load_places, remove_place
from accord.hub.runs import restrict
from accord.model import DIR, FILE, Entry, Side

CSRF = {"x-accord-csrf": "1"}


def person(hub, collection: str | None = None, access: str = "write") -> tuple:
    """A new user with a password (and a grant); ``(name, password)``."""
    name = "w" + uuid.uuid4().hex[:8]
    password = "pw-" + uuid.uuid4().hex
    with admin(hub) as client:
        client.add_user(name)
        client.set_password(name, password)
        if collection:
            client.grant(name, collection, access)
    return name, password


@contextlib.contextmanager
def browser(hub, name: str, password: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub.base, timeout=60) as client:
        answer = client.post(
            "/api/v1/session", json={"user": name, "password": password}, headers=CSRF
        )
        assert answer.status_code == 200, answer.text
        yield client


def seeded(hub, tmp_path: Path, files: dict[str, str]) -> str:
    """A new collection holding ``files`` (synced there by the admin)."""
    name = "d" + uuid.uuid4().hex[:8]
    folder = tmp_path / name
    folder.mkdir()
    for key, text in files.items():
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        (folder / key).write_text(text)
    assert accord.sync(str(folder), hub.place(name)).ok
    return name


def test_every_page_and_route_needs_a_login(hub_server) -> None:
    with httpx.Client(base_url=hub_server.base, timeout=30) as anonymous:
        page = anonymous.get("/")
        assert page.status_code == 200
        assert 'id="login"' in page.text and "Collections" not in page.text
        assert anonymous.get("/collections/x").status_code == 401
        for method, path in [
            ("GET", "/ui/app.js"),
            ("GET", "/ui/api/sides"),
            ("POST", "/ui/api/check"),
            ("POST", "/ui/api/items"),
            ("POST", "/ui/api/preview"),
            ("GET", "/ui/api/runs"),
            ("POST", "/ui/api/runs"),
            ("GET", "/ui/api/runs/abc"),
        ]:
            answer = anonymous.request(method, path, json={}, headers=CSRF)
            assert answer.status_code == 401, path
            assert answer.json()["error"]["code"] == "not_authenticated"
        wrong = anonymous.post(
            "/api/v1/session", json={"user": "nobody", "password": "nope"}, headers=CSRF
        )
        assert wrong.status_code == 401


def test_a_change_without_the_csrf_header_is_refused(hub_server) -> None:
    name, password = person(hub_server)
    with browser(hub_server, name, password) as client:
        side = {"side": {"kind": "collection", "name": "none"}}
        refused = client.post("/ui/api/check", json=side)
        assert refused.status_code == 403
        assert "X-Accord-CSRF" in refused.json()["error"]["message"]
        assert client.get("/ui/app.js").status_code == 200


def test_names_render_as_text(hub_server, tmp_path) -> None:
    evil = "<script>alert(1)</script>.txt"
    collection = seeded(hub_server, tmp_path, {evil: "x", "a.txt": "a"})
    name, password = person(hub_server, collection, "read")
    with browser(hub_server, name, password) as client:
        page = client.get(f"/collections/{collection}")
        assert page.status_code == 200
        assert "&lt;script&gt;alert(1)&lt;/script&gt;.txt" in page.text
        assert "<script>alert" not in page.text
        assert "read" in page.text
        home = client.get("/")
        assert f'href="/collections/{collection}"' in home.text
        assert page.headers["x-frame-options"] == "DENY"


def test_a_collection_without_a_grant_is_not_shown(hub_server, tmp_path) -> None:
    collection = seeded(hub_server, tmp_path, {"a.txt": "a"})
    name, password = person(hub_server)
    with browser(hub_server, name, password) as client:
        assert collection not in client.get("/").text
        page = client.get(f"/collections/{collection}")
        assert page.status_code == 403
        told = html.escape(f"no collection {collection!r} that {name} may use")
        assert told in page.text
        assert "Traceback" not in page.text
        sides = client.get("/ui/api/sides").json()
        assert sides == {"collections": [], "places": []}


def _wait(client: httpx.Client, run: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = client.get(f"/ui/api/runs/{run}").json()
        if found["state"] in ("done", "failed"):
            return found
        time.sleep(0.1)
    raise AssertionError("the run did not finish")


def test_a_sync_from_the_dashboard(hub_server, tmp_path) -> None:
    files = {"keep/a.txt": "a", "keep/b.txt": "b", "skip/c.txt": "c", "d.txt": "d"}
    collection = seeded(hub_server, tmp_path, files)
    name, password = person(hub_server, collection, "write")
    target = tmp_path / "target"
    place = "t" + uuid.uuid4().hex[:6]
    secret_url = str(target) + "/"
    add_place(hub_server.folder, place, secret_url, [name])
    left = {"kind": "collection", "name": collection}
    right = {"kind": "place", "name": place}
    try:
        with browser(hub_server, name, password) as client:
            sides = client.get("/ui/api/sides").json()
            assert sides["places"] == [{"name": place, "kind": "file"}]
            assert str(target) not in json.dumps(sides)
            checked = client.post("/ui/api/check", json={"side": left}, headers=CSRF)
            assert checked.json() == {
                "ok": True,
                "items": 4,
                "bytes": 4,
                "read_only": False,
            }
            missing = client.post("/ui/api/check", json={"side": right}, headers=CSRF)
            assert missing.json()["ok"] is False
            assert str(target) not in missing.json()["error"]
            pair = {"left": left, "right": right, "mode": "mirror"}
            listed = client.post("/ui/api/items", json=pair, headers=CSRF).json()
            assert [i["key"] for i in listed["items"]] == sorted(files)
            subset = {**pair, "keys": ["keep/a.txt", "keep/b.txt", "d.txt"]}
            plan = client.post("/ui/api/preview", json=subset, headers=CSRF).json()
            assert plan["ok"], plan
            copied = sorted(a["key"] for a in plan["actions"] if a["op"] == "copy")
            assert copied == ["d.txt", "keep", "keep/a.txt", "keep/b.txt"]
            assert not target.exists()  # a preview changes nothing
            started = client.post("/ui/api/runs", json=subset, headers=CSRF)
            assert started.status_code == 200, started.text
            run = started.json()["run"]
            done = _wait(client, run)
            assert done["state"] == "done", done
            assert done["done"] == done["total"] == 4
            assert done["log"][-1].startswith("done: 4 changed")
            assert str(target) not in json.dumps(done)  # the URL stays on the server
            assert str(target) not in json.dumps(plan)
            assert sorted(
                str(p.relative_to(target)) for p in target.rglob("*.txt")
            ) == ["d.txt", "keep/a.txt", "keep/b.txt"]
            assert (target / "keep" / "a.txt").read_text() == "a"
            runs = client.get("/ui/api/runs").json()["runs"]
            assert [r["run"] for r in runs] == [run]
            # its progress went out on the event feed
            feed = _events(client, collection)
            assert any(e["run"] == run and e["state"] == "done" for e in feed)
    finally:
        remove_place(hub_server.folder, place)


def _events(client: httpx.Client, collection: str) -> list[dict]:
    found = []
    with client.stream(
        "GET", "/api/v1/events", params={"collection": collection, "since": "0"}
    ) as answer:
        for line in answer.iter_lines():
            if line.startswith("data: "):
                found.append(json.loads(line[6:]))
            if found and found[-1].get("state") == "done":
                break
    return [e for e in found if e["kind"] == "progress"]


def test_places_and_collections_a_user_may_not_use(hub_server, tmp_path) -> None:
    collection = seeded(hub_server, tmp_path, {"a.txt": "a"})
    mine = seeded(hub_server, tmp_path, {"b.txt": "b"})
    name, password = person(hub_server, mine, "read")
    place = "p" + uuid.uuid4().hex[:6]
    add_place(hub_server.folder, place, str(tmp_path / "nope"), ["someone-else"])
    try:
        with browser(hub_server, name, password) as client:
            for side in (
                {"kind": "place", "name": place},
                {"kind": "collection", "name": collection},
            ):
                pair = {"left": {"kind": "collection", "name": mine}, "right": side}
                answer = client.post("/ui/api/runs", json=pair, headers=CSRF)
                run = answer.json()["run"]
                failed = _wait(client, run)
                assert failed["state"] == "failed"
                assert f"no {side['kind']} {side['name']!r}" in failed["error"]
                assert "Traceback" not in failed["error"]
            bad = client.post(
                "/ui/api/runs",
                json={"left": {"kind": "x"}, "right": {}},
                headers=CSRF,
            )
            assert bad.status_code == 400
            assert "collection or a place" in bad.json()["error"]["message"]
    finally:
        remove_place(hub_server.folder, place)


def test_places_of_the_hub_folder(tmp_path) -> None:
    from accord.errors import ConfigError, NotFound
    from accord.hub import init_hub

    with pytest.raises(ConfigError, match="not an accord hub"):
        add_place(tmp_path, "x", "/tmp/x", [])
    init_hub(tmp_path / "h")
    add_place(tmp_path / "h", "nas", "sftp://nas/srv", ["alice", "bob"])
    add_place(tmp_path / "h", "all", "/srv/\u00e9t\u00e9 \"q\"", ["*"])
    found = load_places(tmp_path / "h")
    assert found["nas"].users == ("alice", "bob") and found["nas"].kind == "sftp"
    assert found["all"].url == '/srv/\u00e9t\u00e9 "q"'
    assert oct((tmp_path / "h" / "places.toml").stat().st_mode & 0o777) == "0o600"
    remove_place(tmp_path / "h", "nas")
    with pytest.raises(NotFound):
        remove_place(tmp_path / "h", "nas")
    assert list(load_places(tmp_path / "h")) == ["all"]


def _file(key: str) -> Entry:
    return Entry(key, FILE, 1, 0, 0o644, "v")


def test_a_subset_keeps_its_items_and_the_folders_above() -> None:
    folder = Entry("a", DIR, 0, 0, 0o755, "v")
    actions = [
        Action("copy", "a", Side.RIGHT, folder),
        Action("copy", "a/x.txt", Side.RIGHT, _file("a/x.txt")),
        Action("copy", "a/y.txt", Side.RIGHT, _file("a/y.txt")),
        Action("copy", "b/z.txt", Side.RIGHT, _file("b/z.txt")),
        Action("delete", "c", Side.RIGHT, None, folder._replace(key="c")),
        Action("move", "m.txt", Side.RIGHT, _file("m.txt"), new_key="n/m.txt"),
    ]
    plan = Plan(actions, mode="mirror")
    assert restrict(plan, None) is plan
    kept = restrict(plan, ["a/x.txt", "n/m.txt"])
    assert sorted(a.key for a in kept.actions) == ["a", "a/x.txt", "m.txt"]
    assert sorted(a.key for a in restrict(plan, ["b"]).actions) == ["b/z.txt"]
    assert restrict(plan, []).actions == []


def test_one_run_per_pair_at_a_time(tmp_path) -> None:
    from accord.errors import InvalidInput
    from accord.hub import init_hub, open_hub
    from accord.hub.accounts import Account
    from accord.hub.runs import Runs, SideSpec

    init_hub(tmp_path / "h")
    hub = open_hub(tmp_path / "h")
    try:
        runs = Runs(hub)
        left, right = SideSpec("collection", "a"), SideSpec("place", "b")
        runs.busy.add(frozenset((right, left)))
        with pytest.raises(InvalidInput, match="being synced already"):
            runs.start(Account(1, "admin", True), left, right, "sync", None)
    finally:
        hub.close()


def test_the_overview_shows_nodes_history_conflicts_and_running_syncs(
    hub_server, tmp_path
) -> None:
    from accord.registry import open_replica

    name = "o" + uuid.uuid4().hex[:8]
    url = hub_server.place(name)
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    (one / "notes.txt").write_text("first\n")
    assert accord.sync(str(one), url).ok
    assert accord.sync(url, str(two)).ok
    (one / "notes.txt").write_text("one's edit\n")
    (two / "notes.txt").write_text("two's edit\n")
    assert accord.sync(str(one), url).ok
    assert accord.sync(url, str(two)).ok  # a conflict: both kept
    assert accord.sync(url, str(two)).ok  # the copy goes to the hub too
    place = open_replica(url)
    place.open()
    lock = {"who": "carol@laptop", "host": "laptop", "pid": 1, "since": 1.0, "run": "r"}
    assert place.meta_create("lock", json.dumps(lock).encode())
    try:
        user, password = person(hub_server, name, "read")
        with browser(hub_server, user, password) as client:
            page = client.get("/").text
        with admin(hub_server) as as_admin:
            as_admin.set_password("admin", "admin-password")
        with browser(hub_server, "admin", "admin-password") as client:
            everything = client.get("/").text
    finally:
        place.meta_delete("lock")
        place.close()
    copies = [p.name for p in two.iterdir() if ".conflict-" in p.name]
    assert len(copies) == 1
    conflicts = page.split('id="conflicts"')[1].split("</table>")[0]
    assert copies[0] in conflicts and name in conflicts
    running = page.split('id="running"')[1].split("</ul>")[0]
    assert f"{name}: carol@laptop on laptop" in running
    history = page.split('id="history"')[1].split("</table>")[0]
    assert "sync ok" in history and "file notes.txt" in history
    collections = page.split('id="collections"')[1].split("</table>")[0]
    assert f">{name}</a></td><td>2</td>" in collections
    # a user sees their own nodes (none here); an admin sees every node
    assert "no nodes" in page
    nodes = everything.split('id="nodes"')[1].split("</table>")[0]
    assert "<td>tests</td><td>admin</td>" in nodes
    assert "never" not in nodes.split("<td>tests</td>")[1].split("</tr>")[0]


def test_a_run_between_two_places_shows_on_the_users_feed(
    hub_server, tmp_path
) -> None:
    name, password = person(hub_server)
    source, target = tmp_path / "source", tmp_path / "target"
    source.mkdir()
    (source / "s.txt").write_text("s")
    first, second = "s" + uuid.uuid4().hex[:6], "t" + uuid.uuid4().hex[:6]
    add_place(hub_server.folder, first, str(source), [name])
    add_place(hub_server.folder, second, str(target), ["*"])
    try:
        with browser(hub_server, name, password) as client:
            pair = {
                "left": {"kind": "place", "name": first},
                "right": {"kind": "place", "name": second},
                "mode": "sync",
            }
            run = client.post("/ui/api/runs", json=pair, headers=CSRF).json()["run"]
            assert _wait(client, run)["state"] == "done"
            seen = []
            with client.stream(
                "GET", "/api/v1/events", params={"since": "0"}
            ) as answer:
                for line in answer.iter_lines():
                    if line.startswith("data: "):
                        seen.append(json.loads(line[6:]))
                        if seen[-1].get("state") == "done":
                            break
            assert seen[-1]["run"] == run and seen[-1]["collection"] is None
            assert seen[-1]["user"] == name
    finally:
        remove_place(hub_server.folder, first)
        remove_place(hub_server.folder, second)
    assert (target / "s.txt").read_text() == "s"


def test_a_command_line_sync_posts_its_progress_to_the_hub(
    hub_server, tmp_path
) -> None:
    import os
    import subprocess
    import sys

    name = "cli" + uuid.uuid4().hex[:6]
    local = tmp_path / "local"
    local.mkdir()
    assert accord.sync(str(local), hub_server.place(name)).ok  # made, empty
    for n in range(5):
        (local / f"f{n}.txt").write_text(str(n))
    done = subprocess.run(
        [
            sys.executable, "-m", "accord", "sync", "--yes",
            str(local), hub_server.place(name),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    user, password = person(hub_server, name, "read")
    with browser(hub_server, user, password) as client:
        feed = _events(client, name)
    cli = [e for e in feed if e.get("source") == "cli"]
    assert cli[0]["state"] == "running" and cli[0]["done"] == 0
    assert cli[-1]["state"] == "done"
    assert cli[-1]["done"] == cli[-1]["total"] == 5
    assert cli[-1]["bytes"] == 5 and cli[-1]["node"]


def test_the_place_commands(tmp_path) -> None:
    from click.testing import CliRunner

    from accord.cli import cli
    from accord.cli import hub as _registers  # noqa: F401
    from accord.hub import init_hub

    init_hub(tmp_path / "h")
    runner = CliRunner()
    folder = str(tmp_path / "h")
    added = runner.invoke(
        cli, ["hub", "place", "add", folder, "nas", "sftp://nas/srv", "--user", "al"]
    )
    assert added.exit_code == 0, added.output
    assert "place nas (sftp) for al" in added.output
    listed = runner.invoke(cli, ["hub", "place", "list", folder])
    assert "nas  sftp://nas/srv  (al)" in listed.output
    unknown = runner.invoke(cli, ["hub", "place", "add", folder, "x", "nope://a"])
    assert unknown.exit_code != 0 and "Traceback" not in unknown.output
    gone = runner.invoke(cli, ["hub", "place", "remove", folder, "nas"])
    assert gone.exit_code == 0
    again = runner.invoke(cli, ["hub", "place", "remove", folder, "nas"])
    assert again.exit_code != 0 and "no place named 'nas'" in again.output
    assert "no places" in runner.invoke(cli, ["hub", "place", "list", folder]).output
