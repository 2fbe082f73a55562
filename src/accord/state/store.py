"""The archive of a pair: the last state both sides agreed on, in SQLite.

One database file per pair, in the user's state directory, named by a hash
of both places' identities (sorted, so ``sync A B`` and ``sync B A`` share
it). The rows are kept in that sorted order; this module turns them into
LEFT/RIGHT for the caller.

Besides the archive it holds the intent journal (actions planned but not yet
recorded), the history of runs, and per-action log lines for ``accord log``.
The archive only advances for actions that completed.

Names are kept byte for byte. A name that is valid UTF-8 is stored as
TEXT; one that is not (a surrogate-escaped ``str``) as a BLOB of its own
bytes, which SQLite sorts after every TEXT: so reading the few such keys
back is one seek on the primary key, and an archive of plain names is
read exactly as before.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import sqlite3
import time
from collections.abc import (
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from pathlib import Path
from typing import Any

from accord.arrowfile import mapped_texts, one_array, write_table
from accord.config import default_state_dir
from accord.errors import ArchiveCorrupt, SchemaTooNew, StateError
from accord.model import FILE, Side
from accord.replica import NUMBERS_MARK, marked, numbers_mark
from accord.state.journal import RunsAndJournal
from accord.state.rows import (
    ABSENT,
    ArchiveEntry,
    LogLine,
    RunRecord,
)
from accord.state.rows import BLOBS as _BLOBS
from accord.state.rows import by_key as _by_key
from accord.state.rows import decoded as _decoded
from accord.state.rows import stored as _stored
from accord.state.rows import unstored as _text
from accord.state.views import ArchiveKeys, ArchiveView

__all__ = [
    "ABSENT",
    "SCHEMA_VERSION",
    "ArchiveEntry",
    "ArchiveKeys",
    "ArchiveStore",
    "ArchiveView",
    "LogLine",
    "RunRecord",
    "default_state_dir",
]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, mode INTEGER NOT NULL, digest TEXT, target TEXT,
    ver_a TEXT NOT NULL, ver_b TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY, run TEXT NOT NULL, action TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run TEXT PRIMARY KEY, started REAL NOT NULL, finished REAL, who TEXT,
    command TEXT, status TEXT, summary TEXT
);
CREATE TABLE IF NOT EXISTS log (
    run TEXT NOT NULL, at REAL NOT NULL, side TEXT, action TEXT NOT NULL,
    key TEXT NOT NULL, detail TEXT
);
"""


def _short_of(folder: Path) -> str:
    """What the filesystem of ``folder`` is out of, said after an error."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return ""
    if st.f_files and not st.f_favail:
        return f" (the filesystem of {folder} has no free inodes left)"
    if not st.f_bavail:
        return f" (the filesystem of {folder} is full)"
    return ""


class ArchiveStore(RunsAndJournal):
    """The state database of one pair, oriented as (left, right)."""

    def __init__(self, path: Path, swapped: bool, conn: sqlite3.Connection) -> None:
        self.path = path
        self._swapped = swapped
        self._db = conn
        self._staging = False  # a transaction of ``stage`` is open
        self._created: str | None = None  # when the archive was made (meta)

    @classmethod
    def path_for(cls, state_dir: Path, left: str, right: str) -> Path:
        first, second = sorted((left, right))
        name = _sha256(f"{first}\0{second}".encode())[:24]
        return state_dir / "pairs" / f"{name}.db"

    @classmethod
    def open(cls, state_dir: Path, left: str, right: str) -> ArchiveStore:
        path = cls.path_for(state_dir, left, right)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
        except sqlite3.OperationalError as exc:
            # could not open or write it (no free inodes or space, no
            # permission, a folder in its place): the archive may be whole,
            # so never advise throwing it away
            raise StateError(
                f"cannot open the archive {path}: {exc}{_short_of(path.parent)}",
                hint="check the state folder's free space and inodes (df -h, "
                "df -i), its permissions, or another program using it; then "
                "run again: the archive is kept",
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise ArchiveCorrupt(
                f"cannot read the archive {path}: {exc}",
                hint="run 'accord reset' on this pair to start it afresh",
            ) from exc
        except OSError as exc:
            raise StateError(
                f"cannot create accord's state in {path.parent}: {exc.strerror}",
                hint="set ACCORD_STATE_DIR to a writable folder",
            ) from exc
        store = cls(path, left > right, conn)
        store._check_meta(left, right)
        return store

    def _check_meta(self, left: str, right: str) -> None:
        rows = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
        version = int(rows.get("schema_version", SCHEMA_VERSION))
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the archive {self.path} was written by a newer accord "
                f"(schema {version}, this one knows {SCHEMA_VERSION})",
                hint="upgrade accord",
            )
        self._created = rows.get("created")
        if not rows:
            first, second = sorted((left, right))
            self._created = str(time.time())
            with self.transaction():
                self._db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [
                        ("schema_version", str(SCHEMA_VERSION)),
                        ("a", first),
                        ("b", second),
                        ("created", self._created),
                    ],
                )

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- archive ------------------------------------------------------------
    def _versions(self) -> str:
        return "ver_b, ver_a" if self._swapped else "ver_a, ver_b"

    def _columns(self) -> str:
        return f"key, kind, size, mtime_ns, mode, digest, target, {self._versions()}"

    def load(self) -> dict[str, ArchiveEntry]:
        """Every archived key."""
        make = ArchiveEntry._make
        try:
            rows = self._db.execute(f"SELECT {self._columns()} FROM entries")
            found = {row[0]: make(row) for row in rows}
            query = f"SELECT {self._columns()} FROM entries WHERE {_BLOBS}"
            for row in self._db.execute(query):
                found.pop(row[0], None)
                entry = make(_decoded(row))
                found[entry.key] = entry
            return found
        except sqlite3.DatabaseError as exc:
            raise ArchiveCorrupt(f"cannot read the archive {self.path}: {exc}") from exc

    def versions(self, side: str, *, own_connection: bool = False) -> dict[str, str]:
        """One side's archived version by key: all a no-op run needs to read.

        A narrow query builds the dict in C, several times faster than
        loading full rows. ``own_connection`` reads through a new connection,
        as a forked child process must (a connection never crosses a fork).
        """
        column = "ver_a" if (side == "left") != self._swapped else "ver_b"
        query = f"SELECT key, {column} FROM entries"
        try:
            if not own_connection:
                return _with_blob_keys(self._db, query)
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                return _with_blob_keys(db, query)
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            raise ArchiveCorrupt(f"cannot read the archive {self.path}: {exc}") from exc

    def version_runs_in_order(
        self, side: str, *, own_connection: bool = False, size: int = 256
    ) -> Iterator[list[tuple[str, str]]]:
        """One side's archived ``(key, version)`` pairs in ascending key
        order (Python's ``str`` order), read as they are consumed: a scan
        that lists in that order merges with them and holds no row it has
        passed (see ``engine.detect.KnownInOrder``). They come as lists of
        up to ``size`` consecutive pairs, each read by one call
        (``fetchmany``): a listing of 20,000 items spent about 5 million
        instructions resuming a generator and ``islice`` for each row.

        Keys that are valid UTF-8 are TEXT, which the primary key orders by
        their bytes: the order of their code points, Python's. The few
        stored as BLOBs (surrogate escapes) sort after every TEXT in SQLite
        and among the others in Python: they are read first, sorted, and
        merged in. ``own_connection`` as for ``versions()``.
        """
        column = "ver_a" if (side == "left") != self._swapped else "ver_b"
        try:
            db = (
                sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
                if own_connection
                else self._db
            )
            (cache,) = db.execute("PRAGMA cache_size").fetchone()
            db.execute(f"PRAGMA cache_size = {_READ_CACHE}")
        except sqlite3.DatabaseError as exc:
            raise ArchiveCorrupt(f"cannot read the archive {self.path}: {exc}") from exc
        try:
            query = f"SELECT key, {column} FROM entries WHERE key"
            blobs = sorted(
                (_text(key), version) for key, version in db.execute(f"{query} >= x''")
            )
            rows = db.execute(f"{query} < x'' ORDER BY key")
            if blobs:
                merged = heapq.merge(rows, blobs)
                while run := list(itertools.islice(merged, size)):
                    yield run
            else:
                while run := rows.fetchmany(size):
                    yield run
        except sqlite3.DatabaseError as exc:
            raise ArchiveCorrupt(f"cannot read the archive {self.path}: {exc}") from exc
        finally:
            if own_connection:
                db.close()
            else:
                with contextlib.suppress(sqlite3.Error):
                    db.execute(f"PRAGMA cache_size = {int(cache)}")

    def version_columns(self) -> tuple[Any, Any, Any]:
        """Every archived key with LEFT's and RIGHT's versions, as three
        Arrow string arrays (pyarrow: for places that list in columns, see
        ``Replica.scan_columns``). Mapped from the archive's versions file
        when it holds them (``keep_version_columns``), else read a slice
        at a time straight into Arrow, so that no row stays a Python
        object; a right version equal to the left one (records) is read
        once."""
        import pyarrow.compute as pc

        found = self._kept_versions()
        self._plain = found[3] if found is not None else None
        if found is None:
            found = self._stored_versions()
        keys, first, second = found[:3]  # ver_a, and ver_b where it differs
        if second.null_count == len(second):
            return keys, first, first  # both sides hold the same versions
        second = pc.coalesce(second, first)
        return (keys, second, first) if self._swapped else (keys, first, second)

    #: the stored column (b"a", b"b") whose versions are the digests when
    #: the versions ``version_columns`` last gave came from a versions file
    #: whose rows are all plain (``plain_digests``)
    _plain: bytes | None = None

    def plain_digests(self) -> Side | None:
        """When every archived row is a plain record's (a file of no size,
        time or mode, no link target, its digest the version of one side,
        the same side in every row), as the versions file
        ``version_columns`` last mapped says: that side (as this store is
        oriented), so that a row is made from the version columns alone
        (``columns.plain_rows``); else None."""
        if self._plain not in (b"a", b"b"):
            return None
        return Side.LEFT if (self._plain == b"a") != self._swapped else Side.RIGHT

    def _stored_versions(self) -> tuple[Any, Any, Any]:
        """(key, ver_a, ver_b where it differs from ver_a, else null), as
        Arrow arrays, read from SQLite through this store's connection.
        Never through a second SQLite library in this process (connectorx
        bundles one): closing its connection drops this process's locks on
        the file and deletes the write-ahead log that this connection still
        writes to (sqlite.org/howtocorrupt.html, 2.2), so its later reads
        were stale and a crash lost what the run had recorded."""
        import pyarrow as pa

        query = "SELECT key, ver_a, NULLIF(ver_b, ver_a) FROM entries"
        row = pa.struct([(name, pa.string()) for name in ("key", "a", "b")])
        slices = []
        try:
            cursor = self._db.execute(query)
            while rows := cursor.fetchmany(65_536):
                slices.append(pa.array(rows, row))
                del rows
        except sqlite3.DatabaseError as exc:
            raise ArchiveCorrupt(f"cannot read the archive {self.path}: {exc}") from exc
        table = pa.chunked_array(slices, row).combine_chunks()
        keys, first, second = (table.field(i) for i in range(3))
        return keys, first, second

    @property
    def versions_path(self) -> Path:
        """The archive's versions as an Arrow file (``keep_version_columns``)."""
        return self.path.with_suffix(".versions.arrow")

    def keep_version_columns(self) -> bool:
        """Keep the archived keys and versions beside the archive as an Arrow
        file, which ``version_columns`` then maps instead of reading SQLite
        (a run of a million records: 0.01 s instead of 0.5 s). For archives
        of more than ``_FEW`` rows; whether it was kept (best effort).

        The file is named in the archive by a random token, in one
        transaction with reading what it holds; triggers on ``entries``
        delete that token in the same transaction as any later change of
        the archive, by any writer (an older accord too), so a file that
        is not exactly the archive is never used. The file is written and
        fsynced before it is renamed into place and named."""
        import pyarrow as pa

        if self._kept_versions() is not None:
            return True  # the archive is unchanged since it was kept
        if self.count() <= _FEW:
            with contextlib.suppress(OSError):
                self.versions_path.unlink()
            return False
        try:
            with self.transaction() as db:  # no writer until it is named
                for event in ("INSERT", "UPDATE", "DELETE"):
                    db.execute(_WATCH.format(event=event))
                db.execute("DELETE FROM meta WHERE name = ?", (_KEPT,))
                if db.execute(f"SELECT 1 FROM entries WHERE {_BLOBS}").fetchone():
                    return False  # names that are not UTF-8: SQLite is read
                keys, first, second = self._stored_versions()
                plain = _plain_column(db)
                token = os.urandom(16).hex()
                table = pa.table({"key": keys, "a": first, "b": second})
                table = table.combine_chunks()  # one batch: mapped as one array
                table = table.replace_schema_metadata(
                    {
                        _KEPT: token,
                        _PLAIN: plain,
                        **numbers_mark(one_array(table.column(0))),
                    }
                )
                temp = self.versions_path.with_suffix(".tmp")
                write_table(table, self.versions_path, temp, durable=True)
                db.execute("INSERT INTO meta VALUES (?, ?)", (_KEPT, token))
        except (OSError, sqlite3.Error, pa.ArrowException, ArchiveCorrupt):
            return False  # not kept: the next run reads SQLite
        return True

    def _kept_versions(self) -> tuple[Any, ...] | None:
        """The versions file's (key, ver_a, ver_b or null), mapped, when
        the archive names it (see ``keep_version_columns``); else None."""
        token = self.kept_token()
        if token is None:
            return None
        found = mapped_texts(
            self.versions_path,
            _KEPT.encode(),
            token.encode(),
            3,
            labels=(NUMBERS_MARK, _PLAIN),
        )
        if found is None:
            return None
        marked(found[0], found[3])
        return (*found[:3], found[4])

    def vouch(self, side: Side, origin: str, token: str) -> None:
        """Say that ``side``'s listing, the kept file named ``origin``
        (``records/written.py``), holds exactly the archived keys with that
        side's archived versions: found so by comparing them with the
        versions read while the versions file's token was ``token``
        (``engine/columns.py: vouch``). Said only while ``token`` is still
        the archive's, and ended with it: any later change of the archive,
        by any writer, deletes the token (the triggers)."""
        with self.transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE name = ?", (_KEPT,))
            if row.fetchone() != (token,):
                return  # the archive changed since it was compared
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                (self._vouched_name(side), f"{token} {origin}"),
            )

    def vouched(self, side: Side) -> str | None:
        """The kept file ``vouch`` named for ``side`` while the archive is
        still what it was then; else None."""
        try:
            rows = dict(
                self._db.execute(
                    "SELECT name, value FROM meta WHERE name IN (?, ?)",
                    (_KEPT, self._vouched_name(side)),
                ).fetchall()
            )
        except sqlite3.DatabaseError:
            return None
        token, found = rows.get(_KEPT), rows.get(self._vouched_name(side))
        if token is None or found is None:
            return None
        named, _, origin = found.partition(" ")
        return origin if named == token and origin else None

    def _vouched_name(self, side: Side) -> str:
        """The meta row of ``side``'s column (``ver_a`` or ``ver_b``)."""
        return f"{_KEPT}_same_{'a' if (side is Side.LEFT) != self._swapped else 'b'}"

    def kept_token(self) -> str | None:
        """The token naming the archive's versions file, or None."""
        try:
            row = self._db.execute(
                "SELECT value FROM meta WHERE name = ?", (_KEPT,)
            ).fetchone()
        except sqlite3.DatabaseError:
            return None
        return None if row is None else str(row[0])

    def listing_token(self, side: str) -> str | None:
        """A name for this archive's rows of ``side``, under which a place
        may keep what it last listed for them (the SSH agent: see
        ``replicas/agent_listing.py``); another archive of the same pair
        (after a reset) has another. None when the archive cannot say.
        Read no database: a forked child may ask."""
        column = "ver_a" if (side == "left") != self._swapped else "ver_b"
        if self._created is None:
            return None
        text = f"{self.path}\0{self._created}\0{column}"
        return _sha256(text.encode("utf-8", "surrogatepass"))[:32]

    def has(self, key: str) -> bool:
        """Whether ``key`` is archived."""
        query = "SELECT 1 FROM entries WHERE key = ?"
        return self._db.execute(query, (_stored(key),)).fetchone() is not None

    def keys(self) -> Iterator[str]:
        """Every archived key."""
        for (key,) in self._db.execute("SELECT key FROM entries"):
            yield _text(key)

    def rows(self, keys: Iterable[str]) -> dict[str, ArchiveEntry]:
        """The archived rows of ``keys`` (missing keys left out)."""
        make = ArchiveEntry._make
        wanted = [_stored(key) for key in keys]
        found: dict[str, ArchiveEntry] = {}
        query = f"SELECT {self._columns()} FROM entries WHERE key IN "
        try:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for row in self._db.execute(f"{query}({marks})", chunk):
                    # only the key and link target are ever stored as bytes
                    # (``_row``): a row of texts is taken as it is
                    if type(row[0]) is bytes or type(row[6]) is bytes:
                        row = _decoded(row)
                    found[row[0]] = make(row)
        except sqlite3.DatabaseError as exc:
            raise ArchiveCorrupt(f"cannot read the archive {self.path}: {exc}") from exc
        return found

    def setting(self, name: str) -> str | None:
        """A value kept with the pair (e.g. the ignore rules it accepted)."""
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,))
        found = row.fetchone()
        return None if found is None else str(found[0])

    def set_setting(self, name: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))

    def cache_setting(self, name: str, value: str) -> None:
        """``set_setting`` for a value that is only a cache (found again
        when missing): an archive that cannot take it now is left as it is."""
        with contextlib.suppress(sqlite3.Error):
            self.set_setting(name, value)

    def is_empty(self) -> bool:
        return self._db.execute("SELECT 1 FROM entries LIMIT 1").fetchone() is None

    def count(self) -> int:
        """The number of items in the archive."""
        return int(self._db.execute("SELECT count(*) FROM entries").fetchone()[0])

    @staticmethod
    def _row(entry: ArchiveEntry) -> tuple[Any, ...]:
        """An entry's values in the order of ``_columns`` (which puts the
        two versions where this archive keeps them), as stored."""
        key, target = entry.key, entry.target
        if key.isascii() and (target is None or target.isascii()):
            return entry  # its fields, as stored: no tuple to build
        return (_stored(key), *entry[1:6], _stored(target), *entry[7:])

    def record(
        self,
        put: Sequence[ArchiveEntry] = (),
        forget: Iterable[str] = (),
        done: Iterable[int] = (),
        log: Sequence[tuple[str, str | None, str, str, str | None]] = (),
        *,
        commit_if: Callable[[], bool] | None = None,
    ) -> bool:
        """Advance the archive, clear journal rows and log, in one transaction.

        With ``commit_if``, it is called once the statements have run and
        before the commit: when it returns False the transaction is rolled
        back and nothing is recorded (False is returned). A process killed
        before the commit leaves nothing of it (SQLite discards an
        uncommitted transaction).
        """
        if self._staging:  # its commit would take the staged rows with it
            raise StateError("the archive has rows staged; commit them first")
        self.stage(put, forget, done, log)
        return self.commit_staged(commit_if)

    def stage(
        self,
        put: Sequence[ArchiveEntry] = (),
        forget: Iterable[str] = (),
        done: Iterable[int] = (),
        log: Sequence[tuple[str, str | None, str, str, str | None]] = (),
    ) -> None:
        """Run :meth:`record`'s statements in a transaction left open (the
        first call begins it), to be committed by :meth:`commit_staged`
        once what they record is durable: the archive's work is done while
        the run goes on, and nothing of it is visible, or kept if the
        process dies, before that commit. If a statement fails, everything
        staged is rolled back (and the error raised)."""
        if not self._staging:
            self._db.execute("BEGIN IMMEDIATE")
            self._staging = True
        try:
            self._statements(self._db, put, forget, done, log)
        except BaseException:
            self._staging = False
            self._db.execute("ROLLBACK")
            raise

    def commit_staged(self, commit_if: Callable[[], bool] | None = None) -> bool:
        """Commit what :meth:`stage` ran, if ``commit_if()`` (called first)
        says so, else roll it back; whether it was committed (True when
        nothing was staged)."""
        if not self._staging:
            return commit_if is None or commit_if()
        self._staging = False
        try:
            keep = commit_if is None or commit_if()
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT" if keep else "ROLLBACK")
        return keep

    def _statements(
        self,
        db: sqlite3.Connection,
        put: Sequence[ArchiveEntry],
        forget: Iterable[str],
        done: Iterable[int],
        log: Sequence[tuple[str, str | None, str, str, str | None]],
    ) -> None:
        """The statements of :meth:`record`, in the transaction open."""
        # in key order, as the table's B-tree holds them (threads complete
        # a run's items out of order): an eighth less of SQLite's work; the
        # sort is stable, so of two rows for one key the later still wins
        rows = [self._row(entry) for entry in sorted(put, key=_by_key)]
        db.executemany(
            f"INSERT OR REPLACE INTO entries ({self._columns()}) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            rows,
        )
        db.executemany(
            "DELETE FROM entries WHERE key = ?", [(_stored(k),) for k in forget]
        )
        db.executemany(
            "DELETE FROM journal WHERE seq BETWEEN ? AND ?", _runs(sorted(done))
        )
        now = time.time()
        db.executemany(
            "INSERT INTO log VALUES (?, ?, ?, ?, ?, ?)",
            [
                (run, now, side, action, _stored(key), _stored(detail))
                for run, side, action, key, detail in log
            ],
        )

    def clear(self) -> None:
        """Forget everything about the pair (``accord reset``)."""
        with self.transaction() as db:
            for table in ("entries", "journal", "runs", "log"):
                db.execute(f"DELETE FROM {table}")
            # made afresh: a new listing token (what a place kept for the
            # old rows predicts nothing now)
            self._created = str(time.time())
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('created', ?)", (self._created,)
            )
        with contextlib.suppress(OSError):
            self.versions_path.unlink()  # no longer named (the triggers)


#: the meta row naming the archive's versions file, and the triggers that
#: delete it whenever ``entries`` changes (``keep_version_columns``)
_KEPT = "versions_file"
_WATCH = (
    "CREATE TRIGGER IF NOT EXISTS versions_file_{event} AFTER {event} ON entries "
    f"BEGIN DELETE FROM meta WHERE name = '{_KEPT}'; END"
)

#: SQLite's page cache while ``version_runs_in_order`` reads (KiB, as
#: ``PRAGMA cache_size`` takes it): the read passes each page once, in
#: order, so a few pages do; SQLite's default (2 MiB) filled as the
#: table was read, a fresh page of memory each 4 KiB (about 500 page
#: faults a side at 20,000 files, the listing's largest share of them)
_READ_CACHE = -128

#: archives of up to this many rows keep no versions file (SQLite reads
#: them about as fast)
_FEW = 50_000

#: the versions file's mark: the column whose versions are the digests
#: when every row is plain (``plain_digests``), else b"-"
_PLAIN = b"accord-plain"
#: a row that is not plain, or whose digest is not ``ver_{column}``
_NOT_PLAIN = (
    "SELECT 1 FROM entries WHERE NOT (kind = ? AND size = 0 AND mtime_ns = 0"
    " AND mode = 0 AND target IS NULL AND digest IS ver_{column}) LIMIT 1"
)


def _plain_column(db: sqlite3.Connection) -> bytes:
    """The ``_PLAIN`` mark of the archive: a pass over its rows (0.2 s a
    million), a second one when the digests are not ver_a's."""
    for column in ("a", "b"):
        if db.execute(_NOT_PLAIN.format(column=column), (FILE,)).fetchone() is None:
            return column.encode()
    return b"-"


def _sha256(data: bytes) -> str:
    """The hex SHA-256 of a short text, by Python's own implementation:
    ``hashlib`` loads OpenSSL (about 11 million instructions, a few
    milliseconds) at import, which a no-op of local folders otherwise never
    needs; the digest is the same."""
    try:
        from _sha2 import sha256  # Python 3.12 and later
    except ImportError:
        try:
            from _sha256 import sha256  # Python 3.11
        except ImportError:  # built without them: OpenSSL's
            from hashlib import sha256
    return sha256(data).hexdigest()


def _with_blob_keys(db: sqlite3.Connection, query: str) -> dict[Any, Any]:
    """``dict(db.execute(query))`` (built in C) with the keys stored as
    BLOBs (names that are not UTF-8) turned back into their ``str``."""
    found = dict(db.execute(query))
    for key, value in db.execute(f"{query} WHERE key >= x''"):
        del found[key]
        found[_text(key)] = value
    return found


def _runs(numbers: list[int]) -> list[tuple[int, int]]:
    """Sorted ``numbers`` as ``(first, last)`` runs of consecutive ones: a
    batch's journal lines go with a statement per run, not one per line.
    Distinct numbers that span as many values as there are of them are one
    run (a first copy's whole plan at its end), found without the loop."""
    if numbers and numbers[-1] - numbers[0] + 1 == len(numbers) == len(set(numbers)):
        return [(numbers[0], numbers[-1])]
    runs: list[tuple[int, int]] = []
    for number in numbers:
        if runs and number <= runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], max(number, runs[-1][1]))
        else:
            runs.append((number, number))
    return runs
