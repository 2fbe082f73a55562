"""The server a ``syncml+http(s)://`` URL names, and a sync through an IPv6
address (``[::1]``) against accord's own SyncML server over real HTTP."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

import pytest

import accord
from accord.replicas.syncml import SyncMLReplica
from accord.syncml.app import syncml_app
from accord.syncml.store import FolderStore, SingleUser
from syncml.conftest import texts


@pytest.mark.parametrize(
    ("url", "server"),
    [
        ("syncml+http://[::1]:8080/sync?store=notes", "http://[::1]:8080/sync"),
        ("syncml+https://[2001:DB8::7]/sync?store=notes", "https://[2001:db8::7]/sync"),
        ("syncml+http://[::1]?store=notes", "http://[::1]/"),
        ("syncml+http://me@[::1]:8080/sync?store=notes", "http://[::1]:8080/sync"),
        ("syncml+http://127.0.0.1:8080/sync?store=notes", "http://127.0.0.1:8080/sync"),
        ("syncml+https://Example.org/s?store=notes", "https://example.org/s"),
        (
            "syncml+https://me@example.org:8443/s?store=notes",
            "https://example.org:8443/s",
        ),
    ],
)
def test_the_server_url_keeps_the_host_port_and_path(url, server):
    place = SyncMLReplica.from_url(url)
    assert place.server == server
    assert place.url == f"syncml+{server}?store=notes"
    # it parses back to the host and port it was given
    given, again = urlsplit(url.partition("+")[2]), urlsplit(place.server)
    assert (again.hostname, again.port) == (given.hostname, given.port)


def test_the_user_of_an_ipv6_url_goes_to_the_options_not_the_server_url():
    place = SyncMLReplica.from_url("syncml+http://me@[::1]:8080/s?store=notes")
    assert place.user == "me"
    assert "@" not in place.server
    given = SyncMLReplica.from_url(
        "syncml+http://me@[::1]:8080/s?store=notes", user="other"
    )
    assert given.user == "other"


def _ipv6_loopback() -> socket.socket:
    """A listening socket on ``[::1]`` (any free port), or a skip."""
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6 support")
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError as exc:
        pytest.skip(f"no IPv6 sockets on this machine: {exc}")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("::1", 0))
        sock.listen(16)
    except OSError as exc:
        sock.close()
        pytest.skip(f"loopback IPv6 (::1) cannot be bound here: {exc}")
    return sock


@pytest.fixture
def served_on_ipv6(tmp_path):
    """accord's SyncML app served by uvicorn on ``[::1]``: ``(folder, url)``."""
    uvicorn = pytest.importorskip("uvicorn")
    sock = _ipv6_loopback()
    port = sock.getsockname()[1]
    folder = tmp_path / "served"
    folder.mkdir()
    store = FolderStore(str(folder), "notes", state_dir=tmp_path / "server-state")
    app = syncml_app(store, SingleUser("me", "pw"), store.state)
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ws="none", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped before it served"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        yield folder, f"syncml+http://[::1]:{port}/syncml?store=notes"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        store.close()


def test_a_sync_through_an_ipv6_address(served_on_ipv6, tmp_path):
    served, url = served_on_ipv6
    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_text("Alpha\nfrom the folder\n")
    (served / "b.txt").write_text("Beta\nfrom the server\n")

    def place() -> SyncMLReplica:
        return SyncMLReplica.from_url(
            url,
            user="me",
            password="pw",
            device="accord-ipv6-test",
            state_dir=str(tmp_path / "client-state"),
        )

    first = place()
    assert first.server == url.removeprefix("syncml+").partition("?")[0]
    assert first.server.startswith("http://[::1]:")
    report = accord.sync(str(local), first)
    assert report.ok, report.summary()
    want = ["Alpha\nfrom the folder", "Beta\nfrom the server"]
    assert texts(local) == texts(served) == want
    # a second run, on the anchors of the first, brings the server's edit
    (served / "b.txt").write_text("Beta\nfrom the server\nedited there\n")
    again = accord.sync(str(local), place())
    assert again.ok, again.summary()
    assert "edited there" in (local / "b.txt").read_text()
