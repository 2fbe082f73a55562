"""The archive's companions: the intent journal and the history of runs.

Both live in the pair's archive database beside the agreed rows. The
journal notes a run's intended actions before any is performed (what an
interrupted run meant to do, cleared as actions are recorded); the history
keeps each run's start, end, status and summary, and a line per action for
``accord log``. ``RunsAndJournal`` is a part of ``ArchiveStore``.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from accord.state.rows import LogLine, RunRecord, decoded, stored

__all__ = ["RunsAndJournal"]


class RunsAndJournal:
    """The journal and the history of ``ArchiveStore``: its database
    (``_db``) and its ``transaction()``."""

    _db: sqlite3.Connection
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]

    # -- journal ------------------------------------------------------------
    def journal_add(self, run: str, actions: Iterable[str]) -> range:
        """Note the intended actions (one line each), streamed in; their seqs.

        A line says what was intended (``op side key``), enough to tell an
        interrupted run and report it; recovery itself re-plans from the
        places, so the lines stay small (a million fit in little memory).
        They go in as JSON arrays of many lines, each one statement that
        SQLite unpacks (``json_each``): a first copy's 20,000 lines took
        a third of the time in statements of one line each.
        """
        with self.transaction() as db:
            first = (
                1
                + db.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()[0]
            )
            end = first
            lines = iter(actions)
            while True:
                chunk = list(itertools.islice(lines, _LINES_AT_ONCE))
                if not chunk:
                    break
                if not _added_as_json(db, run, end, chunk):
                    db.executemany(
                        "INSERT INTO journal VALUES (?, ?, ?)",
                        zip(
                            itertools.count(end),
                            itertools.repeat(run),
                            map(stored, chunk),
                        ),
                    )
                end += len(chunk)
        return range(first, end)

    def journal_pending(self) -> list[tuple[int, str, str]]:
        rows = self._db.execute("SELECT seq, run, action FROM journal ORDER BY seq")
        return [decoded(row) for row in rows]  # type: ignore[misc]

    def journal_clear(self) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM journal")

    # -- history ------------------------------------------------------------
    def run_started(self, run: str, who: str, command: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO runs "
                "VALUES (?, ?, NULL, ?, ?, 'running', '{}')",
                (run, time.time(), who, command),
            )

    def run_finished(self, run: str, status: str, summary: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET finished = ?, status = ?, summary = ? WHERE run = ?",
                (time.time(), status, json.dumps(summary), run),
            )

    def runs(self, limit: int = 20) -> list[RunRecord]:
        rows = self._db.execute(
            "SELECT * FROM runs ORDER BY started DESC LIMIT ?", (limit,)
        ).fetchall()
        return [RunRecord(*row[:6], json.loads(row[6] or "{}")) for row in rows]

    def log_lines(self, run: str) -> list[LogLine]:
        rows = self._db.execute(
            "SELECT * FROM log WHERE run = ? ORDER BY rowid", (run,)
        ).fetchall()
        return [self._oriented(LogLine(*decoded(row))) for row in rows]

    def _oriented(self, line: LogLine) -> LogLine:
        return line


#: journal lines put in with one statement
_LINES_AT_ONCE = 50_000


def _added_as_json(
    db: sqlite3.Connection, run: str, first: int, lines: list[str]
) -> bool:
    """Put ``lines`` in the journal as one JSON array from seq ``first`` on;
    False (nothing put) when a line is not UTF-8 (a name in surrogate
    escapes, kept as a BLOB: ``stored``) or this SQLite reads no JSON."""
    text = _json_array(lines)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    try:
        db.execute(
            "INSERT INTO journal SELECT ? + key, ?, value FROM json_each(?)",
            (first, run, text),
        )
    except sqlite3.OperationalError:  # no JSON functions in this SQLite
        return False
    return True


def _json_array(lines: list[str]) -> str:
    """``lines`` as a JSON array: joined as they are when all are ASCII
    and none needs an escape (a quote, a backslash, a control character),
    as a plan's lines mostly are: a fifth of the time of the encoder's
    look at every character."""
    raw = "".join(lines)
    if lines and raw.isascii() and not raw.encode().translate(None, _PLAIN):
        return '["' + '","'.join(lines) + '"]'
    return json.dumps(lines, ensure_ascii=False)


#: the ASCII characters JSON takes as they are in a string
_PLAIN = bytes(c for c in range(0x20, 0x7F) if c not in b'"\\')
