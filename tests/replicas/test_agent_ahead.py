"""The calls a run makes first go to the agent with hello, in one write.

The real agent code serves, over a socket pair in this process, a local
folder; the client's channel counts its writes. The first calls (exists,
open, the ``.accordignore`` stat, is_empty_root) leave with hello and are
answered from what the agent sent back, in the order sent; a call that may
change what they answer, made first, drops them, so nothing is answered
from before a write; and the lock still comes before any listing: a lock
held by another run refuses the run with the same error as ever, and the
agent is never asked to list.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_agent_lies import _Channel as _SocketChannel

from accord.engine import rules
from accord.engine.policy import Policy
from accord.engine.session import Session
from accord.errors import LockHeld
from accord.fsdb import layout
from accord.model import DIR, Entry
from accord.replicas.agent import Agent
from accord.replicas.link import AgentLink
from accord.replicas.local import LocalReplica
from accord.replicas.ssh import AgentReplica
from accord.state import lock


class Server(Agent):
    """The agent, keeping a note of each call it runs, in order."""

    def __init__(self, fd: int) -> None:
        super().__init__(fd, fd)
        self.calls: list[tuple[str, list[Any]]] = []

    def call(self, ident: int, method: str, args: list[Any], data: Any) -> Any:
        self.calls.append((method, args))
        return super().call(ident, method, args, data)


class _Channel(_SocketChannel):
    """A socket as the link's channel, counting the writes made to it."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.writes = 0

    def sendall(self, data: bytes) -> None:
        self.writes += 1
        super().sendall(data)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[AgentReplica, Server, _Channel]]:
    root = tmp_path / "server"
    root.mkdir()
    (root / "a.txt").write_text("a")
    ours, theirs = socket.socketpair()
    server = Server(theirs.fileno())

    def serve() -> None:
        try:
            server.serve()
        finally:
            theirs.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    channel = _Channel(ours)
    link = AgentLink(channel, "sftp://host/server")
    place = AgentReplica(link, str(root), "sftp://host/server", "sftp://host/server")
    place.start()
    try:
        yield place, server, channel
    finally:
        place.close()
        thread.join(timeout=10)


def test_the_first_calls_leave_with_hello_and_are_answered_in_order(
    served: tuple[AgentReplica, Server, _Channel],
) -> None:
    place, server, channel = served
    assert channel.writes == 1  # hello and the first calls: one write
    assert place.exists()
    place.open(create=False)
    assert place.stat("other.txt") is None  # another read, asked meanwhile
    assert place.stat(layout.MARKER) is None
    assert place.stat(rules.IGNORE_FILE) is None
    assert not place.is_empty_root()
    assert channel.writes == 2  # only the read that was not sent ahead
    assert server.calls == [
        ("hello", [place.root, None]),
        ("exists", []),
        ("open", [False]),
        ("stat", [layout.MARKER]),
        ("stat", [rules.IGNORE_FILE]),
        ("is_empty_root", []),
        ("stat", ["other.txt"]),
    ]


def test_a_call_that_may_write_drops_what_was_sent_ahead(
    served: tuple[AgentReplica, Server, _Channel],
) -> None:
    place, server, channel = served
    place.open(create=False)
    like = Entry(rules.IGNORE_FILE, DIR, 0, 0, 0o755, "")
    place.make_dir(rules.IGNORE_FILE, like=like, expect=None)
    # answered now, after the write, not from before it
    found = place.stat(rules.IGNORE_FILE)
    assert found is not None and found.kind == DIR
    assert place.is_empty_root() is False
    assert [method for method, _ in server.calls][-3:] == [
        "make_dir",
        "stat",
        "is_empty_root",
    ]
    assert channel.writes == 4  # hello's, make_dir, stat, is_empty_root


@pytest.mark.parametrize("mode", ["mirror", "sync"])
def test_a_lock_held_by_another_run_refuses_the_run_before_any_listing(
    served: tuple[AgentReplica, Server, _Channel], tmp_path: Path, mode: str
) -> None:
    place, server, _ = served
    other = LocalReplica(place.root)
    other.open()
    # another run's, alive: pid 1 always runs
    held = lock.LockInfo("someone@else", os.uname().nodename, 1, 0.0, "another")
    assert other.meta_create(lock.LOCK_NAME, json.dumps(held._asdict()).encode())
    local = tmp_path / "local"
    local.mkdir()
    policy = Policy(mode=mode)
    with (
        pytest.raises(LockHeld, match=r"is busy: locked by someone@else \(pid"),
        Session(str(local), place, policy=policy, state_dir=tmp_path / "st"),
    ):
        pass
    methods = [method for method, _ in server.calls]
    assert "meta_create" in methods
    assert "scan" not in methods  # nothing was listed
    assert lock._read(other) == held  # the other run's lock is untouched
