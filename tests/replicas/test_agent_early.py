"""What the agent does before its scan is asked for, and around it.

The client names, in its hello, the archive rows it will list against (a
token), so the agent reads the listing it kept for them while the client
takes its lock: accord's own file in the server's cache folder, never the
tree. The real agent code serves a local folder over a socket pair in this
process; the client is ``AgentReplica``.
"""

from __future__ import annotations

import gc
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from accord.engine.detect import KnownInOrder
from accord.model import Entry
from accord.replicas import agent, agent_listing
from accord.replicas.agent import Agent
from accord.replicas.link import AgentLink
from accord.replicas.local import LocalReplica
from accord.replicas.ssh import AgentReplica

TOKEN = "archive-token"


class _Channel:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)

    def shutdown_write(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "server"
    for index in range(40):
        folder = root / f"d{index % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{index:03}.txt").write_text(f"file {index}\n")
    return root


def _pairs(root: Path) -> list[tuple[str, str]]:
    """The tree's (key, version) pairs, as the agent's scan makes them."""
    found = LocalReplica(str(root)).scan()
    return [(item.key, item.version) for item in found if isinstance(item, Entry)]


def _keep(folder: Path, root: Path, pairs: list[tuple[str, str]], token: str) -> None:
    name = agent_listing.listing_name(token, str(root))
    agent_listing.write_kept(str(folder), name, pairs)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Agent, AgentLink, Path]]:
    listings = tmp_path / "listings"
    ours, theirs = socket.socketpair()
    server = Agent(theirs.fileno(), theirs.fileno(), str(listings))

    def serve() -> None:
        try:
            server.serve()
        finally:
            theirs.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    link = AgentLink(_Channel(ours), "sftp://server.example/data")
    try:
        yield server, link, listings
    finally:
        link.close()
        thread.join(timeout=10)


def _place(link: AgentLink, root: Path, token: str | None) -> AgentReplica:
    place = AgentReplica(link, str(root), "sftp://server.example/data", "id")
    place.start(token)
    return place


def _scan(place: AgentReplica, pairs: list[tuple[str, str]], token: str) -> list:
    return list(place.scan(None, KnownInOrder(iter(pairs), token)))  # type: ignore[arg-type]


def test_hello_with_a_token_reads_the_kept_listing_before_the_scan(
    tree: Path, served: tuple[Agent, AgentLink, Path]
) -> None:
    server, link, listings = served
    pairs = _pairs(tree)
    _keep(listings, tree, pairs, TOKEN)
    place = _place(link, tree, TOKEN)
    early = server._early
    assert early is not None  # reading since hello
    early._thread.join(timeout=10)
    found = _scan(place, pairs, TOKEN)
    assert server._early is None  # taken by the scan
    assert sum(found) == len(pairs)  # runs only: every item as kept
    assert place.runs_listed >= 1
    assert place.items_listed == 0


def test_a_kept_listing_replaced_after_hello_is_read_again(
    tree: Path, served: tuple[Agent, AgentLink, Path]
) -> None:
    server, link, listings = served
    pairs = _pairs(tree)
    _keep(listings, tree, [(key, "stale") for key, _ in pairs], TOKEN)
    place = _place(link, tree, TOKEN)
    assert server._early is not None
    server._early._thread.join(timeout=10)  # the stale pairs are read
    _keep(listings, tree, pairs, TOKEN)  # another session kept the true ones
    _scan(place, pairs, TOKEN)
    assert place.runs_listed >= 1
    assert place.items_listed == 0  # not listed in full, as the stale pairs would


def test_a_listing_read_early_serves_only_its_own_token(
    tree: Path, served: tuple[Agent, AgentLink, Path]
) -> None:
    _, link, listings = served
    pairs = _pairs(tree)
    _keep(listings, tree, pairs, TOKEN)
    _keep(listings, tree, [(key, "other") for key, _ in pairs], "other-token")
    place = _place(link, tree, "other-token")
    found = _scan(place, pairs, TOKEN)  # another token than hello's
    assert sum(x if isinstance(x, int) else 1 for x in found) == len(pairs)
    assert place.items_listed == 0  # TOKEN's own kept pairs, not other-token's


def test_hello_without_a_token_reads_nothing_early(
    tree: Path, served: tuple[Agent, AgentLink, Path]
) -> None:
    server, link, listings = served
    pairs = _pairs(tree)
    _keep(listings, tree, pairs, TOKEN)
    place = _place(link, tree, None)
    assert server._early is None
    _scan(place, pairs, TOKEN)
    assert place.items_listed == 0  # read at the scan, as before


def test_the_collector_pauses_for_listings_and_resumes_after_the_last() -> None:
    assert gc.isenabled()
    with agent._no_collection():
        assert not gc.isenabled()
        with agent._no_collection():  # another listing, in another thread
            assert not gc.isenabled()
        assert not gc.isenabled()  # the first is still being made
    assert gc.isenabled()
    with pytest.raises(OSError), agent._no_collection():
        raise OSError("a listing that failed")
    assert gc.isenabled()


def test_a_listing_reads_archive_rows_ahead_while_it_waits() -> None:
    rows = [(f"k{index:06}", str(index)) for index in range(3000)]
    known = KnownInOrder(iter(rows))
    while known.read_ahead(1000):
        pass
    assert 1000 <= known.count < 1000 + 256  # at most one read past the limit
    assert not known.read_ahead(1000)
    assert known.same(rows[:1500])  # what was read ahead serves as before
    while known.read_ahead(5000):
        pass
    assert known.count == 3000
    assert not known.read_ahead(5000)  # the archive is all read
    assert known.get("k002999") == "2999"
    assert known.finish() == [f"k{index:06}" for index in range(1500, 2999)]
