"""accord's own files for a record place, and its trash, kept locally.

A SQL table or a directory has no folder for ``.accord/``: a record place
keeps its lock, its shared history and its trash in one SQLite file in
accord's state folder (``places/<hash of the place>.db``). The lock thus
keeps two runs on this machine apart (not runs on two machines), and the
trash holds every record a run deleted or overwrote, restorable with
``accord trash restore``; for a row a run deleted from a file, the row as
the file held it too (``kept``: ``accord.records.kept``).
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import time
from pathlib import Path

from accord.config import default_state_dir
from accord.errors import StateError

__all__ = ["PlaceStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS trash (
    run TEXT NOT NULL, key TEXT NOT NULL, record TEXT NOT NULL, at REAL NOT NULL,
    kept TEXT, PRIMARY KEY (run, key)
);
"""


class PlaceStore:
    """The local store of one record place (by its identity)."""

    def __init__(self, identity: str, state_dir: Path | None = None) -> None:
        name = hashlib.sha256(identity.encode()).hexdigest()[:24]
        folder = (state_dir or default_state_dir()) / "places"
        self.path = folder / f"{name}.db"
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.executescript(_SCHEMA)
                _add_kept(self._db)
            except (OSError, sqlite3.Error) as exc:
                raise StateError(
                    f"cannot keep accord's files in {self.path}: {exc}",
                    hint="set ACCORD_STATE_DIR to a writable folder",
                ) from exc
        return self._db

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    # -- accord's own files ----------------------------------------------------
    def create(self, name: str, data: bytes) -> bool:
        try:
            self._conn().execute("INSERT INTO meta VALUES (?, ?)", (name, data))
        except sqlite3.IntegrityError:
            return False
        return True

    def read(self, name: str) -> bytes | None:
        row = self._conn().execute("SELECT data FROM meta WHERE name = ?", (name,))
        found = row.fetchone()
        return bytes(found[0]) if found else None

    def delete(self, name: str) -> None:
        self._conn().execute("DELETE FROM meta WHERE name = ?", (name,))

    def names(self, prefix: str) -> list[str]:
        rows = self._conn().execute(
            "SELECT name FROM meta WHERE substr(name, 1, ?) = ? ORDER BY name",
            (len(prefix), prefix),
        )
        return [name for (name,) in rows]

    # -- the trash -------------------------------------------------------------
    def trash(self, run: str, key: str, record: str) -> None:
        """Keep ``record`` (a record text) as it was before ``run`` changed it;
        the first version a run replaced is the one kept."""
        self._conn().execute(
            "INSERT OR IGNORE INTO trash (run, key, record, at) VALUES (?, ?, ?, ?)",
            (run, key, record, time.time()),
        )

    def keep_row(self, run: str, key: str, kept: str) -> None:
        """Keep, with the record ``run`` deleted, its row as the file held
        it (``accord.records.kept``); the first one kept stays."""
        self._conn().execute(
            "UPDATE trash SET kept = ? WHERE run = ? AND key = ? AND kept IS NULL",
            (kept, run, key),
        )

    def kept(self, run: str, key: str) -> str | None:
        """The row kept with a trashed record (None: its fields only)."""
        found = (
            self._conn()
            .execute("SELECT kept FROM trash WHERE run = ? AND key = ?", (run, key))
            .fetchone()
        )
        return found[0] if found else None

    def trashed(self) -> list[tuple[str, str, str]]:
        """(run, key, record text), oldest run first."""
        rows = self._conn().execute(
            "SELECT run, key, record FROM trash ORDER BY run, key"
        )
        return list(rows)

    def untrash(self, run: str, key: str) -> None:
        self._conn().execute("DELETE FROM trash WHERE run = ? AND key = ?", (run, key))

    def purge(self, run: str) -> int:
        done = self._conn().execute("DELETE FROM trash WHERE run = ?", (run,))
        return int(done.rowcount)

    def forget(self) -> None:
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)


def _add_kept(db: sqlite3.Connection) -> None:
    """The ``kept`` column, added to a trash made before it was kept."""
    columns = [row[1] for row in db.execute("PRAGMA table_info(trash)")]
    if "kept" not in columns:
        # another run may add it at the same time: then it is there
        with contextlib.suppress(sqlite3.OperationalError):
            db.execute("ALTER TABLE trash ADD COLUMN kept TEXT")
