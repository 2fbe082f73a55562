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

import pytest
from _hubs import admin

import accord
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
        client.set_password(name, PASSWORD, syncml_md5=md5)
        if access:
            client.grant(name, collection, access)
        else:  # the collection exists, the user has no grant on it
            client.grant("admin", collection, "write")
    return name


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
    c.sync()
    assert "New\nfrom a file client" not in files_side.texts()
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
