"""The intent journal takes a plan's lines as JSON arrays, one statement
for many lines (``state/journal.py``), and gives each its own seq, in
order, across arrays; lines that are not UTF-8 (names in surrogate
escapes) are kept byte for byte, as BLOBs, one statement each."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.state import journal
from accord.state.store import ArchiveStore

ODD = "d\udcff/caf\udce9.txt"  # b"d\xff/caf\xe9.txt"


def _inserts(store: ArchiveStore) -> list[str]:
    """The INSERT statements the store runs from now on."""
    seen: list[str] = []
    store._db.set_trace_callback(
        lambda sql: seen.append(sql) if sql.startswith("INSERT") else None
    )
    return seen


def test_a_plans_lines_go_in_as_one_statement(tmp_path: Path) -> None:
    store = ArchiveStore.open(tmp_path, "L", "R")
    store.journal_add("before", ["copy left first"])
    lines = [f"copy right d{n % 7}/f{n}.txt" for n in range(5000)]
    lines[10] = "copy right caf\u00e9.txt"  # UTF-8, not ASCII
    inserts = _inserts(store)
    seqs = store.journal_add("run", lines)
    assert len(inserts) == 1
    assert seqs == range(2, 5002)
    pending = store.journal_pending()
    assert pending[0] == (1, "before", "copy left first")
    pairs = zip(seqs, lines, strict=True)
    assert pending[1:] == [(seq, "run", line) for seq, line in pairs]


def test_lines_in_several_arrays_keep_their_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "_LINES_AT_ONCE", 3)
    store = ArchiveStore.open(tmp_path, "L", "R")
    lines = [f"delete left {n}" for n in range(8)]
    inserts = _inserts(store)
    seqs = store.journal_add("run", iter(lines))
    assert len(inserts) == 3
    assert seqs == range(1, 9)
    assert [line for _, _, line in store.journal_pending()] == lines


def test_names_that_are_not_utf8_stay_byte_for_byte(tmp_path: Path) -> None:
    store = ArchiveStore.open(tmp_path, "L", "R")
    lines = ["copy left plain.txt", f"copy left {ODD}", "copy left last.txt"]
    seqs = store.journal_add("run", lines)
    assert seqs == range(1, 4)
    assert [line for _, _, line in store.journal_pending()] == lines
    assert store.journal_add("run", []) == range(4, 4)


def test_a_plans_lines_are_its_actions_intents() -> None:
    """The lines of actions of one op and side (made in C) and of mixed
    ones are what ``intent`` says of each; archive-only actions have none."""
    from accord.engine.plan import Action
    from accord.engine.record import intent, intents
    from accord.model import DIR, Entry, Side

    copies = [
        Action("copy", key, Side.RIGHT, Entry(key, DIR if "." not in key else "file"))
        for key in ("a", "a/b.txt", "c d.txt", "caf\u00e9.txt")
    ]
    assert intents(copies) == [intent(a) for a in copies]
    assert intents(copies)[1] == "copy right a/b.txt"
    mixed = [
        *copies,
        Action("move", "x", Side.LEFT, None, None, "y"),
        Action("forget", "gone", None),
        Action("delete", "z", Side.LEFT),
    ]
    lines = intents(mixed)
    assert lines == [intent(a) for a in mixed if a.op != "forget"]
    assert lines[4:] == ["move left x -> y", "delete left z"]
    assert intents([Action("mark_equal", "k", None)]) == []
    assert intents([]) == []


def test_lines_that_need_escapes_in_json_round_trip(tmp_path: Path) -> None:
    """Lines joined into the array as they are, and lines the encoder
    escapes (a quote, a backslash, a tab, a non-ASCII name), read back
    as they went in."""
    store = ArchiveStore.open(tmp_path, "L", "R")
    plain = [f"copy right d/f{n}.txt" for n in range(3)]
    odd = ['copy right say "hi".txt', "copy right back\\slash", "copy right\ttab"]
    inserts = _inserts(store)
    store.journal_add("run", plain)
    store.journal_add("run", [*plain, *odd, "copy right caf\u00e9"])
    assert len(inserts) == 2
    lines = [line for _, _, line in store.journal_pending()]
    assert lines == [*plain, *plain, *odd, "copy right caf\u00e9"]
