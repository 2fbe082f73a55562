"""The archive keeps names byte for byte: one that is not UTF-8 (a
surrogate-escaped ``str``) is stored as its bytes and read back as it was."""

from __future__ import annotations

from pathlib import Path

from accord.state.store import ArchiveEntry, ArchiveStore

ODD = "d\udcff/caf\udce9.txt"  # b"d\xff/caf\xe9.txt"
NFD = "cafe\u0301.txt"


def _row(key: str, target: str | None = None) -> ArchiveEntry:
    return ArchiveEntry(key, "file", 1, 2, 0o644, "sha256:x", target, "a", "b")


def test_names_that_are_not_utf8_round_trip(tmp_path: Path) -> None:
    store = ArchiveStore.open(tmp_path, "/left", "/right")
    rows = [_row(ODD), _row(NFD), _row("plain.txt"), _row("ln", "to\udce9")]
    store.record(put=rows, log=[("run", "left", "copy", ODD, "why \udce9")])
    assert store.load() == {row.key: row for row in rows}
    assert store.versions("left") == {row.key: "a" for row in rows}
    assert store.versions("right", own_connection=True) == {
        row.key: "b" for row in rows
    }
    assert store.rows([ODD, NFD, "missing"]) == {ODD: rows[0], NFD: rows[1]}
    (line,) = store.log_lines("run")
    assert line.key == ODD and line.detail == "why \udce9"
    store.journal_add("run", [f"copy left {ODD}"])
    assert [action for _, _, action in store.journal_pending()] == [f"copy left {ODD}"]
    store.record(forget=[ODD])
    assert ODD not in store.load() and ODD not in store.versions("left")


def test_recording_clears_exactly_the_journal_lines_done(tmp_path: Path) -> None:
    """Done lines are cleared a run of consecutive ones at a time, in any
    order they finished; the others stay pending."""
    store = ArchiveStore.open(tmp_path, "L", "R")
    seqs = list(store.journal_add("run", [f"copy left {n}" for n in range(10)]))
    done = [seqs[7], seqs[2], seqs[3], seqs[0], seqs[8], seqs[4], seqs[3]]
    store.record(done=done)
    left = [action for _, _, action in store.journal_pending()]
    assert left == ["copy left 1", "copy left 5", "copy left 6", "copy left 9"]
    store.record(done=[])
    assert len(store.journal_pending()) == 4
