"""The agent's client believes nothing it should not.

A malicious SSH server is out of reach of a test, but the agent's replies are
not: here the real agent code (``agent.py``) serves, over a socket pair in
this process, a local place that lies: its listing holds names that would
leave the place, and it answers for other names than the ones asked about.
The client (``AgentReplica``) and the engine's name gate must refuse all of
it, and nothing may change outside the target.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from accord.engine.detect import KnownInOrder
from accord.engine.policy import Policy
from accord.engine.session import Session
from accord.errors import ReplicaError, UnsafeName
from accord.keys import IgnoreRules
from accord.model import DIR, FILE, Entry, Problem
from accord.replica import WriteItem
from accord.replicas import wire
from accord.replicas.agent import Agent
from accord.replicas.link import AgentLink
from accord.replicas.local import LocalReplica
from accord.replicas.ssh import AgentReplica
from accord.testing.contract import disk_snapshot

HOSTILE = [
    "../escape1.txt",
    "a/../../../escape3.txt",
    "/abs/escape.txt",
    "a//b.txt",
    "./dot.txt",
    ".accord/lock",
    ".Accord/x",
    "nul\0.txt",
]
_MTIME = 1_700_000_000_000_000_000


class LyingPlace(LocalReplica):
    """What a compromised server's agent might say about its folder."""

    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str]:
        yield from super().scan(ignore, known)
        yield "../not-a-known-key"  # "unchanged", for a key never asked about
        yield Problem("../../problem", None, "cannot list this folder")
        yield Entry("..", DIR, 0, 0, 0o755, "d")
        for key in HOSTILE:
            yield Entry(key, FILE, 5, _MTIME, 0o644, f"v:{key}")

    def stat(self, key: str) -> Entry | None:
        found = super().stat(key)
        if key == "liar.txt" and found is not None:
            return found._replace(key="../liar.txt")
        return found


class Server(Agent):
    """The agent, serving a lying place, and keeping a note of each call."""

    def __init__(self, fd: int) -> None:
        super().__init__(fd, fd)
        self.calls: list[tuple[str, list[Any]]] = []

    def hello(self, root: str, case_sensitive: bool | None) -> dict[str, Any]:
        answer = super().hello(root, case_sensitive)
        self.replica = LyingPlace(root)
        return answer

    def call(self, ident: int, method: str, args: list[Any], data: Any) -> Any:
        self.calls.append((method, args))
        return super().call(ident, method, args, data)


class _Channel:
    """A socket as the link's channel."""

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
def served(tmp_path: Path) -> Iterator[tuple[AgentReplica, Server]]:
    root = tmp_path / "top" / "1" / "2" / "server"
    root.mkdir(parents=True)
    (root / "good.txt").write_text("good")
    (root / "liar.txt").write_text("liar")
    with _through(Server, root, "sftp://x/data") as (place, server):
        yield place, server  # type: ignore[misc]


@contextlib.contextmanager
def _through(
    make: Callable[[int], Agent], root: Path, origin: str
) -> Iterator[tuple[AgentReplica, Agent]]:
    """A place of ``root`` served by the agent ``make(fd)`` makes, run in a
    thread over a socket pair; closed after."""
    ours, theirs = socket.socketpair()
    agent = make(theirs.fileno())

    def serve() -> None:
        try:
            agent.serve()
        finally:
            theirs.close()  # as the agent's process would, on exit

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    link = AgentLink(_Channel(ours), "sftp://evil.example/data")
    place = AgentReplica(link, str(root), "sftp://evil.example/data", origin)
    place.start()
    try:
        yield place, agent
    finally:
        place.close()
        thread.join(timeout=10)


@pytest.mark.parametrize("mode", ["mirror", "sync"])
def test_a_lying_listing_is_refused_and_nothing_leaves_the_target(
    served: tuple[AgentReplica, Server], tmp_path: Path, mode: str
) -> None:
    place, _ = served
    target = tmp_path / "top" / "1" / "2" / "target"
    before = _around(tmp_path / "top")
    policy = Policy(mode=mode)
    with Session(place, str(target), policy=policy, state_dir=tmp_path / "st") as run:
        plan = run.plan()
        report = run.apply(plan)
    refused = {p.key for p in plan.problems if p.refused}
    assert refused == set(HOSTILE)  # '..' holds '../escape1.txt': told once, deeper
    assert all(
        "sftp://evil.example/data" in p.message for p in plan.problems if p.refused
    )
    assert {a.key for a in plan.changes} == {"good.txt", "liar.txt"}
    assert (target / "good.txt").read_text() == "good"
    assert report.refused and not report.ok
    assert _around(tmp_path / "top") == before


def test_the_client_never_sends_an_unsafe_key(
    served: tuple[AgentReplica, Server],
) -> None:
    place, server = served
    place.open()
    server.calls.clear()
    like = Entry("x", FILE, 1, _MTIME, 0o644, "")
    for key in ["../x", "a/../../x", "/x", ".accord/lock", "", "a//b"]:
        for attempt in (
            lambda: place.stat(key),  # noqa: B023
            lambda: place.open_read(key),  # noqa: B023
            lambda: place.write(key, io.BytesIO(b"x"), like=like, expect=None),  # noqa: B023
            lambda: place.make_dir(key, like=like, expect=None),  # noqa: B023
            lambda: place.delete(key, expect=like),  # noqa: B023
            lambda: place.move("good.txt", key, expect=like),  # noqa: B023
            lambda: place.set_meta(key, like=like, expect=like),  # noqa: B023
        ):
            with pytest.raises(UnsafeName):
                attempt()
    with pytest.raises(UnsafeName):
        place.trash_purge("../..")
    (refused, written) = place.write_batch(
        [
            WriteItem("../x", b"x", like, None),
            WriteItem("fine.txt", b"x", like._replace(key="fine.txt"), None),
        ]
    )
    assert isinstance(refused, UnsafeName) and isinstance(written, Entry)
    assert [method for method, _ in server.calls] == ["write_batch"]
    assert [item[0] for item in server.calls[0][1][0]] == ["fine.txt"]


def test_an_answer_about_another_name_is_not_believed(
    served: tuple[AgentReplica, Server],
) -> None:
    place, _ = served
    place.open()
    assert place.stat("good.txt") is not None
    with pytest.raises(ReplicaError, match="answered for another name"):
        place.stat("liar.txt")


def _around(top: Path) -> dict[str, object]:
    """Everything but the target and accord's own folders."""
    return {
        k: v
        for k, v in disk_snapshot(top).items()
        if not k.startswith("1/2/target") and ".accord" not in k
    }


class RunTeller(Agent):
    """An agent whose listings are what ``answer(options)`` says, sent as
    one batch: runs of items "as kept" among them, true or not."""

    def __init__(self, fd: int, answer: Any) -> None:
        super().__init__(fd, fd, listings="/nowhere")  # says it keeps listings
        self.answer = answer
        self.asked: list[dict[str, Any]] = []

    def _list(
        self, ident: int, credit: Any, patterns: list[str], options: dict[str, Any]
    ) -> None:
        self.asked.append(options)
        self._push(ident, credit, wire.dumps(self.answer(options)))


def _told(tmp_path: Path, answer: Any) -> tuple[list[Any], RunTeller]:
    """What a listing through a RunTeller gives, against archive rows of
    ``a`` and ``b``."""
    with _through(lambda fd: RunTeller(fd, answer), tmp_path, "x") as (place, agent):
        known = KnownInOrder([("a", "1"), ("b", "2")], "token")
        found = list(place.scan(None, known))  # type: ignore[arg-type]
        found.append(known.finish())
        return found, agent  # type: ignore[return-value]


def test_a_run_the_archive_does_not_hold_brings_the_rest_in_full(
    tmp_path: Path,
) -> None:
    a = Entry("a", FILE, 1, _MTIME, 0o644, "1")
    b = Entry("b", FILE, 1, _MTIME, 0o644, "9")

    def answer(options: dict[str, Any]) -> list[Any]:
        if "from" in options:
            return [list(a), list(b)]
        pairs = [("a", "1"), ("b", "2")]  # the archive's rows, as if unchanged
        return [{"r": ["a", 2, wire.run_digest(pairs)[::-1]]}]  # a wrong digest

    found, agent = _told(tmp_path, answer)
    assert agent.asked == [{"token": "token"}, {"token": "token", "from": "a"}]
    assert found == ["a", b, []]  # a unchanged, b changed: as a full listing says


def test_a_run_in_a_full_listing_is_refused(tmp_path: Path) -> None:
    def answer(options: dict[str, Any]) -> list[Any]:
        return [{"r": ["a", 1, "0" * 32]}]  # never the archive's digest

    with pytest.raises(ReplicaError, match="a run in a full listing"):
        _told(tmp_path, answer)


def test_a_true_run_passes_as_unchanged_items(tmp_path: Path) -> None:
    def answer(options: dict[str, Any]) -> list[Any]:
        return [{"r": ["b", 1, wire.run_digest([("b", "2")])]}]

    found, agent = _told(tmp_path, answer)
    assert agent.asked == [{"token": "token"}]
    assert found == [1, ["a"]]  # b passed as unchanged, a not listed: gone
