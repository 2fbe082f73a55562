"""A run refused by a guard writes nothing to either side.

An empty mount point (the disk is not mounted) must stay exactly as it is:
no lock, no case probe, no ``.accord`` folder that would end up hidden
under the disk once it is mounted again. Nor may the other side change.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from accord.engine import guards
from accord.engine.policy import Policy
from accord.engine.session import Session
from accord.errors import SafetyLimitExceeded
from accord.model import Side
from accord.replicas.local import LocalReplica


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Everything below and including ``root``, accord's folder too: mode,
    mtime and content of each item."""
    found = {}
    for path in [root, *sorted(root.rglob("*"))]:
        info = path.lstat()
        data = path.read_bytes() if path.is_file() else b""
        found[str(path.relative_to(root))] = (info.st_mode, info.st_mtime_ns, data)
    return found


def run(left: Path, right: Path, state: Path, **policy: object) -> None:
    with Session(str(left), str(right), policy=Policy(**policy), state_dir=state) as s:
        s.apply(s.plan())


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path, Path]:
    left, right, state = tmp_path / "left", tmp_path / "right", tmp_path / "state"
    left.mkdir()
    (left / "a.txt").write_text("a\n")
    (left / "b.txt").write_text("b\n")
    run(left, right, state)
    return left, right, state


def unmount(side: Path) -> None:
    """What an unmounted disk leaves: an empty folder, no ``.accord``."""
    shutil.rmtree(side)
    side.mkdir()
    os.utime(side, ns=(1_600_000_000_000_000_000,) * 2)


@pytest.mark.parametrize("mode", ["sync", "mirror"])
@pytest.mark.parametrize("emptied", ["left", "right"])
def test_a_refused_run_leaves_both_sides_untouched(
    pair: tuple[Path, Path, Path], mode: str, emptied: str
) -> None:
    left, right, state = pair
    unmount(left if emptied == "left" else right)
    before = snapshot(left), snapshot(right)
    with pytest.raises(SafetyLimitExceeded, match="is empty"):
        run(left, right, state, mode=mode)
    assert (snapshot(left), snapshot(right)) == before
    assert not (left / ".accord").exists() or emptied == "right"
    assert not (right / ".accord").exists() or emptied == "left"


def test_a_side_holding_none_of_its_items_is_left_as_found(
    pair: tuple[Path, Path, Path],
) -> None:
    """Another disk mounted there: refused once both sides were scanned; the
    lock taken for the scan goes, and so does the folder made for it."""
    left, right, state = pair
    unmount(right)
    (right / "other disk.txt").write_text("someone else's\n")
    before = contents(left), contents(right)
    with pytest.raises(SafetyLimitExceeded, match="none of the 2 items"):
        run(left, right, state)
    assert (contents(left), contents(right)) == before
    assert not (right / ".accord").exists()


def contents(root: Path) -> dict[str, bytes]:
    """The names and file contents below ``root`` (not their times)."""
    return {name: data for name, (_, _, data) in snapshot(root).items()}


def test_allow_empty_still_runs(pair: tuple[Path, Path, Path]) -> None:
    left, right, state = pair
    unmount(right)
    run(left, right, state, allow_empty=True)
    assert sorted(p.name for p in left.iterdir()) == [".accord"]


def test_the_case_probe_reads_a_name_at_the_root(tmp_path: Path) -> None:
    (tmp_path / "Notes.txt").write_text("n\n")
    place = LocalReplica(str(tmp_path))
    place.open()
    assert place.capabilities.case_sensitive  # this test's disk tells case
    place.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Notes.txt"]


def test_the_case_probe_of_an_empty_root_leaves_nothing(tmp_path: Path) -> None:
    place = LocalReplica(str(tmp_path))
    place.open()
    assert place.capabilities.case_sensitive
    place.close()
    assert list(tmp_path.iterdir()) == []


def test_check_empty_root_table() -> None:
    policy, allowed = Policy(), Policy(allow_empty=True)
    for held, rules, refused in [
        (2, policy, True),
        (0, policy, False),  # nothing was synced: an empty side is fine
        (2, allowed, False),
    ]:
        try:
            guards.check_empty_root(Side.RIGHT, "/mnt/x", held, rules)
        except SafetyLimitExceeded as exc:
            assert refused, exc
            assert "held 2 items" in exc.message
        else:
            assert not refused
