"""The local side's listing, started while a remote side connects
(``engine/ahead.py``): taken only when it is the listing the run needs,
with the left side locked first, and the same result as listing after."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord import api
from accord.engine import ahead
from accord.engine.policy import Policy
from accord.engine.session import Session
from accord.errors import Unreachable
from accord.replicas.local import LocalReplica


class Remote(LocalReplica):
    """A local folder that is opened like a remote place: not listed in a
    child process, so the session lists the left side ahead of it."""

    fork_safe = False
    opened_with_left_locked: bool | None = None

    def open(self, create: bool = False) -> None:
        left_lock = Path(self.left_root) / ".accord" / "lock"
        Remote.opened_with_left_locked = left_lock.exists()
        super().open(create)


def _remote(root: Path, left: Path) -> Remote:
    place = Remote(str(root))
    place.left_root = str(left)  # type: ignore[attr-defined]
    return place


@pytest.fixture(autouse=True)
def forking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads another test left running (a server's) do not stop the
    listing ahead here: it forks to list a local folder only."""
    monkeypatch.setattr("accord.engine.session.can_fork", lambda: True)


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, per run, whether the listing started ahead was taken."""
    found: list[bool] = []
    real = ahead.Ahead.take

    def take(self: ahead.Ahead, *args: object) -> object:
        got = real(self, *args)  # type: ignore[arg-type]
        found.append(got is not None)
        return got

    monkeypatch.setattr(ahead.Ahead, "take", take)
    return found


def _tree(root: Path, names: dict[str, str]) -> None:
    for name, text in names.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_mirror_to_a_remote_side_lists_the_left_ahead(
    tmp_path: Path, taken: list[bool]
) -> None:
    left, right, state = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    _tree(left, {"a.txt": "1", "d/b.txt": "2", "d/c/e.txt": "3"})
    right.mkdir()
    report = api.mirror(str(left), _remote(right, left), state_dir=state)
    assert len(report.done) == 5  # 3 files, 2 folders
    assert Remote.opened_with_left_locked is True
    (left / "a.txt").write_text("changed")
    (left / "d" / "b.txt").unlink()
    _tree(left, {"d/new.txt": "4"})
    report = api.mirror(str(left), _remote(right, left), state_dir=state, delete=True)
    assert sorted((o.action.op, o.action.key) for o in report.done) == [
        ("copy", "a.txt"),
        ("copy", "d/new.txt"),
        ("delete", "d/b.txt"),
    ]
    report = api.mirror(str(left), _remote(right, left), state_dir=state, delete=True)
    assert not report.done
    assert taken == [True, True, True]
    assert (right / "a.txt").read_text() == "changed"
    assert not (right / "d" / "b.txt").exists()


def test_rules_the_guess_missed_list_again(tmp_path: Path, taken: list[bool]) -> None:
    """A first sync guesses the remote side has no .accordignore: where it
    has one, the listing made ahead is dropped and the rules apply."""
    left, right, state = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    _tree(left, {"keep.txt": "1", "skip.log": "2"})
    _tree(right, {".accordignore": "*.log\n"})
    api.sync(str(left), _remote(right, left), state_dir=state)
    assert taken == [False]
    assert (right / "keep.txt").exists()
    assert not (right / "skip.log").exists()


def test_a_name_the_remote_side_cannot_hold_is_still_refused(
    tmp_path: Path, taken: list[bool]
) -> None:
    """The listing made ahead could not know the remote side's limits: its
    names pass the run's full gate when it is taken."""
    left, right, state = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    _tree(left, {"ok.txt": "1", "a:b.txt": "2"})
    right.mkdir()
    remote = _remote(right, left)
    real_open = remote.open

    def open_(create: bool = False) -> None:
        real_open(create)
        remote.capabilities = remote.capabilities._replace(forbidden_chars=":")

    remote.open = open_  # type: ignore[method-assign]
    report = api.mirror(str(left), remote, state_dir=state)
    assert taken == [True]
    assert [o.action.key for o in report.done] == ["ok.txt"]
    assert any(p.key == "a:b.txt" and p.refused for p in report.problems)


def test_a_remote_side_that_fails_to_open_leaves_the_left_unlocked(
    tmp_path: Path,
) -> None:
    left, right, state = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    _tree(left, {"a.txt": "1"})
    right.mkdir()
    api.mirror(str(left), _remote(right, left), state_dir=state)
    broken = _remote(right, left)

    def fail(create: bool = False) -> None:
        raise Unreachable("no route", where="remote")

    broken.open = fail  # type: ignore[method-assign]
    mirror = Policy(mode="mirror")
    with (
        pytest.raises(Unreachable),
        Session(str(left), broken, policy=mirror, state_dir=state),
    ):
        pass
    assert not (left / ".accord" / "lock").exists()
    # and the next run works
    assert not api.mirror(str(left), _remote(right, left), state_dir=state).done


def test_the_ahead_listing_finds_what_listing_after_finds(tmp_path: Path) -> None:
    """Same plans with and without the listing ahead, over changes on both
    sides of a two-way sync."""
    plans = []
    for use_ahead in (True, False):
        left, right = tmp_path / f"l{use_ahead}", tmp_path / f"r{use_ahead}"
        state = tmp_path / f"s{use_ahead}"
        _tree(left, {"a": "1", "b/c": "2", "b/d": "3", "e": "4"})
        right.mkdir()
        api.sync(str(left), _remote(right, left), state_dir=state)
        (left / "a").write_text("11")
        (left / "b" / "c").unlink()
        (right / "e").write_text("44")
        _tree(right, {"f": "5"})
        with pytest.MonkeyPatch.context() as patch:
            if not use_ahead:
                patch.setattr(Session, "_list_ahead", lambda self: None)
            plan = api.sync(
                str(left), _remote(right, left), state_dir=state, dry_run=True
            )
        plans.append(sorted((a.op, a.key, str(a.side)) for a in plan.actions))
    assert plans[0] == plans[1]
    assert plans[0]  # there were changes to find
