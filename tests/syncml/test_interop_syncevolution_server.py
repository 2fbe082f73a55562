"""accord's client against SyncEvolution's server (syncevo-http-server), a
SyncML peer no one here wrote: every sync goes through the CLI, as a user
runs it, over real HTTP.

SyncEvolution stores plain-text notes (one file per note, named by its id)
and rewrites them (CRLF line ends, a blank line more each pass), so notes
are compared as text (``bodies``).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fixtures.syncevolution import bodies

pytestmark = pytest.mark.syncevolution


def accord(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "accord", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def store(syncevo_server):
    return syncevo_server.new_store()


def sync(local, url, store, *extra):
    done = accord(
        "sync",
        str(local),
        url,
        "--user",
        store.user,
        "--password-env",
        "SE_PW",
        "--yes",
        *extra,
        env={"SE_PW": store.password},
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done


def url_of(server, store, **options):
    query = "&".join(
        f"{k}={v}"
        for k, v in {"store": store.name, "device": store.device, **options}.items()
    )
    return f"syncml+{server.url}?{query}"


def corrupt_anchor():
    """Make accord's stored Last anchor differ from the server's."""
    import json
    import sqlite3

    from accord.config import default_state_dir

    for path in (default_state_dir() / "syncml").glob("*.db"):
        db = sqlite3.connect(path)
        state = json.loads(
            db.execute("SELECT value FROM meta WHERE name='state'").fetchone()[0]
        )
        state["last_local"] = "19990101T000000Z"
        db.execute(
            "UPDATE meta SET value = ? WHERE name = 'state'", (json.dumps(state),)
        )
        db.commit()
        db.close()


def local_texts(folder):
    return sorted(p.read_text().rstrip() for p in folder.iterdir() if p.is_file())


@pytest.mark.parametrize("encoding", ["xml", "wbxml"])
def test_first_slow_sync_two_way_edits_deletes(
    syncevo_server, store, tmp_path, encoding
):
    local = tmp_path / "notes"
    local.mkdir()
    (local / "a.txt").write_text("Client note 1\nclient body 1\n")
    (local / "b.txt").write_text("Client note 2\nclient body 2\n")
    (local / "same.txt").write_text("Shared note\non both sides\n")
    (store.notes / "s1").write_text("Server note 1\nserver body 1\n")
    (store.notes / "s2").write_bytes(b"Shared note\r\non both sides\r\n\r\n")
    url = url_of(syncevo_server, store, encoding=encoding)
    sync(local, url, store)
    want = [
        "Client note 1\nclient body 1",
        "Client note 2\nclient body 2",
        "Server note 1\nserver body 1",
        "Shared note\non both sides",
    ]
    assert bodies(store.notes) == want  # the shared note once: no duplicate
    assert local_texts(local) == want
    # two-way: an edit on each side, a delete on each side
    (local / "a.txt").write_text("Client note 1\nclient body 1\nedited by accord\n")
    server_note = next(
        p for p in store.notes.iterdir() if b"Server note 1" in p.read_bytes()
    )
    server_note.write_text("Server note 1\nserver body 1\nedited on the server\n")
    (local / "b.txt").unlink()
    shared = next(p for p in store.notes.iterdir() if b"Shared note" in p.read_bytes())
    shared.unlink()
    sync(local, url, store)
    want = [
        "Client note 1\nclient body 1\nedited by accord",
        "Server note 1\nserver body 1\nedited on the server",
    ]
    assert bodies(store.notes) == want
    assert local_texts(local) == want
    again = sync(local, url, store)
    assert "nothing to do" in again.stdout + again.stderr or again.returncode == 0
    assert bodies(store.notes) == want


def test_a_conflict_keeps_both_versions(syncevo_server, store, tmp_path):
    local = tmp_path / "notes"
    local.mkdir()
    (local / "n.txt").write_text("Note\nline two\n")
    url = url_of(syncevo_server, store)
    sync(local, url, store)
    (local / "n.txt").write_text("Note\nline two, edited by accord\n")
    server = next(store.notes.iterdir())
    server.write_text("Note\nline two, edited on the server\n")
    sync(local, url, store)
    expected = sorted(
        ["Note\nline two, edited by accord", "Note\nline two, edited on the server"]
    )
    assert local_texts(local) == expected
    assert bodies(store.notes) == expected


def test_refresh_from_server_and_508_recovery(syncevo_server, store, tmp_path):
    local = tmp_path / "notes"
    local.mkdir()
    (local / "a.txt").write_text("Alpha\n")
    (store.notes / "s").write_text("Server\n")
    url = url_of(syncevo_server, store)
    sync(local, url, store)
    (local / "stray.txt").write_text("Stray\nonly here\n")
    sync(local, url, store, "--mode", "refresh-from-server")
    assert local_texts(local) == ["Alpha", "Server"]
    # the anchors no longer match (as when the server lost this client's
    # state): the server answers 508, accord runs a slow sync, and nothing
    # is duplicated
    corrupt_anchor()
    (local / "b.txt").write_text("Beta\n")
    done = sync(local, url, store)
    assert "lost track of this client (508)" in done.stdout + done.stderr
    assert bodies(store.notes) == ["Alpha", "Beta", "Server"]
    assert local_texts(local) == ["Alpha", "Beta", "Server"]


def test_a_large_note_split_over_messages(syncevo_server, store, tmp_path):
    local = tmp_path / "notes"
    local.mkdir()
    big = "Big note\n" + "".join(f"line {i} of a long note\n" for i in range(4000))
    (local / "big.txt").write_text(big)
    (store.notes / "s").write_text("Server big\n" + "y" * 60000 + "\n")
    url = url_of(syncevo_server, store, max_msg_size=8192)
    sync(local, url, store)
    assert bodies(store.notes) == sorted([big.rstrip(), "Server big\n" + "y" * 60000])
    assert local_texts(local) == bodies(store.notes)


def test_wrong_password_is_refused_and_changes_nothing(syncevo_server, store, tmp_path):
    local = tmp_path / "notes"
    local.mkdir()
    (local / "a.txt").write_text("Alpha\n")
    done = accord(
        "sync",
        str(local),
        url_of(syncevo_server, store),
        "--user",
        store.user,
        "--password-env",
        "SE_PW",
        "--yes",
        env={"SE_PW": "wrong"},
    )
    assert done.returncode == 1
    assert "refused the user name or password" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(store.notes.iterdir()) == []
