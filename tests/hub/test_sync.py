"""Syncing through a real hub process: machines, renames, trash, history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from _hubs import as_machine, new_user

import accord
from accord.engine import history
from accord.registry import open_replica


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".accord" not in p.parts
    }


def test_two_machines_stay_in_step_through_the_hub(hub_server, tmp_path) -> None:
    name = "papers-" + uuid.uuid4().hex[:6]
    alice_name, alice = new_user(hub_server, tmp_path, name)
    bob_name, bob = new_user(hub_server, tmp_path, name)
    url = hub_server.place(name)
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    (one / "a.txt").write_text("from alice\n")
    (one / "docs").mkdir()
    (one / "docs" / "b.txt").write_text("b\n")
    (one / "big.bin").write_bytes(os.urandom(3 << 20))  # goes as an upload
    with as_machine(alice):
        assert accord.sync(str(one), url).ok
    with as_machine(bob):
        assert accord.sync(str(two), url).ok
    assert tree(two) == tree(one)
    # bob renames and edits; alice deletes
    (two / "docs" / "b.txt").rename(two / "docs" / "renamed.txt")
    (two / "a.txt").write_text("edited by bob\n")
    with as_machine(bob):
        report = accord.sync(str(two), url)
        assert report.ok and not report.failed
    (one / "big.bin").unlink()
    with as_machine(alice):
        assert accord.sync(str(one), url).ok
    with as_machine(bob):
        assert accord.sync(str(two), url).ok
    assert tree(one) == tree(two)
    assert (one / "a.txt").read_text() == "edited by bob\n"
    assert not (two / "big.bin").exists()
    # the deleted file is in the collection's trash, and comes back
    with as_machine(alice):
        place = open_replica(url)
        place.open()
        (kept,) = [i for i in place.trash_list() if i.key == "big.bin"]
        place.trash_restore(kept, "big.bin")
        # every machine's runs are in the shared history, with who ran them
        runs = history.read(place)
        # and the hub's own log says which user changed what, and when
        events = place._api("GET", "/history")["events"]
        place.close()
    assert [sorted(r["counts"]) for r in runs] == [
        ["copy"],
        ["copy", "move"],
        ["delete"],
    ]
    changed_by = {e["user"] for e in events if e["kind"] == "change"}
    assert changed_by == {alice_name, bob_name}
    with as_machine(bob):
        assert accord.sync(str(two), url).ok
    assert (two / "big.bin").exists()


def test_an_edit_on_both_sides_keeps_both(hub_server, tmp_path) -> None:
    name = "c" + uuid.uuid4().hex[:8]
    _, alice = new_user(hub_server, tmp_path, name)
    _, bob = new_user(hub_server, tmp_path, name)
    url = hub_server.place(name)
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    (one / "n.txt").write_text("base\n")
    with as_machine(alice):
        accord.sync(str(one), url)
    with as_machine(bob):
        accord.sync(str(two), url)
    (one / "n.txt").write_text("alice\n")
    (two / "n.txt").write_text("bob\n")
    with as_machine(alice):
        accord.sync(str(one), url)
    with as_machine(bob):
        report = accord.sync(str(two), url)
    assert report.ok
    texts = sorted(p.read_text() for p in two.iterdir() if p.name.startswith("n"))
    assert texts == ["alice\n", "bob\n"]


def test_a_stale_write_is_refused_and_the_engine_replans(hub_server, tmp_path) -> None:
    """Another machine writes between our plan and our write: the hub
    refuses ours (412), nothing is overwritten, the next run settles it."""
    from accord.engine.policy import Policy
    from accord.engine.session import Session
    from accord.testing.contract import ReplicaContract

    name = "c" + uuid.uuid4().hex[:8]
    _, alice = new_user(hub_server, tmp_path, name)
    url = hub_server.place(name)
    local = tmp_path / "l"
    local.mkdir()
    (local / "x.txt").write_text("one\n")
    with as_machine(alice):
        assert accord.sync(str(local), url).ok
        (local / "x.txt").write_text("two\n")
        with Session(str(local), url, policy=Policy()) as session:
            plan = session.plan()
            other = open_replica(url)
            other.open()
            old = other.stat("x.txt")
            ReplicaContract.put(other, "x.txt", b"changed elsewhere", expect=old)
            report = session.apply(plan)
        assert [o.action.key for o in report.skipped] == ["x.txt"]
        assert ReplicaContract.read(other, "x.txt") == b"changed elsewhere"
        assert accord.sync(str(local), url).ok  # a conflict now: both kept
        other.close()
    contents = sorted(p.read_text() for p in local.iterdir() if p.is_file())
    assert contents == ["changed elsewhere", "two\n"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "accord", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_the_commands_of_a_team(tmp_path) -> None:
    """init, serve, user add, login, sync, mirror, status, node revoke:
    the commands as a team types them."""
    from fixtures.hub import HubProcess

    admin_env = {"ACCORD_HUB_CREDENTIALS": str(tmp_path / "admin.json")}
    alice_env = {"ACCORD_HUB_CREDENTIALS": str(tmp_path / "alice.json")}
    store = tmp_path / "srv"
    done = run("hub", "init", str(store), env=admin_env)
    assert done.returncode == 0, done.stderr
    assert "admin token" in done.stdout
    hub = HubProcess(store).start()
    try:
        url = hub.base
        done = run("hub", "user", "add", "alice", "--hub", url, env=admin_env)
        assert done.returncode == 0, done.stderr
        code = done.stdout.splitlines()[1].strip()
        # added twice: said so, with the command for another code
        done = run("hub", "user", "add", "alice", "--hub", url, env=admin_env)
        assert done.returncode == 1, done.stderr
        assert "exists already" in done.stderr, done.stderr
        assert "accord hub user code alice" in done.stderr, done.stderr
        done = run(
            "hub", "grant", "alice", "papers", "--write", "--hub", url, env=admin_env
        )
        assert done.returncode == 0, done.stderr
        # sync before logging in: a clear error
        papers = tmp_path / "papers"
        papers.mkdir()
        (papers / "p.txt").write_text("paper\n")
        place = f"hub://127.0.0.1:{hub.port}/papers"
        done = run("sync", str(papers), place, "--yes", env=alice_env)
        assert done.returncode == 1 and "accord login" in done.stderr, done.stderr
        done = run("login", url, "--user", "alice", "--code", code, env=alice_env)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "alice.json").stat().st_mode & 0o777 == 0o600
        assert code not in (store / "hub.db").read_bytes().decode("latin-1")
        done = run("sync", str(papers), place, "--yes", env=alice_env)
        assert done.returncode == 0, done.stderr
        backup = tmp_path / "backup"
        done = run("mirror", place, str(backup), "--yes", env=alice_env)
        assert done.returncode == 0, done.stderr
        assert (backup / "p.txt").read_text() == "paper\n"
        done = run("hub", "status", "--hub", url, "--json", env=admin_env)
        assert done.returncode == 0, done.stderr
        status = json.loads(done.stdout)
        (papers_info,) = [c for c in status["collections"] if c["name"] == "papers"]
        assert papers_info["items"] == 1
        (node,) = [n for n in status["nodes"] if n["user"] == "alice"]
        assert node["last_seen"]
        done = run("hub", "node", "revoke", node["id"], "--hub", url, env=admin_env)
        assert done.returncode == 0, done.stderr
        done = run("sync", str(papers), place, "--yes", env=alice_env)
        assert done.returncode == 1 and "revoked" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    finally:
        assert hub.stop() == 0
        hub_log = hub.log()
    assert "Traceback" not in hub_log
    lines = [json.loads(line) for line in hub_log.splitlines()]  # all JSON
    requests = [line for line in lines if line["message"] == "request"]
    assert {"method", "path", "status", "ms", "user", "node"} <= set(requests[-1])
    assert lines[-1]["message"] == "stopped"


@pytest.mark.parametrize("where", ["http://127.0.0.1:1", "unused"])
def test_a_hub_that_does_not_answer_is_a_clear_error(where, tmp_path) -> None:
    if where == "unused":
        from fixtures.hub import free_port

        where = f"http://127.0.0.1:{free_port()}"
    place = where.replace("http", "hub") + "/papers"
    done = run("sync", str(tmp_path), place, "--yes")
    assert done.returncode == 1
    assert "cannot reach the hub" in done.stderr and "accord hub serve" in done.stderr


def test_content_the_hub_holds_is_not_sent_again(hub_server, tmp_path) -> None:
    """A copy between two collections (the source lists digests): the big
    file is committed by its digest, no upload."""
    local = tmp_path / "local"
    local.mkdir()
    data = os.urandom(5 << 20)
    (local / "big.bin").write_bytes(data)
    first, second = hub_server.place(), hub_server.place()
    assert accord.sync(str(local), first).ok
    before = hub_server.log().count('"PATCH"')
    assert accord.mirror(first, second).ok
    assert hub_server.log().count('"PATCH"') == before
    place = open_replica(second)
    place.open()
    with place.open_read("big.bin") as stream:
        assert stream.read() == data
    place.close()
