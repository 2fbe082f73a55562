"""The forked copiers take blocks of the copy phase one after the other.

A child that dies leaves the rest of its block; the other child goes on
with the blocks nobody took, so one death costs at most a block, and the
next run completes the copy.
"""

from __future__ import annotations

import os
from pathlib import Path

from accord import api
from accord.engine import forked
from accord.engine.perform import Performer

FILES = 640


def _tree(root: Path) -> None:
    for i in range(FILES):
        path = root / f"d{i // 100}" / f"f{i:04}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"file {i}\n".encode() * (i % 30 + 1))


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".accord" not in p.parts
    }


def test_a_dead_copier_costs_its_block_only_and_the_next_run_completes(
    tmp_path: Path, monkeypatch
):
    source, target, state = tmp_path / "src", tmp_path / "dst", tmp_path / "state"
    _tree(source)
    monkeypatch.setattr(forked, "_FORK_MIN", 512)
    parent = os.getpid()
    attempt = Performer.attempt

    def dying(self, action):
        # in a child: the copier that takes this file dies on it
        if os.getpid() != parent and action.key == "d2/f0210.txt":
            os._exit(3)
        return attempt(self, action)

    monkeypatch.setattr(Performer, "attempt", dying)
    report = api.sync(str(source), str(target), state_dir=state)
    assert report.aborted and "copying process stopped" in report.aborted
    not_run = [o for o in report.outcomes if o.status == "not-run"]
    # the rest of the dead child's block (64 actions at most), not its half
    assert 1 <= len(not_run) <= forked._BLOCK
    assert "d2/f0210.txt" in {o.action.key for o in not_run}
    assert len(report.done) == len(report.outcomes) - len(not_run)

    monkeypatch.setattr(Performer, "attempt", attempt)
    again = api.sync(str(source), str(target), state_dir=state)
    assert again.ok
    assert _files(target) == _files(source)


def test_blocks_cover_the_phase_once_and_stay_few():
    assert forked._block_size(600) == forked._BLOCK
    many = 10_000_000
    size = forked._block_size(many)
    assert -(-many // size) <= forked._MAX_BLOCKS
    assert size * forked._MAX_BLOCKS >= many


def test_the_children_start_half_the_phase_apart():
    assert forked._ticket_order(5) == [0, 3, 1, 4, 2]
    assert forked._ticket_order(4) == [0, 2, 1, 3]
    assert forked._ticket_order(1) == [0]
    assert sorted(forked._ticket_order(101)) == list(range(101))
