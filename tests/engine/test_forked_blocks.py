"""The forked copiers take blocks of the copy phase one after the other.

A child that dies leaves the rest of its block; the other child goes on
with the blocks nobody took, so one death costs at most a block, and the
next run completes the copy.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from accord import api
from accord.engine import forked
from accord.engine.perform import Performer
from accord.replicas.local import LocalReplica

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


@pytest.mark.forks
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


@pytest.mark.forks
def test_a_forked_first_copy_copies_every_file_by_descriptors(
    tmp_path: Path, monkeypatch
) -> None:
    """The copiers of a first copy never go through ``write`` for a new
    file: each one is a ``copy_new`` (counted in a file the children append
    to), and the copy is whole."""
    source, target = tmp_path / "src", tmp_path / "dst"
    for i in range(600):
        path = source / f"d{i // 100}" / f"f{i:03}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"file {i}\n".encode() * (i % 7 + 1))
    monkeypatch.setattr(forked, "_FORK_MIN", 512)
    calls = tmp_path / "calls"
    copy_new, write = LocalReplica.copy_new, LocalReplica.write

    def noted(what: str, real):  # type: ignore[no-untyped-def]
        def call(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            with open(calls, "a") as log:
                log.write(f"{what} {os.getpid()}\n")
            return real(self, *args, **kwargs)

        return call

    monkeypatch.setattr(LocalReplica, "copy_new", noted("copy_new", copy_new))
    monkeypatch.setattr(LocalReplica, "write", noted("write", write))
    report = api.sync(str(source), str(target), state_dir=tmp_path / "state")
    assert report.ok
    lines = calls.read_text().split()
    assert lines[::2].count("copy_new") == 600
    assert "write" not in lines[::2]
    assert os.getpid() not in {int(pid) for pid in lines[1::2]}  # the children
    assert _files(target) == _files(source)


def test_a_copier_sends_a_done_copy_as_its_archive_row_alone():
    """The usual result (done, one row) crosses the pipe as a plain tuple,
    any other as the ``Attempt`` itself; both come back as they were."""
    from accord.engine.perform import Attempt
    from accord.errors import PreconditionFailed
    from accord.state.store import ArchiveEntry

    row = ArchiveEntry("a/b", "file", 3, 5, 0o644, "sha256:00", None, "l", "r")
    done = Attempt("done", [row], [])
    packed = forked._packed(done)
    assert type(packed) is tuple and packed == tuple(row)
    assert forked._unpacked(packed) == done
    assert type(forked._unpacked(packed).puts[0]) is ArchiveEntry
    error = PreconditionFailed("changed", where="here", key="a/b")
    for other in (
        Attempt("skipped", [], [], "changed", error),
        Attempt("done", [], ["a/b"]),
        Attempt("done", [row, row], []),
    ):
        assert forked._packed(other) is other
        assert forked._unpacked(other) is other


@pytest.mark.forks
def test_a_copier_killed_between_writing_and_renaming_leaves_no_real_name(
    tmp_path: Path, monkeypatch
):
    """Killed after a file's bytes, mtime and mode are written to its
    temporary file and before the rename: the real name does not exist, the
    temporary file is in ``.accord/tmp`` only, and the next run removes it
    and completes the copy."""
    source, target, state = tmp_path / "src", tmp_path / "dst", tmp_path / "state"
    _tree(source)
    monkeypatch.setattr(forked, "_FORK_MIN", 512)
    parent = os.getpid()
    install = LocalReplica._install

    def dying(self, temp, temp_fd, key, *args, **kwargs):  # type: ignore[no-untyped-def]
        if os.getpid() != parent and key == "d3/f0333.txt":
            os._exit(9)
        return install(self, temp, temp_fd, key, *args, **kwargs)

    monkeypatch.setattr(LocalReplica, "_install", dying)
    report = api.sync(str(source), str(target), state_dir=state)
    assert report.aborted and "copying process stopped" in report.aborted
    assert not (target / "d3" / "f0333.txt").exists()
    left = [p for p in (target / ".accord" / "tmp").rglob("*") if p.is_file()]
    assert (source / "d3" / "f0333.txt").read_bytes() in {p.read_bytes() for p in left}

    monkeypatch.setattr(LocalReplica, "_install", install)
    again = api.sync(str(source), str(target), state_dir=state)
    assert again.ok
    assert _files(target) == _files(source)
    assert not [p for p in (target / ".accord" / "tmp").rglob("*") if p.is_file()]


def _chain(root: Path, depth: int, *, make: bool = False) -> int:
    """A descriptor of ``root/d/d/.../d`` (``depth`` folders), walked and,
    with ``make``, made by descriptors (``os.makedirs`` and ``pathlib``
    recurse)."""
    fd = os.open(root, os.O_RDONLY)
    for _ in range(depth):
        if make:
            os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    return fd


@pytest.mark.forks
def test_new_folders_deeper_than_the_stack_are_made_while_copying(
    tmp_path: Path, monkeypatch
):
    """The parent makes each new folder's parents first by a loop, not a
    recursion: a tree deeper than Python's stack is copied whole."""
    import sys

    source, target = tmp_path / "src", tmp_path / "dst"
    source.mkdir()
    depth = sys.getrecursionlimit() + 100
    deep = _chain(source, depth, make=True)
    for i in range(520):
        fd = os.open(f"f{i:03}", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=deep)
        os.write(fd, b"x" * (i % 5))
        os.close(fd)
    os.close(deep)
    monkeypatch.setattr(forked, "_FORK_MIN", 512)
    made = []
    make_folders = forked._make_folders

    def noted(*args, **kwargs):  # type: ignore[no-untyped-def]
        made.append(True)
        return make_folders(*args, **kwargs)

    monkeypatch.setattr(forked, "_make_folders", noted)
    report = api.sync(str(source), str(target), state_dir=tmp_path / "state")
    assert report.ok and made
    assert len(report.done) == depth + 520
    copied = _chain(target, depth)
    try:
        assert sorted(os.listdir(copied)) == [f"f{i:03}" for i in range(520)]
    finally:
        os.close(copied)
        for root in (source, target):
            _unchain(root)


def _unchain(root: Path) -> None:
    """Remove ``root/d/d/.../d`` a level at a time: ``shutil.rmtree``
    recurses, and pytest's own clean-up of old temporary folders would
    fail on a tree deeper than Python's stack."""
    top = root / "d"
    while top.is_dir():
        inner, moved = top / "d", root / "up"
        if inner.is_dir():
            os.rename(inner, moved)
        shutil.rmtree(top)
        if not moved.is_dir():
            break
        os.rename(moved, top)
