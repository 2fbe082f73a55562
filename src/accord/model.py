"""Value types shared by every layer: sides, kinds, entries and problems.

A *key* of a file tree is its relative path, ``/``-separated and byte for
byte as its place holds it (see ``accord.keys``); the root is ``""``. Keys
are plain ``str`` so that a million entries fit comfortably in memory (see
docs/architecture.md).

An :class:`Entry` is what a place reports about a key now. It is a
``NamedTuple``: immutable, compact, cheap to create by the hundred thousand.
``version`` is opaque and per place (a stat stamp, an ETag); only equality
means anything. ``digest`` is a content hash comparable across places
(``sha256:<hex>``), or ``None`` when not known without reading the content.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from accord.keys import shown
from accord.tuples import NamedTuple

__all__ = [
    "DIR",
    "FILE",
    "KINDS",
    "LINK",
    "Entry",
    "Nesting",
    "Problem",
    "Side",
    "Spot",
    "join",
    "nesting",
    "parent_of",
    "permissions",
]

FILE = "file"
DIR = "dir"
LINK = "link"
KINDS = (FILE, DIR, LINK)


class Side(enum.StrEnum):
    """One of the two replicas of a pair."""

    LEFT = "left"
    RIGHT = "right"

    @property
    def other(self) -> Side:
        return Side.RIGHT if self is Side.LEFT else Side.LEFT

    def __str__(self) -> str:
        return self.value


class Entry(NamedTuple):
    """What a place holds under a key, now."""

    key: str
    kind: str
    size: int = 0
    mtime_ns: int = 0
    mode: int = 0
    version: str = ""
    digest: str | None = None
    target: str | None = None  # the link text of a symlink

    def same_content(self, other: Entry) -> bool:
        """True when both hold the same thing (kind, bytes or link text)."""
        if self.kind != other.kind:
            return False
        if self.kind == DIR:
            return True
        if self.kind == LINK:
            return self.target == other.target
        if self.size != other.size:
            return False
        return self.digest is not None and self.digest == other.digest

    def to_json(self) -> dict[str, object]:
        pairs = zip(self._fields, self, strict=True)
        return {name: value for name, value in pairs if value}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Entry:
        return cls(**data)  # type: ignore[arg-type]


class Problem(NamedTuple):
    """Something that went wrong with one key; reported, not raised.

    ``refused``: the name itself was refused (it would leave the place, or
    the other side cannot hold it); the item is left out of the run, and
    of the archive, so it is reported again until it is renamed.
    ``notice``: nothing went wrong: the place holds something accord does
    not sync by design (a named pipe, a socket, a device; a link where the
    place carries none). Every other problem leaves something unsynced,
    and the run ends as partial (exit code 3).
    """

    key: str
    side: Side | None
    message: str
    retryable: bool = False
    refused: bool = False
    notice: bool = False

    def __str__(self) -> str:
        where = f"{self.side} " if self.side else ""
        return f"{where}{shown(self.key) if self.key else '/'}: {self.message}"


def permissions(st_mode: int) -> int:
    """A stat mode's permission bits, as an entry keeps them; no bits at
    all (a file made unreadable on purpose, as ``/etc/shadow`` is on some
    systems) as the type's bits alone, never 0: an entry's 0 says its place
    keeps no modes, and a writer gives such a copy the default (0644). The
    system's chmod ignores the type bits: the copy gets no permission
    either."""
    return st_mode & 0o7777 or st_mode & 0o170000


def join(parent: str, name: str) -> str:
    """The key of ``name`` inside ``parent``."""
    return f"{parent}/{name}" if parent else name


def parent_of(key: str) -> str:
    """The key of the directory holding ``key`` (``""`` for the root)."""
    cut = key.rfind("/")
    return key[:cut] if cut > 0 else ""


class Spot(NamedTuple):
    """Where a place's root lies, in one namespace.

    ``space`` names a namespace in which folders nest: one file system (by
    its device), one folder by its device and inode, one host, one bucket's
    endpoint, one fsspec filesystem. ``path`` is the root's folders from the
    top of that space. A place names itself by one or more spots
    (``Replica.spots()``); two places overlap when, in a space both name,
    one path begins with the other. Pure values: the engine compares them
    and never asks which kind of place gave them.
    """

    space: str
    path: tuple[str, ...] = ()

    def holds(self, other: Spot) -> bool:
        """True when ``other`` is this spot or lies below it."""
        return self.space == other.space and other.path[: len(self.path)] == self.path


class Nesting(NamedTuple):
    """How two places overlap: ``outer`` holds ``inner`` at ``key`` (``""``
    when both are the same place)."""

    outer: int  # 0 or 1: which of the two places given holds the other
    key: str  # the inner root's path inside the outer one, ``/``-separated


def nesting(first: Iterable[Spot], second: Iterable[Spot]) -> Nesting | None:
    """Whether two places overlap, from their spots; None when they are apart.

    When one holds the other, ``key`` is the inner root seen from the outer
    one; the same place seen through any of its spots is ``key == ""``.
    """
    found: Nesting | None = None
    seconds = list(second)
    for a in first:
        for b in seconds:
            for outer, (top, low) in enumerate(((a, b), (b, a))):
                if top.holds(low):
                    key = "/".join(low.path[len(top.path) :])
                    if not key:
                        return Nesting(0, "")
                    found = found or Nesting(outer, key)
    return found
