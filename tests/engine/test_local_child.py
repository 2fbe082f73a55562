"""Two local folders are listed at the same time: the right side in a
forked child process (``engine/child.py``), the left one by the run
itself, each against its archived versions. The child's listing is the
one the run would make itself (problems and refused names included), and
a child that is lost (killed) is replaced by listing in the run."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from accord.capabilities import Capabilities
from accord.engine.detect import ChangeSet
from accord.engine.session import Session
from accord.keys import IgnoreRules
from accord.model import Entry, Problem
from accord.replicas.local import LocalReplica


class Traced(LocalReplica):
    """A local folder that notes, in a file, which process lists it (and
    leaves at once when ``die_in_child`` and a child lists it)."""

    log: Path
    die_in_child = False
    parent = 0

    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str | int]:
        with open(self.log, "a") as out:
            out.write(f"{self.root} {os.getpid()}\n")
        if self.die_in_child and os.getpid() != Traced.parent:
            os._exit(9)  # the child is lost: no result goes back
        return super().scan(ignore, known)


class Strict(Traced):
    """A local folder that cannot hold names with ':' (as some disks)."""

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        return Capabilities(forbidden_chars=":")


@pytest.fixture(autouse=True)
def forking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads another test left running (a server's) do not stop the
    run from forking here."""
    monkeypatch.setattr("accord.engine.session.can_fork", lambda: True)
    Traced.parent = os.getpid()
    Traced.die_in_child = False


def _tree(root: Path, names: dict[str, str]) -> None:
    for name, text in names.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two synced folders, then changed on both sides: an edit, a new
    file, a deletion, a name the left side cannot hold and a named pipe
    (problems), on the right side, which the child lists."""
    left, right, state = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    names = {f"d{i}/f{j}.txt": f"{i}{j}" for i in range(4) for j in range(30)}
    _tree(left, names)
    right.mkdir()
    with Session(str(left), str(right), state_dir=state) as session:
        session.apply(session.plan())
    (left / "d0" / "f0.txt").write_text("changed on the left")
    (right / "d1" / "f1.txt").write_text("changed on the right")
    (right / "d2" / "f2.txt").unlink()
    _tree(right, {"d3/new.txt": "new", "d3/a:b.txt": "refused"})
    os.mkfifo(right / "d3" / "pipe")
    return left, right, state


def _places(left: Path, right: Path, log: Path) -> tuple[Strict, Traced]:
    Traced.log = log
    return Strict(str(left)), Traced(str(right))


def _detected(pair: tuple[Path, Path, Path], log: Path) -> list[object]:
    """What detection found on both sides, in a comparable form."""
    left, right, state = pair
    with Session(*_places(left, right, log), state_dir=state) as session:
        found = session.detect()
    return [_comparable(changes) for changes in found]


def _comparable(changes: ChangeSet) -> object:
    return (
        sorted(
            (k, c.kind, c.now and c.now.version) for k, c in changes.changes.items()
        ),
        sorted(changes.problems),
        sorted(changes.unreliable),
        changes.seen,
    )


def _listers(log: Path) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for line in log.read_text().splitlines():
        root, pid = line.rsplit(" ", 1)
        found.setdefault(Path(root).name, set()).add(int(pid))
    return found


def test_the_right_side_is_listed_in_a_child_while_the_left_is_listed_here(
    pair: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    log = tmp_path / "listers"
    _detected(pair, log)
    listers = _listers(log)
    assert listers["l"] == {os.getpid()}
    (child,) = listers["r"]
    assert child != os.getpid()


def test_the_childs_listing_is_the_one_listed_here(
    pair: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    forked = _detected(pair, tmp_path / "forked")
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)  # a thread: no fork is safe
    other.start()
    try:
        from accord.engine import child

        assert not child.can_fork()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("accord.engine.session.can_fork", child.can_fork)
            here = _detected(pair, tmp_path / "here")
    finally:
        stop.set()
        other.join()
    assert {os.getpid()} == set().union(*_listers(tmp_path / "here").values())
    assert forked == here
    left, right = forked
    changes, problems = right[0], right[1]
    assert [(key, kind) for key, kind, _ in changes] == [
        ("d1/f1.txt", "modified"),
        ("d2/f2.txt", "deleted"),
        ("d3/new.txt", "created"),
    ]
    assert [(p.key, p.refused) for p in problems] == [
        ("d3/a:b.txt", True),
        ("d3/pipe", False),
    ]
    assert [(key, kind) for key, kind, _ in left[0]] == [("d0/f0.txt", "modified")]


def test_a_lost_child_is_replaced_by_listing_here(
    pair: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    listed = _detected(pair, tmp_path / "forked")
    Traced.die_in_child = True
    log = tmp_path / "lost"
    assert _detected(pair, log) == listed
    listers = _listers(log)
    assert os.getpid() in listers["r"] and len(listers["r"]) == 2  # child, then here


class Remote(Traced):
    """A local folder opened like a remote place (never listed in a child):
    the left side's listing starts ahead, in a child, while it opens."""

    fork_safe = False


def test_a_lost_child_listing_ahead_is_replaced_by_listing_here(
    pair: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    left, right, state = pair
    Traced.log = tmp_path / "ahead"
    with Session(Traced(str(left)), Remote(str(right)), state_dir=state) as session:
        assert session._ahead is not None  # the left side is listed ahead
        listed = [_comparable(changes) for changes in session.detect()]
    Traced.die_in_child = True
    Traced.log = log = tmp_path / "lost"
    with Session(Traced(str(left)), Remote(str(right)), state_dir=state) as session:
        assert session._ahead is not None
        assert [_comparable(changes) for changes in session.detect()] == listed
    listers = _listers(log)
    assert os.getpid() in listers["l"] and len(listers["l"]) == 2  # child, then here
    assert listers["r"] == {os.getpid()}
