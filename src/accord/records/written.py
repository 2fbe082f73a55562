"""What a CSV file held when accord last wrote it, kept beside accord's state.

A file target is written by accord (``CSVPlace.commit``) and read again by
the next run, most often unchanged since. After each write the file is read
back by the fast reader, and its records (key texts, record texts) are kept
as an Arrow file in the state folder (``records-files/<hash of the
path>.arrow``, one per file), stamped with the SHA-256 of the file's bytes
and of how it was read (columns, types, encoding). The next read hashes
the file (a few hundredths of a second for 40 MB) and, when both stamps
match, maps the kept records instead of parsing and converting the file
again; any other file, or a change of a single byte, is read as always.
Only files accord wrote are kept: a source that someone else exports is
read every time. A kept file that cannot be read is ignored.

The records kept are those the file yields when read back, not those the
write was given: the two differ where a write does not round-trip (with
``empty = "text"`` a value that is no value is written as an empty field,
which reads back as an empty text), and what is kept must be what reading
these bytes gives. The read-back costs about 0.06 s of CPU for 100,000
rows (about 5% of a CSV to CSV plan and apply).

Each kept file also carries a random name of its own (``_ID``), written
with it: the records it holds are known by that name alone, and an apply
that finds them equal to the archive's versions says so in the archive
under that name (``engine/columns.py: vouch``; docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from accord.arrowfile import mapped_texts, write_table
from accord.replica import NUMBERS_MARK, marked, numbers_mark

__all__ = ["WrittenFile"]

_FORMAT = "accord-records-1"  # changes when the record texts would change
_ID = b"accord-id"  # the kept file's own random name


class WrittenFile:
    """The records kept for one CSV file (``path``), read as ``how``."""

    def __init__(self, folder: Path, path: str, how: str) -> None:
        name = hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:24]
        self.kept = folder / f"{name}.arrow"
        self.how = how

    def _stamp(self, data: bytes) -> bytes:
        from accord.records.fastcsv import unmapped

        digest = hashlib.sha256(data)
        unmapped(data)
        digest.update(f"\0{_FORMAT}\0{self.how}".encode())
        return digest.hexdigest().encode()

    def get(self, data: bytes) -> tuple[Any, Any, str | None] | None:
        """(key texts, record texts, the kept file's own name) kept for a
        file of these bytes, or None."""
        if not self.kept.is_file():
            return None  # none kept: the file is not hashed for nothing
        found = mapped_texts(
            self.kept, b"accord", self._stamp(data), 2, labels=(_ID, NUMBERS_MARK)
        )
        if found is None:
            return None
        marked(found[0], found[3])
        name = found[2].decode("ascii", "replace") if found[2] else None
        return found[0], found[1], name

    def put(self, data: bytes, found: tuple[Any, Any] | None) -> None:
        """Keep ``found`` (the file's records as the fast reader read these
        bytes; None: it could not, and nothing is kept). Best effort: a
        folder that cannot be written keeps nothing."""
        with contextlib.suppress(FileNotFoundError):
            self.kept.unlink()
        if found is None:
            return
        import pyarrow as pa

        keys, texts = found
        table = pa.table({"key": keys, "text": texts})
        name = os.urandom(16).hex()
        table = table.replace_schema_metadata(
            {"accord": self._stamp(data), _ID: name, **numbers_mark(keys)}
        )
        try:
            self.kept.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(dir=self.kept.parent, suffix=".tmp")
            os.close(handle)
            write_table(table, self.kept, Path(temp), durable=False)
        except (OSError, pa.ArrowException):
            return
