"""SyncEvolution's command-line client against accord's server, run as a
user runs it (``accord syncml serve`` in its own process, on 127.0.0.1).

The client keeps plain-text notes in a folder (one file per note, named by
its id) and authenticates with MD5 (it starts with an empty nonce; accord's
server answers 401 with a nonce and the client retries with it).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from fixtures.syncevolution import SyncEvoClient, bodies

pytestmark = pytest.mark.syncevolution


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, folder, port, process):
        self.folder = folder
        self.port = port
        self.url = f"http://127.0.0.1:{port}/syncml"
        self.process = process


@pytest.fixture
def served(tmp_path):
    procs = []

    def start(policy: str = "keep-both", folder=None, port=None) -> Served:
        folder = folder or tmp_path / "served"
        folder.mkdir(exist_ok=True)
        port = port or _free_port()
        with open(tmp_path / f"server-{port}.log", "wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "accord",
                    "syncml",
                    "serve",
                    str(folder),
                    "--port",
                    str(port),
                    "--user",
                    "me",
                    "--password-env",
                    "SRV_PW",
                    "--conflict",
                    policy,
                ],
                env={**os.environ, "SRV_PW": "pw"},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        procs.append(proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return Served(folder, port, proc)
            except OSError:
                assert proc.poll() is None, (
                    tmp_path / f"server-{port}.log"
                ).read_text()
                time.sleep(0.1)
        raise AssertionError("accord syncml serve did not listen")

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def client(syncevo_server, tmp_path, url, name="c1", **options):
    return SyncEvoClient(
        tmp_path / name,
        syncevo_server.shim,
        url,
        user="me",
        password="pw",
        device=f"se-{name}-{os.getpid()}",
        **options,
    )


def served_texts(folder):
    return sorted(
        p.read_text().replace("\r\n", "\n").rstrip()
        for p in folder.iterdir()
        if p.is_file()
    )


@pytest.mark.parametrize("wbxml", [False, True])
def test_slow_two_way_edits_deletes(syncevo_server, served, tmp_path, wbxml):
    srv = served()
    (srv.folder / "s1.txt").write_text("Server note 1\nserver body 1\n")
    (srv.folder / "shared.txt").write_text("Shared note\non both sides\n")
    c = client(syncevo_server, tmp_path, srv.url, wbxml=wbxml)
    (c.notes / "1").write_text("Client note 1\nclient body 1\n")
    (c.notes / "2").write_text("Shared note\non both sides\n")
    c.sync("slow")
    want = [
        "Client note 1\nclient body 1",
        "Server note 1\nserver body 1",
        "Shared note\non both sides",
    ]
    assert served_texts(srv.folder) == want  # no duplicate of the shared note
    assert bodies(c.notes) == want
    # edits and deletes on both sides
    (c.notes / "1").write_text(
        "Client note 1\nclient body 1\nedited by SyncEvolution\n"
    )
    (srv.folder / "s1.txt").write_text(
        "Server note 1\nserver body 1\nedited in the folder\n"
    )
    (srv.folder / "shared.txt").unlink()
    (srv.folder / "new.txt").write_text("New\nfrom the folder\n")
    c.sync()
    want = [
        "Client note 1\nclient body 1\nedited by SyncEvolution",
        "New\nfrom the folder",
        "Server note 1\nserver body 1\nedited in the folder",
    ]
    assert served_texts(srv.folder) == want
    assert bodies(c.notes) == want
    victim = next(p for p in c.notes.iterdir() if b"New" in p.read_bytes())
    victim.unlink()
    c.sync()
    assert "New\nfrom the folder" not in served_texts(srv.folder)
    # what the client deleted is in the folder's trash
    trash = list((srv.folder / ".accord").rglob("New.txt")) + list(
        (srv.folder / ".accord").rglob("new.txt")
    )
    assert trash


@pytest.mark.parametrize("policy", ["keep-both", "client-wins", "server-wins"])
def test_conflicts(syncevo_server, served, tmp_path, policy):
    srv = served(policy)
    c = client(syncevo_server, tmp_path, srv.url)
    (c.notes / "1").write_text("Title\nline two\nline three\nline four\n")
    c.sync("slow")
    name = next(p.name for p in srv.folder.iterdir() if p.is_file())
    # edits that touch different lines are merged, whatever the policy
    (c.notes / "1").write_text("Title\nline two, client\nline three\nline four\n")
    (srv.folder / name).write_text("Title\nline two\nline three\nline four, server\n")
    c.sync()
    merged = "Title\nline two, client\nline three\nline four, server"
    assert served_texts(srv.folder) == [merged]
    assert bodies(c.notes) == [merged]
    # the same line on both sides: the policy decides
    (c.notes / "1").write_text(
        "Title\nclient wrote this\nline three\nline four, server\n"
    )
    (srv.folder / name).write_text(
        "Title\nserver wrote this\nline three\nline four, server\n"
    )
    c.sync()
    client_text = "Title\nclient wrote this\nline three\nline four, server"
    server_text = "Title\nserver wrote this\nline three\nline four, server"
    expected = {
        "keep-both": sorted([client_text, server_text]),
        "client-wins": [client_text],
        "server-wins": [server_text],
    }[policy]
    assert served_texts(srv.folder) == expected
    assert bodies(c.notes) == expected


def test_refresh_modes(syncevo_server, served, tmp_path):
    srv = served()
    c = client(syncevo_server, tmp_path, srv.url)
    (c.notes / "1").write_text("Alpha\n")
    (srv.folder / "b.txt").write_text("Beta\n")
    c.sync("slow")
    (c.notes / "stray").write_text("Stray\nonly on the client\n")
    c.sync("refresh-from-server")
    assert bodies(c.notes) == ["Alpha", "Beta"]
    (srv.folder / "stray.txt").write_text("Stray\nonly in the folder\n")
    c.sync("refresh-from-client")
    assert served_texts(srv.folder) == ["Alpha", "Beta"]


def test_508_when_the_server_lost_the_client(syncevo_server, served, tmp_path):
    srv = served()
    c = client(syncevo_server, tmp_path, srv.url)
    (c.notes / "1").write_text("Alpha\n")
    (srv.folder / "b.txt").write_text("Beta\n")
    c.sync("slow")
    # the server's state is gone (a new machine, a restored backup...)
    os.killpg(srv.process.pid, signal.SIGTERM)
    srv.process.wait(timeout=30)
    from accord.config import default_state_dir

    for path in (default_state_dir() / "syncml-server").glob("*.db*"):
        path.unlink()
    srv = served(folder=srv.folder, port=srv.port)
    (c.notes / "3").write_text("Gamma\n")
    done = c.sync()
    assert "slow" in done.stdout + done.stderr
    assert served_texts(srv.folder) == ["Alpha", "Beta", "Gamma"]
    assert bodies(c.notes) == ["Alpha", "Beta", "Gamma"]


def test_a_large_note_split_over_messages(syncevo_server, served, tmp_path):
    srv = served()
    big = "Big note\n" + "".join(f"line {i} of a long note\n" for i in range(4000))
    (srv.folder / "big-server.txt").write_text("Server big\n" + "z" * 50000 + "\n")
    c = client(syncevo_server, tmp_path, srv.url)
    (c.notes / "1").write_text(big)
    c.sync("slow", maxMsgSize="8000")
    want = sorted([big.rstrip(), "Server big\n" + "z" * 50000])
    assert_same_texts(served_texts(srv.folder), want)
    assert_same_texts(bodies(c.notes), want)


def assert_same_texts(have: list[str], want: list[str]) -> None:
    """Equal lists of long texts, with a readable account when not."""
    if have == want:
        return
    lines = [f"{len(have)} texts, {len(want)} expected"]
    for a, b in zip(have, want, strict=False):
        at = next(
            (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
            min(len(a), len(b)),
        )
        lines.append(
            f"len {len(a)} vs {len(b)}, first difference at {at}: "
            f"{a[max(at - 40, 0) : at + 40]!r} vs {b[max(at - 40, 0) : at + 40]!r}"
        )
    raise AssertionError("\n".join(lines))


def test_wrong_password_is_refused(syncevo_server, served, tmp_path):
    srv = served()
    c = SyncEvoClient(
        tmp_path / "bad",
        syncevo_server.shim,
        srv.url,
        user="me",
        password="wrong",
        device=f"se-bad-{os.getpid()}",
    )
    (c.notes / "1").write_text("Alpha\n")
    done = c.sync("slow", check=False)
    assert done.returncode != 0
    assert [p for p in srv.folder.iterdir() if p.is_file()] == []


def test_edit_against_delete_keeps_the_edit(syncevo_server, served, tmp_path):
    srv = served()
    c = client(syncevo_server, tmp_path, srv.url)
    (c.notes / "1").write_text("Kept\nfirst\n")
    (c.notes / "2").write_text("Back\nsecond\n")
    c.sync("slow")
    kept = next(
        p for p in srv.folder.iterdir() if p.is_file() and "Kept" in p.read_text()
    )
    back = next(
        p for p in srv.folder.iterdir() if p.is_file() and "Back" in p.read_text()
    )
    # the client edits a note the folder deleted: the note is made again
    (c.notes / "1").write_text("Kept\nfirst, edited by the client\n")
    kept.unlink()
    # the client deletes a note the folder edited: the delete is refused and
    # the note comes back to the client
    (c.notes / "2").unlink()
    back.write_text("Back\nsecond, edited in the folder\n")
    c.sync()
    c.sync()
    want = ["Back\nsecond, edited in the folder", "Kept\nfirst, edited by the client"]
    assert served_texts(srv.folder) == want
    assert bodies(c.notes) == want
