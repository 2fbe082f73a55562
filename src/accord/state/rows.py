"""The archive's rows, and how a name is stored in them.

An ``ArchiveEntry`` is the state both sides agreed on at a key, with each
side's version at that moment; ``RunRecord`` and ``LogLine`` are a run's
history and its per-action lines. Names are kept byte for byte: one that is
valid UTF-8 is stored as TEXT, one that is not (a surrogate-escaped ``str``)
as a BLOB of its own bytes (``stored``, ``unstored``).
"""

from __future__ import annotations

import operator
from typing import Any

from accord.model import Entry
from accord.tuples import NamedTuple

__all__ = [
    "ABSENT",
    "BLOBS",
    "ArchiveEntry",
    "LogLine",
    "RunRecord",
    "by_key",
    "decoded",
    "stored",
    "unstored",
]


def stored(text: str | None) -> str | bytes | None:
    """``text`` as stored: itself, or when it is not UTF-8 (surrogate
    escapes) its bytes, a BLOB."""
    if text is None or text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")
    return text


by_key = operator.itemgetter(0)  # an ArchiveEntry's key


def unstored(value: Any) -> Any:
    """A stored value back as it was given (see ``stored``)."""
    if type(value) is bytes:
        return value.decode("utf-8", "surrogateescape")
    return value


def decoded(row: Any) -> tuple[Any, ...]:
    return tuple(unstored(value) for value in row)


#: rows whose key or link target is not UTF-8 (stored as BLOBs, which sort
#: after TEXT: the key's part is a seek on the primary key)
BLOBS = "key >= x'' OR target >= x''"

#: the version of a side that agreed to hold nothing at a key: a folder
#: deleted there, kept on the other side because it still holds items that
#: are not synced (ignored ones)
ABSENT = "-"


class ArchiveEntry(NamedTuple):
    """The agreed state of a key, and each side's version at that moment
    (``ABSENT``: that side holds nothing there, by agreement)."""

    key: str
    kind: str
    size: int
    mtime_ns: int
    mode: int
    digest: str | None
    target: str | None
    left: str  # LEFT's version when agreed
    right: str  # RIGHT's version when agreed

    def version(self, side: str) -> str:
        return self.left if side == "left" else self.right

    def as_entry(self, side: str) -> Entry:
        return Entry(
            self.key,
            self.kind,
            self.size,
            self.mtime_ns,
            self.mode,
            self.version(side),
            self.digest,
            self.target,
        )

    @classmethod
    def agreed(cls, left: Entry, right: Entry) -> ArchiveEntry:
        """The row recording that ``left`` and ``right`` hold the same thing."""
        digest = left.digest or right.digest
        return cls(
            left.key,
            left.kind,
            left.size,
            left.mtime_ns,
            left.mode,
            digest,
            left.target,
            left.version,
            right.version,
        )


class RunRecord(NamedTuple):
    run: str
    started: float
    finished: float | None
    who: str | None
    command: str | None
    status: str | None
    summary: dict[str, Any]


class LogLine(NamedTuple):
    run: str
    at: float
    side: str | None
    action: str
    key: str
    detail: str | None
