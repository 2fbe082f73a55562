"""The archive's entries, read whole before a run has locked its places.

An archive's entries are named, as they are, by a random token in its
``meta`` table, the *entries stamp* (``ArchiveStore.stamp_entries``
writes it at the end of a run); triggers on ``entries`` delete it in the
same transaction as any later change, by any writer. ``read_snapshot``
reads the stamp and every key with both versions in one read
transaction: a run that finds, once it has locked both places, the same
stamp in the archive has the archive's entries exactly (a new stamp is
random, never an old one). ``engine/early.py`` reads it while accord
starts.

This module imports only the standard library (it runs in a child
process before the rest of accord is imported).
"""

from __future__ import annotations

import hashlib
import sqlite3
from operator import itemgetter
from typing import NamedTuple

__all__ = ["Snapshot", "archive_name", "read_snapshot"]

#: the meta row naming the archive's entries as they are, and the triggers
#: that delete it whenever ``entries`` changes (``stamp_entries``)
_STAMP = "entries_stamp"
_STAMP_WATCH = (
    "CREATE TRIGGER IF NOT EXISTS entries_stamp_{event} AFTER {event} ON entries "
    f"BEGIN DELETE FROM meta WHERE name = '{_STAMP}'; END"
)


def archive_name(left: str, right: str) -> str:
    """The file name of the archive of the places with these identities
    (either order), in the state folder's ``pairs``."""
    first, second = sorted((left, right))
    return hashlib.sha256(f"{first}\0{second}".encode()).hexdigest()[:24] + ".db"


class Snapshot(NamedTuple):
    """Every archived key (ascending) with its ``ver_a`` and ``ver_b``, as
    read while the archive's entries stamp was ``stamp``."""

    path: str
    stamp: str
    keys: list[str]
    ver_a: list[str]
    ver_b: list[str]


def read_snapshot(path: str, most: int) -> Snapshot | None:
    """The archive at ``path``'s keys and versions, read in one transaction
    with its entries stamp, without taking any lock of the places: whoever
    uses it must check, once the places are locked, that the stamp is
    still the archive's. None when the archive has no stamp, more than
    ``most`` rows, or keys that are not UTF-8 (stored as BLOBs, which sort
    after the others)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        db.execute("BEGIN")  # one snapshot: the stamp and the rows
        row = db.execute("SELECT value FROM meta WHERE name = ?", (_STAMP,))
        found = row.fetchone()
        if found is None:
            return None
        if db.execute("SELECT 1 FROM entries WHERE key >= x'' LIMIT 1").fetchone():
            return None
        query = "SELECT key, ver_a, ver_b FROM entries ORDER BY key LIMIT ?"
        rows = db.execute(query, (most + 1,)).fetchall()
        db.execute("COMMIT")
    except sqlite3.Error:
        return None
    finally:
        db.close()
    if len(rows) > most:
        return None
    keys, ver_a, ver_b = (list(map(itemgetter(at), rows)) for at in range(3))
    return Snapshot(str(path), str(found[0]), keys, ver_a, ver_b)
