"""SyncML at the hub's /syncml, with a real ``accord hub serve`` process.

SyncEvolution's command-line client (a peer no one here wrote) keeps its
notes in a folder and syncs them with a hub collection; the same
collection is synced as files by accord (``hub://``), as any machine of
the team would. The hub's users and grants apply to both.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from _hubs import admin, as_machine
from test_scale import database  # noqa: F401 - a PostgreSQL database

import accord
from accord.errors import PermissionDenied
from accord.hub import init_hub
from accord.replicas.syncml import SyncMLReplica
from fixtures.hub import HubProcess, login_admin
from fixtures.syncevolution import SyncEvoClient, bodies

PASSWORD = "notes-password-1"


def syncml_user(
    hub, collection: str, access: str | None = "write", md5: bool = True
) -> str:
    """A hub user with a password (and its SyncML MD5 digest) and
    ``access`` to ``collection`` (None: no grant)."""
    name = "s" + uuid.uuid4().hex[:8]
    with admin(hub) as client:
        client.add_user(name)
    # as an admin sets it: the password from the environment, never an argument
    accord_cli(
        "hub", "user", "password", name, "--hub", hub.base,
        *(["--syncml-md5"] if md5 else []),
        env={"ACCORD_HUB_PASSWORD": PASSWORD},
    )  # fmt: skip
    with admin(hub) as client:
        if access:
            client.grant(name, collection, access)
        else:  # the collection exists, the user has no grant on it
            client.grant("admin", collection, "write")
    return name


def accord_cli(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "accord", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def collection_name() -> str:
    return "notes-" + uuid.uuid4().hex[:6]


def files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): p.read_text()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".accord" not in p.parts
    }


def texts(folder: Path) -> list[str]:
    """Note bodies as peers compare them (line ends, trailing blanks)."""
    return sorted(t.replace("\r\n", "\n").rstrip() for t in files(folder).values())


class Hubside:
    """A folder synced with the collection through ``hub://`` (the admin's
    machine of the tests): what a file client of the hub sees."""

    def __init__(self, hub, name: str, folder: Path) -> None:
        self.url = hub.place(name)
        self.folder = folder
        folder.mkdir(exist_ok=True)

    def sync(self) -> None:
        assert accord.sync(str(self.folder), self.url).ok

    def texts(self) -> list[str]:
        self.sync()
        return texts(self.folder)


def phone(syncevo_server, hub, tmp_path, user, name="phone", **options):
    options.setdefault("store", "notes")
    return SyncEvoClient(
        tmp_path / name,
        syncevo_server.shim,
        f"{hub.base}/syncml",
        user=user,
        password=options.pop("password", PASSWORD),
        device=f"se-{name}-{uuid.uuid4().hex[:6]}",
        **options,
    )


@pytest.mark.syncevolution
@pytest.mark.parametrize("wbxml", [False, True])
def test_a_phone_and_a_file_client_share_a_collection(
    syncevo_server, hub_server, tmp_path, wbxml
):
    name = collection_name()
    user = syncml_user(hub_server, name)
    files_side = Hubside(hub_server, name, tmp_path / "files")
    (files_side.folder / "s1.txt").write_text("Server note 1\nserver body 1\n")
    (files_side.folder / "shared.txt").write_text("Shared note\non both sides\n")
    files_side.sync()
    c = phone(syncevo_server, hub_server, tmp_path, user, store=name, wbxml=wbxml)
    (c.notes / "1").write_text("Client note 1\nclient body 1\n")
    (c.notes / "2").write_text("Shared note\non both sides\n")
    c.sync("slow")
    want = [
        "Client note 1\nclient body 1",
        "Server note 1\nserver body 1",
        "Shared note\non both sides",
    ]
    assert files_side.texts() == want  # no duplicate of the shared note
    assert bodies(c.notes) == want
    assert "Client note 1.txt" in files(files_side.folder)
    # edits and deletes on both sides
    (c.notes / "1").write_text("Client note 1\nclient body 1\nedited on the phone\n")
    (files_side.folder / "s1.txt").write_text(
        "Server note 1\nserver body 1\nedited as a file\n"
    )
    (files_side.folder / "shared.txt").unlink()
    (files_side.folder / "new.txt").write_text("New\nfrom a file client\n")
    files_side.sync()
    c.sync()
    want = [
        "Client note 1\nclient body 1\nedited on the phone",
        "New\nfrom a file client",
        "Server note 1\nserver body 1\nedited as a file",
    ]
    assert files_side.texts() == want
    assert bodies(c.notes) == want
    victim = next(p for p in c.notes.iterdir() if b"New" in p.read_bytes())
    victim.unlink()
    # a first line that names a path outside: the note stays inside
    (c.notes / "9").write_text("../../escape\nfrom the phone\n")
    c.sync()
    assert "New\nfrom a file client" not in files_side.texts()
    # a new machine of the team syncs the collection as files (the CLI)
    fresh = tmp_path / "fresh"
    accord_cli("sync", str(fresh), files_side.url, "--yes")
    assert texts(fresh) == [
        "../../escape\nfrom the phone",
        "Client note 1\nclient body 1\nedited on the phone",
        "Server note 1\nserver body 1\nedited as a file",
    ]
    assert all("/" not in key for key in files(fresh))
    assert not (tmp_path / "escape.txt").exists()
    # the history names the user and the node "syncml"
    assert (user, "syncml") in changed_by(hub_server, name)


def changed_by(hub, name: str) -> set[tuple[str, str]]:
    """Who changed collection ``name``: (user, node) pairs of its history."""
    with sqlite3.connect(hub.folder / "hub.db") as db:
        rows = db.execute(
            "SELECT e.user, e.node FROM hub_events e JOIN hub_collections c "
            "ON c.id = e.collection_id WHERE c.name = ? AND e.kind = 'change'",
            (name,),
        ).fetchall()
    return set(rows)


@pytest.mark.syncevolution
def test_conflicts_merge_or_keep_both(syncevo_server, hub_server, tmp_path):
    name = collection_name()
    user = syncml_user(hub_server, name)
    files_side = Hubside(hub_server, name, tmp_path / "files")
    c = phone(syncevo_server, hub_server, tmp_path, user, store=name)
    (c.notes / "1").write_text("Title\nline two\nline three\nline four\n")
    c.sync("slow")
    assert files_side.texts() == ["Title\nline two\nline three\nline four"]
    (key,) = files(files_side.folder)
    # edits that touch different lines are merged
    (c.notes / "1").write_text("Title\nline two, phone\nline three\nline four\n")
    (files_side.folder / key).write_text(
        "Title\nline two\nline three\nline four, file\n"
    )
    files_side.sync()
    c.sync()
    merged = "Title\nline two, phone\nline three\nline four, file"
    assert files_side.texts() == [merged]
    assert bodies(c.notes) == [merged]
    # the same line on both sides: both versions are kept, on both sides
    (c.notes / "1").write_text("Title\nthe phone wrote this\nline three\n")
    (files_side.folder / key).write_text(
        "Title\na file client wrote this\nline three\n"
    )
    files_side.sync()
    c.sync()
    want = [
        "Title\na file client wrote this\nline three",
        "Title\nthe phone wrote this\nline three",
    ]
    assert files_side.texts() == want
    assert bodies(c.notes) == want
    assert any(".conflict-" in k for k in files(files_side.folder))


@pytest.mark.syncevolution
def test_refresh_from_the_server_and_from_the_phone(
    syncevo_server, hub_server, tmp_path
):
    name = collection_name()
    user = syncml_user(hub_server, name)
    files_side = Hubside(hub_server, name, tmp_path / "files")
    (files_side.folder / "b.txt").write_text("Beta\n")
    files_side.sync()
    c = phone(syncevo_server, hub_server, tmp_path, user, store=name, wbxml=True)
    (c.notes / "1").write_text("Alpha\n")
    c.sync("slow")
    (c.notes / "stray").write_text("Stray\nonly on the phone\n")
    c.sync("refresh-from-server")
    assert bodies(c.notes) == ["Alpha", "Beta"]
    (files_side.folder / "stray.txt").write_text("Stray\nonly in the hub\n")
    files_side.sync()
    c.sync("refresh-from-client")
    assert files_side.texts() == ["Alpha", "Beta"]


@pytest.mark.syncevolution
def test_a_phone_without_a_grant_is_refused(syncevo_server, hub_server, tmp_path):
    name = collection_name()
    user = syncml_user(hub_server, name, access=None)
    files_side = Hubside(hub_server, name, tmp_path / "files")
    (files_side.folder / "secret.txt").write_text("Secret\n")
    files_side.sync()
    c = phone(syncevo_server, hub_server, tmp_path, user, store=name)
    (c.notes / "1").write_text("Alpha\n")
    done = c.sync("slow", check=False)
    assert done.returncode != 0
    assert bodies(c.notes) == ["Alpha"]
    assert files_side.texts() == ["Secret"]
    # a wrong password: refused as well
    other = syncml_user(hub_server, name)
    c = phone(
        syncevo_server, hub_server, tmp_path, other, "wrong", store=name,
        password="not-the-password",
    )  # fmt: skip
    (c.notes / "1").write_text("Beta\n")
    assert c.sync("slow", check=False).returncode != 0
    assert files_side.texts() == ["Secret"]


@pytest.mark.syncevolution
def test_a_reader_only_receives(syncevo_server, hub_server, tmp_path):
    name = collection_name()
    user = syncml_user(hub_server, name, access="read")
    files_side = Hubside(hub_server, name, tmp_path / "files")
    (files_side.folder / "a.txt").write_text("Alpha\n")
    files_side.sync()
    c = phone(syncevo_server, hub_server, tmp_path, user, store=name)
    c.sync("refresh-from-server")
    assert bodies(c.notes) == ["Alpha"]
    (c.notes / "stray").write_text("Stray\n")
    assert c.sync("refresh-from-client", check=False).returncode != 0
    assert files_side.texts() == ["Alpha"]
    # a change sent in a two-way sync is refused, item by item (403)
    done = c.sync(check=False)
    assert done.returncode != 0
    assert "403" in done.stdout + done.stderr
    assert files_side.texts() == ["Alpha"]


class Wire:
    """accord's SyncML client's HTTP: every message to the next of
    ``hubs`` in turn (a session goes on in another process), with
    ``tamper`` applied to each body first (a hostile device)."""

    def __init__(self, hubs, tamper=None, between=None) -> None:
        self.hubs = hubs
        self.tamper = tamper or (lambda body: body)
        self.between = between or (lambda count: None)
        self.count = 0
        self.replies: list[bytes] = []

    def post(self, url: str, *, content: bytes, headers: dict[str, str]):
        self.between(self.count)
        hub = self.hubs[self.count % len(self.hubs)]
        self.count += 1
        url = urlsplit(url)._replace(netloc=f"127.0.0.1:{hub.port}").geturl()
        answer = httpx.post(
            url, content=self.tamper(content), headers=headers, timeout=60
        )
        self.replies.append(answer.content)
        return answer


def accord_device(hub, tmp_path, user, store, name="device", **options):
    options.setdefault("password", PASSWORD)
    options.setdefault("http_client", Wire([hub]))
    options.setdefault("device", f"accord-{name}-{uuid.uuid4().hex[:6]}")
    return SyncMLReplica(
        f"{hub.base}/syncml",
        store,
        user=user,
        state_dir=str(tmp_path / f"{name}-state"),
        **options,
    )


def test_basic_logins_check_the_hub_password(hub_server, tmp_path):
    name = collection_name()
    user = syncml_user(hub_server, name, md5=False)  # only the scrypt hash kept
    local = tmp_path / "local"
    local.mkdir()
    (local / "Alpha.txt").write_text("Alpha\nfrom accord\n")
    place = accord_device(hub_server, tmp_path, user, name, auth="basic")
    assert accord.sync(str(local), place).ok
    assert Hubside(hub_server, name, tmp_path / "files").texts() == [
        "Alpha\nfrom accord"
    ]
    # MD5 needs the digest, which this user's password was set without
    md5 = accord_device(hub_server, tmp_path, user, name, "md5", auth="md5")
    with pytest.raises(PermissionDenied):
        accord.sync(str(tmp_path / "other"), md5)
    # a wrong password over Basic is refused too
    wrong = accord_device(
        hub_server, tmp_path, user, name, "wrong", auth="basic", password="nope-nope"
    )
    with pytest.raises(PermissionDenied):
        accord.sync(str(tmp_path / "other"), wrong)


def test_a_hostile_subject_never_escapes_the_collection(hub_server, tmp_path):
    name = collection_name()
    user = syncml_user(hub_server, name)
    local = tmp_path / "local"
    local.mkdir()
    (local / "evil-subject").write_text("a note named from outside\n")
    hostile = Wire(
        [hub_server],
        tamper=lambda body: body.replace(
            b"<Subject>evil-subject<", b"<Subject>../../etc/xx<"
        ),
    )
    place = accord_device(
        hub_server, tmp_path, user, name, content_type="text/x-s4j-sifn",
        http_client=hostile,
    )  # fmt: skip
    assert accord.sync(str(local), place).ok
    files_side = Hubside(hub_server, name, tmp_path / "files")
    assert files_side.texts() == ["a note named from outside"]
    (key,) = files(files_side.folder)
    assert "/" not in key and not key.startswith(".")
    assert "etc" in key  # the subject's last part names it
    assert not (tmp_path / "etc").exists()


@pytest.mark.slow
def test_a_session_goes_on_in_another_hub_process(tmp_path, database):  # noqa: F811
    """Two hub processes over one PostgreSQL: each message of a session
    goes to the other process, and one of them restarts meanwhile; the
    device's ids and anchors carry over to its next session."""
    folder = tmp_path / "hub"
    _, token = init_hub(folder, db=database)
    first = HubProcess(folder).start()
    second = HubProcess(folder).start()
    try:
        with as_machine(tmp_path / "admin.json"):
            login_admin(first, token)
            login_admin(second, token)
            name = collection_name()
            user = syncml_user(first, name)
            files_side = Hubside(second, name, tmp_path / "files")
            for n in range(30):
                (files_side.folder / f"hub {n:02}.txt").write_text(f"hub {n}\n")
            files_side.sync()
            local = tmp_path / "local"
            local.mkdir()
            for n in range(30):
                (local / f"device {n:02}.txt").write_text(f"device {n}\n" * 40)

            def restart(count: int) -> None:
                if count == 3:
                    first.stop()
                    first.start()

            wire = Wire([first, second], between=restart)
            place = accord_device(
                first, tmp_path, user, name, http_client=wire, max_msg_size=4000
            )
            assert accord.sync(str(local), place).ok
            assert wire.count > 6  # several messages, both processes
            assert len(files_side.texts()) == 60
            # the next session, through the other process first: a two-way
            # sync (the anchors were kept), not a slow one (508)
            (local / "device 00.txt").write_text("edited\n")
            again = Wire([second, first])
            place = accord_device(
                first, tmp_path, user, name, http_client=again, device=place.device
            )
            assert accord.sync(str(local), place).ok
            assert not any(b"<Data>508</Data>" in r for r in again.replies)
            texts_now = files_side.texts()
            assert len(texts_now) == 60 and "edited" in texts_now
    finally:
        first.stop()
        second.stop()


def test_a_stale_note_write_is_refused_and_a_reader_writes_nothing(tmp_path):
    """The hub's notes are written with its versioned writes: a note that
    changed since the device's session read it is not overwritten."""
    from accord.errors import PreconditionFailed
    from accord.hub import items
    from accord.hub.accounts import Account
    from accord.hub.store import open_hub
    from accord.hub.syncml_state import HubNotes, bound

    folder = tmp_path / "hub"
    init_hub(folder)
    hub = open_hub(folder)
    try:
        with hub.writer.begin() as conn:
            boss = Account(1, "admin", True)
            col = items.collection(conn, boss, "notes", create=True)
        notes = HubNotes(col, boss, "run")

        def put(text: bytes, expect):
            with hub.writer.begin() as conn, bound(hub, conn):
                entry = notes.write("a.txt", text, expect)
                notes.flush()
            return entry

        first = put(b"first\n", None)
        with hub.writer.begin() as conn, bound(hub, conn):
            seen = notes.listing()["a.txt"]
        assert seen.version == first.version
        put(b"changed by a file client\n", first)  # meanwhile
        with (
            hub.writer.begin() as conn,
            bound(hub, conn),
            pytest.raises(PreconditionFailed),
        ):
            notes.write("a.txt", b"from a device\n", seen)
        with hub.writer.begin() as conn, bound(hub, conn):
            assert notes.read("a.txt") == b"changed by a file client\n"
        reader = HubNotes(col._replace(access="read"), boss, "run")
        with (
            hub.writer.begin() as conn,
            bound(hub, conn),
            pytest.raises(PermissionDenied),
        ):
            reader.write("b.txt", b"x\n", None)
    finally:
        hub.close()


def test_repeated_failed_logins_are_refused_for_a_while(tmp_path):
    """SyncML logins count with the hub's other logins: past a few
    failures each answer waits, past eight the user is refused for a
    while, even with the right password."""
    folder = tmp_path / "hub"
    _, token = init_hub(folder)
    hub = HubProcess(folder).start()
    try:
        with as_machine(tmp_path / "admin.json"):
            login_admin(hub, token)
            name = collection_name()
            user = syncml_user(hub, name, md5=False)
        for attempt in range(8):
            wrong = accord_device(
                hub, tmp_path, user, name, f"w{attempt}", auth="basic",
                password="wrong-password",
            )  # fmt: skip
            with pytest.raises(PermissionDenied):
                accord.sync(str(tmp_path / f"l{attempt}"), wrong)
        right = accord_device(hub, tmp_path, user, name, "right", auth="basic")
        with pytest.raises(PermissionDenied):
            accord.sync(str(tmp_path / "right"), right)
    finally:
        hub.stop()
