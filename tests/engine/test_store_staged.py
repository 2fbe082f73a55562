"""Rows staged while a run copies are committed only when asked, after the
flush: until then no other connection sees them, and a refusal or a failed
statement leaves nothing of them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from accord.state.store import ArchiveEntry, ArchiveStore


def _row(key: str) -> ArchiveEntry:
    return ArchiveEntry(key, "file", 1, 2, 0o644, "sha256:x", None, "a", "b")


def _seen(store: ArchiveStore) -> tuple[int, int]:
    """(archive rows, journal lines), read through a connection of its own."""
    with sqlite3.connect(store.path) as db:
        rows = db.execute("SELECT count(*) FROM entries").fetchone()[0]
        lines = db.execute("SELECT count(*) FROM journal").fetchone()[0]
    return rows, lines


def test_staged_rows_are_seen_only_once_committed(tmp_path: Path) -> None:
    store = ArchiveStore.open(tmp_path, "L", "R")
    seqs = list(store.journal_add("run", [f"copy left f{n}" for n in range(4)]))
    store.stage(put=[_row("f0"), _row("f1")], done=seqs[:2])
    line = ("run", "left", "copy", "f2", "")
    store.stage(put=[_row("f2")], done=seqs[2:3], log=[line])
    assert _seen(store) == (0, 4)
    asked = []
    assert store.commit_staged(lambda: asked.append(1) or True)
    assert asked == [1]
    assert _seen(store) == (3, 1)
    assert set(store.load()) == {"f0", "f1", "f2"}
    assert store.commit_staged(lambda: True)  # nothing staged: nothing to do
    store.close()


def test_a_refused_commit_keeps_nothing_staged(tmp_path: Path) -> None:
    store = ArchiveStore.open(tmp_path, "L", "R")
    seqs = list(store.journal_add("run", ["copy left f0"]))
    store.stage(put=[_row("f0")], done=seqs)
    assert not store.commit_staged(lambda: False)
    assert _seen(store) == (0, 1)
    store.record(put=[_row("g")])  # the store goes on as before
    assert set(store.load()) == {"g"}
    store.close()


def test_a_failed_statement_rolls_back_all_that_was_staged(tmp_path: Path) -> None:
    store = ArchiveStore.open(tmp_path, "L", "R")
    store.stage(put=[_row("f0")])
    with pytest.raises(sqlite3.Error):
        store.stage(put=[ArchiveEntry("f1", "file", 1, 2, 0o644, None, None, [], "b")])
    assert store.commit_staged(lambda: True)  # nothing left to commit
    assert _seen(store) == (0, 0)
    store.record(put=[_row("g")])
    assert set(store.load()) == {"g"}
    store.close()


def test_a_store_closed_with_rows_staged_keeps_none_of_them(tmp_path: Path) -> None:
    store = ArchiveStore.open(tmp_path, "L", "R")
    store.stage(put=[_row("f0")])
    store.close()
    again = ArchiveStore.open(tmp_path, "L", "R")
    assert again.load() == {}
    again.close()


@pytest.mark.parametrize("names", [("a", "b"), ("b", "a")], ids=["plain", "swapped"])
def test_each_sides_version_is_kept_as_that_side_s(tmp_path, names) -> None:
    # a pair opened as (b, a) is the archive of (a, b) with its sides swapped:
    # rows written either way read back with each version on its own side
    # (an ASCII name, a non-UTF-8 one and a link's target)
    left, right = names
    store = ArchiveStore.open(tmp_path, left, right)
    rows = [
        ArchiveEntry("plain.txt", "file", 1, 2, 0o644, None, None, "L1", "R1"),
        ArchiveEntry("caf\udce9", "file", 1, 2, 0o644, None, None, "L2", "R2"),
        ArchiveEntry("link", "link", 0, 2, 0, None, "t\u00e9", "L3", "R3"),
    ]
    store.record(put=rows)
    assert sorted(store.load().values()) == sorted(rows)
    store.close()
    other = ArchiveStore.open(tmp_path, right, left)  # the same file, turned
    assert {e.key: (e.left, e.right) for e in other.load().values()} == {
        r.key: (r.right, r.left) for r in rows
    }
    other.close()
