"""A first copy's new folders are made while the forked copiers copy.

The folders are made in this process, each once and before anything is
copied into it: a block of the copy phase is handed to the copiers once
the folders its items go into are made, so the copiers start with the
first block's folders, not after all of them.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from accord import api
from accord.engine import forked
from accord.engine.apply import Executor
from accord.engine.perform import Attempt, Performer
from accord.errors import AccordError

pytestmark = pytest.mark.forks
FILES = 700


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    for i in range(FILES):
        path = root / f"d{i // 100}" / f"s{i // 25 % 4}" / f"f{i:04}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"file {i}\n".encode() * (i % 30 + 1))
    (root / "empty" / "inner").mkdir(parents=True)
    return root


def test_folders_are_made_once_each_while_the_copiers_copy(
    source: Path, tmp_path: Path, monkeypatch
):
    monkeypatch.setattr(forked, "_FORK_MIN", 512)
    target = tmp_path / "dst"
    one, made, seen = Executor.one, [], []
    first = target / "d0" / "s0" / "f0000.txt"

    def watched(self: Executor, seq, action):
        if action.entry is not None and action.entry.kind == "dir":
            made.append(action.key)
            if action.key == "d6/s3":  # the last folder with files
                # a copier copies the first block meanwhile
                deadline = time.monotonic() + 20
                while not first.exists() and time.monotonic() < deadline:
                    time.sleep(0.01)
                seen.append(first.exists())
        return one(self, seq, action)

    monkeypatch.setattr(Executor, "one", watched)
    report = api.sync(str(source), str(target), state_dir=tmp_path / "state")
    assert report.ok, report.aborted
    assert seen == [True]
    assert len(made) == len(set(made))  # each once
    holding = {str(p.parent.relative_to(source)) for p in source.rglob("*.txt")}
    assert holding | {"d0", "d6", "empty"} <= set(made)
    assert made.index("d1") < made.index("d1/s0")  # parents first
    copied = sorted(p.relative_to(target) for p in target.rglob("*.txt"))
    assert copied == sorted(p.relative_to(source) for p in source.rglob("*.txt"))
    for name in copied:
        assert (target / name).read_bytes() == (source / name).read_bytes()
    assert (target / "empty" / "inner").is_dir()
    assert not api.sync(
        str(source), str(target), state_dir=tmp_path / "state", dry_run=True
    ).actions


def test_a_run_stopped_while_folders_are_made_hands_out_no_more_blocks(
    source: Path, tmp_path: Path, monkeypatch
):
    monkeypatch.setattr(forked, "_FORK_MIN", 512)
    target, state = tmp_path / "dst", tmp_path / "state"
    attempt = Performer.attempt

    def full(self: Performer, action):
        if action.key == "d3":
            return Attempt("fatal", [], [], "no space", AccordError("no space"))
        return attempt(self, action)

    monkeypatch.setattr(Performer, "attempt", full)
    report = api.sync(str(source), str(target), state_dir=state)
    assert report.aborted == "no space"
    # nothing went into the folders after the one that stopped the run
    assert not (target / "d3").exists()
    assert not list(target.glob("d[4-6]/*/*.txt"))
    assert {o.status for o in report.outcomes} <= {"done", "failed", "not-run"}
    assert len(report.outcomes) == len(report.plan.actions)

    monkeypatch.setattr(Performer, "attempt", attempt)
    again = api.sync(str(source), str(target), state_dir=state)
    assert again.ok, again.aborted
    copied = sorted(p.relative_to(target) for p in target.rglob("*.txt"))
    assert copied == sorted(p.relative_to(source) for p in source.rglob("*.txt"))
