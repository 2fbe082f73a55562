"""The archive of two local folders, read while accord starts
(``engine/early.py``): the copy is taken only once both places are locked,
only for its own archive, and only while the archive's entries stamp is
the one read with it (any change of the entries, by any writer, deletes
the stamp); a run that takes it finds exactly what one that reads SQLite
finds."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from accord.config import default_state_dir
from accord.engine import early
from accord.engine.session import Session
from accord.model import Side
from accord.replicas.local import LocalReplica
from accord.state.snapshot import read_snapshot
from accord.state.store import ArchiveStore


def sync(left: Path, right: Path, **options: object) -> None:
    with Session(str(left), str(right), **options) as session:  # type: ignore[arg-type]
        plan = session.plan()
        if not plan.is_empty:
            session.apply(plan)


def archive_of(left: Path, right: Path) -> Path:
    return ArchiveStore.path_for(
        default_state_dir(),
        LocalReplica(str(left)).identity,
        LocalReplica(str(right)).identity,
    )


def stamp_of(path: Path) -> str | None:
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT value FROM meta WHERE name = 'entries_stamp'")
        found = row.fetchone()
    return None if found is None else found[0]


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    left, right = tmp_path / "left", tmp_path / "right"
    (left / "docs").mkdir(parents=True)
    for name in ("a.txt", "b.txt", "docs/c.txt", "docs/d", "é.txt"):
        (left / name).write_text(name)
    sync(left, right)
    return left, right


@pytest.fixture(autouse=True)
def _nothing_left() -> object:
    yield
    early.forget()


def test_a_run_names_the_entries_it_leaves(pair) -> None:
    left, right = pair
    path = archive_of(left, right)
    first = stamp_of(path)
    assert first
    sync(left, right)  # nothing changed: the stamp stays
    assert stamp_of(path) == first
    (left / "a.txt").write_text("changed")
    sync(left, right)
    assert stamp_of(path) not in (None, first)


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE entries SET ver_a = 'x' WHERE key = 'a.txt'",
        "DELETE FROM entries WHERE key = 'b.txt'",
        "INSERT INTO entries SELECT 'new', kind, size, mtime_ns, mode, digest,"
        " target, ver_a, ver_b FROM entries WHERE key = 'a.txt'",
    ],
)
def test_any_change_of_the_entries_deletes_the_stamp(pair, change: str) -> None:
    path = archive_of(*pair)
    assert stamp_of(path)
    with sqlite3.connect(path) as db:  # another writer (an older accord)
        db.execute(change)
    assert stamp_of(path) is None
    assert read_snapshot(str(path), early.MOST) is None


def test_the_snapshot_is_the_archive_in_key_order(pair) -> None:
    path = archive_of(*pair)
    snapshot = read_snapshot(str(path), early.MOST)
    assert snapshot is not None
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT key, ver_a, ver_b FROM entries").fetchall()
    assert snapshot.keys == sorted(key for key, _, _ in rows)
    rows.sort()
    assert list(zip(snapshot.keys, snapshot.ver_a, snapshot.ver_b, strict=True)) == rows
    assert snapshot.stamp == stamp_of(path)
    assert read_snapshot(str(path), len(rows) - 1) is None  # too many rows


def test_names_that_are_not_utf8_are_read_from_sqlite(tmp_path: Path) -> None:
    left, right = tmp_path / "left", tmp_path / "right"
    left.mkdir()
    (left / "plain.txt").write_text("p")
    with open(os.path.join(os.fsencode(left), b"caf\xe9.txt"), "w") as f:
        f.write("latin-1")
    sync(left, right)
    assert read_snapshot(str(archive_of(left, right)), early.MOST) is None


def test_the_early_read_finds_this_archive(pair) -> None:
    left, right = pair
    assert early._state_dir() == str(default_state_dir())
    for folder in (left, right):
        assert early._identity(str(folder)) == LocalReplica(str(folder)).identity
    early.start_early(["sync", str(left), str(right), "--yes", "-q"])
    snapshot = early.claim(archive_of(left, right))
    assert snapshot == read_snapshot(str(archive_of(left, right)), early.MOST)
    assert early.claim(archive_of(left, right)) is None  # taken once


def test_a_copy_of_another_archive_is_not_taken(pair, tmp_path: Path) -> None:
    left, right = pair
    early.start_early(["sync", str(left), str(right)])
    assert early.claim(tmp_path / "other.db") is None


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "L", "R"],
        ["sync", "L"],
        ["sync", "L", "sftp://host/R"],
        ["sync", "L", "missing"],
        ["hub", "serve"],
        [],
    ],
)
def test_only_two_local_folders_are_read_early(pair, argv: list[str]) -> None:
    left, right = pair
    words = [{"L": str(left), "R": str(right)}.get(word, word) for word in argv]
    assert early._local_pair(words) is None


def test_a_run_takes_the_copy_while_the_archive_is_unchanged(pair) -> None:
    left, right = pair
    early.start_early(["sync", str(left), str(right)])
    with Session(str(left), str(right)) as session:
        assert session.store is not None
        read = session._read_early(session.store)
        assert read is not None
        for side in (Side.LEFT, Side.RIGHT):
            got = dict(read[side]._rows)
            want = session.store.versions(side)
            assert got == want


def test_a_copy_read_before_another_run_is_not_taken(pair) -> None:
    left, right = pair
    early.start_early(["sync", str(left), str(right)])
    (left / "a.txt").unlink()
    (left / "new.txt").write_text("new")
    sync(left, right)  # another run changed the archive meanwhile
    with Session(str(left), str(right)) as session:
        assert session.store is not None
        assert session._read_early(session.store) is None
        plan = session.plan()
    assert plan.is_empty  # the listings read the archive as it is


def test_a_read_only_run_does_not_take_it(pair) -> None:
    left, right = pair
    early.start_early(["sync", str(left), str(right)])
    with Session(str(left), str(right), read_only=True) as session:
        assert session.store is not None
        assert session._read_early(session.store) is None


def test_the_command_finds_what_it_would_without_the_copy(pair) -> None:
    """``accord sync`` of two local folders, through the console entry
    (``accord.__main__``): changes on both sides, a deletion, a new folder."""
    left, right = pair
    (left / "a.txt").write_text("left changed")
    (right / "docs" / "c.txt").unlink()
    (right / "more").mkdir()
    (right / "more" / "e.txt").write_text("e")
    command = [sys.executable, "-m", "accord", "sync", str(left), str(right)]
    done = subprocess.run([*command, "--yes", "-q"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for folder in (left, right):
        assert (folder / "a.txt").read_text() == "left changed"
        assert not (folder / "docs" / "c.txt").exists()
        assert (folder / "more" / "e.txt").read_text() == "e"
    again = subprocess.run([*command, "--yes"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
