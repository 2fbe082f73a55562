"""A first sync's plan asks the empty archive nothing about each key.

Before, the keys both listings showed were looked up in the archive 500 at a
time after the scan (``ArchiveKeys.learn``), although a first sync's archive
holds none of them; the plan must stay the same without the lookups.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accord.engine.policy import Policy
from accord.engine.session import Session
from accord.state.store import ArchiveStore


def _tree(root: Path) -> None:
    for folder in ("a", "a/b", "c"):
        (root / folder).mkdir(parents=True)
        for n in range(3):
            (root / folder / f"f{n}.txt").write_text(f"{folder} {n}")


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The keys each ``ArchiveStore.rows`` call asked about."""
    calls: list[list[str]] = []
    real = ArchiveStore.rows

    def rows(self: ArchiveStore, keys):  # type: ignore[no-untyped-def]
        keys = list(keys)
        calls.append(keys)
        return real(self, keys)

    monkeypatch.setattr(ArchiveStore, "rows", rows)
    return calls


@pytest.mark.parametrize("mode", ["sync", "mirror"])
def test_a_first_copy_plans_without_asking_the_archive(
    tmp_path: Path, asked: list[list[str]], mode: str
) -> None:
    left, right = tmp_path / "left", tmp_path / "right"
    _tree(left)
    right.mkdir()
    keys = sorted(p.relative_to(left).as_posix() for p in left.rglob("*"))
    policy = Policy(mode=mode, delete=mode == "mirror")
    with Session(str(left), str(right), policy=policy, state_dir=tmp_path) as run:
        plan = run.plan()
        assert not [keys for keys in asked if keys]
        assert sorted(a.key for a in plan.actions) == keys
        assert {a.op for a in plan.actions} == {"copy"}
        assert all(a.expect is None for a in plan.actions)
        run.apply(plan)
    for path in left.rglob("*.txt"):
        assert (right / path.relative_to(left)).read_text() == path.read_text()


def test_the_next_run_still_finds_what_changed(tmp_path: Path) -> None:
    left, right = tmp_path / "left", tmp_path / "right"
    _tree(left)
    right.mkdir()
    for _ in range(2):
        with Session(str(left), str(right), state_dir=tmp_path) as run:
            plan = run.plan()
            run.apply(plan)
    (right / "a" / "f0.txt").write_text("changed on the right")
    (left / "c" / "new.txt").write_text("new on the left")
    with Session(str(left), str(right), state_dir=tmp_path) as run:
        plan = run.plan()
        assert sorted((a.key, a.side.value) for a in plan.actions) == [
            ("a/f0.txt", "left"),
            ("c/new.txt", "right"),
        ]


def test_one_sided_creates_are_what_decide_answers() -> None:
    """Nothing archived: what one side created alone is planned without
    ``decide`` (a first copy's shortcut), as ``decide`` would plan it;
    keys both sides created still go through it."""
    from accord.engine.detect import CREATED, Change, ChangeSet
    from accord.engine.plan import Action
    from accord.engine.reconcile import decide, reconcile
    from accord.model import DIR, FILE, Entry, Side

    def changes(side: Side, keys: list[str]) -> ChangeSet:
        made = {
            key: Change(CREATED, Entry(key, DIR if "." not in key else FILE, 1), None)
            for key in keys
        }
        return ChangeSet(side, made, [], [], [], len(made))

    policy = Policy()

    def decided(left: ChangeSet, right: ChangeSet) -> list[Any]:
        expected = []
        for key in sorted(left.changes.keys() | right.changes.keys()):
            answer = decide(
                key,
                left.changes.get(key),
                right.changes.get(key),
                None,
                policy,
                first_sync=True,
                taken=set(),
            )
            assert isinstance(answer, list)
            expected += answer
        return sorted(expected)

    left = changes(Side.LEFT, ["a", "a/x.txt", "both.txt", "z.txt"])
    right = changes(Side.RIGHT, ["b", "b/y.txt", "both.txt"])
    plan = reconcile(left, right, {}, policy, first_sync=True)
    assert sorted(plan.actions) == decided(left, right)
    assert len(plan.actions) == 6
    # one side alone (a first copy into an empty folder), either side
    for side in Side:
        ours = changes(side, ["a", "a/x.txt", "a.txt", "z/y.txt"])
        theirs = changes(Side.RIGHT if side is Side.LEFT else Side.LEFT, [])
        pair = (ours, theirs) if side is Side.LEFT else (theirs, ours)
        plan = reconcile(*pair, {}, policy, first_sync=True)
        assert sorted(plan.actions) == decided(*pair)
        assert [type(a) for a in plan.actions] == [Action] * 4


def test_the_collector_rests_while_a_run_plans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planning makes objects per item and no cycles: the garbage
    collector is off meanwhile, and as it was afterwards."""
    import gc

    from accord.engine import session

    enabled: list[bool] = []
    real = session.reconcile

    def noting(*args: Any, **kwargs: Any) -> Any:
        enabled.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(session, "reconcile", noting)
    left, right = tmp_path / "left", tmp_path / "right"
    _tree(left)
    assert gc.isenabled()
    with Session(str(left), str(right), state_dir=tmp_path) as run:
        run.plan()
    assert enabled == [False]
    assert gc.isenabled()
