"""Names: exact keys, Unicode normalization, case folding and ignore rules.

Keys are names byte for byte, as their place holds them: an NFD spelling
(macOS, or a file copied from one) stays NFD, and a name that is not UTF-8
is a ``str`` with surrogate escapes (``os.fsdecode``), which every place
that can hold it turns back into the same bytes. :func:`nfc` is only used
to *match*: two spellings of one name are one item (``engine/twins.py``),
and a place that normalizes names cannot hold both (``engine/guards.py``).

Every name that crosses a boundary (a place's listing, a peer's request, a
plan file, a user's argument) is checked with :func:`unsafe_reason` before
it is used, and shown to people with :func:`shown`, which makes control
characters and undecodable bytes visible.

Ignore rules use gitignore syntax (``pathspec``), read from ``.accordignore``
at the root of either side, plus ``--exclude`` patterns.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Container, Iterable

__all__ = [
    "META_DIR",
    "IgnoreRules",
    "conflict_name",
    "fold",
    "in_meta",
    "nfc",
    "shown",
    "unsafe_reason",
]

#: the directory at the root of a place that holds accord's own files. A
#: folder of that name deeper in a tree is the own folder of another accord
#: place nested there: it is never listed, copied or deleted either.
META_DIR = ".accord"
_INSIDE = f"/{META_DIR}/"


def in_meta(key: str) -> bool:
    """True when ``key`` lies inside a folder named ``.accord``: accord's
    own area, of this place or of a place nested in it. Cheap."""
    return key.startswith(META_DIR + "/") or _INSIDE in key


def nfc(name: str) -> str:
    """``name`` in Unicode NFC (fast for ASCII): the form in which two
    spellings of one name are equal. Never used to rename anything."""
    if name.isascii() or unicodedata.is_normalized("NFC", name):
        return name
    return unicodedata.normalize("NFC", name)


def unsafe_reason(key: str) -> str | None:
    """Why ``key`` cannot name an item inside a place, or None when it can.

    A key is a clean relative path: ``/``-separated parts, none empty, none
    ``.`` or ``..``, no NUL, not absolute, and not inside accord's own
    folder at the root nor inside a nested place's one (a ``.accord`` folder
    deeper in the tree), in any case: a disk that ignores case takes
    ``.ACCORD/`` for ``.accord/``. Control characters and undecodable
    bytes (surrogate escapes) are not unsafe in themselves: whether a place
    can hold them is a question for that place (its capabilities). Every
    name that crosses a boundary (a place's listing, a peer's request, a
    plan file, a user's argument) is checked with this before it is used.
    Pure and cheap: a plain name costs a few substring searches.
    """
    if (
        key
        and key[0] not in "./"
        and key[-1] != "/"
        and "/." not in key
        and "//" not in key
        and "\0" not in key
    ):
        return None  # the common case: no part can be empty, '.', '..' or ours
    if not key:
        return "the name is empty"
    if "\0" in key:
        return "the name holds a NUL character"
    if key[0] == "/":
        return "the name is absolute (it starts with '/')"
    parts = key.split("/")
    for part in parts:
        if part == "..":
            return "the name would leave the target folder ('..')"
        if part in ("", "."):
            return "the name has an empty or '.' part"
    if parts[0].lower() == META_DIR:
        return f"the name is inside accord's own folder {META_DIR}/"
    if any(part.lower() == META_DIR for part in parts[1:-1]):
        return f"the name is inside the {META_DIR}/ folder of a place nested here"
    return None


def conflict_name(key: str, side: str, mtime_ns: int, taken: Container[str]) -> str:
    """``dir/name.conflict-YYYYmmdd-HHMMSS-<side>.ext``, unique among ``taken``.

    ``side`` says whose version it is (``left``, ``right``, ``client``).
    """
    cut = key.rfind("/")
    folder, name = (key[:cut], key[cut + 1 :]) if cut > 0 else ("", key)
    stem, dot, ext = name.rpartition(".")
    if not stem:  # no extension, or a dot file
        stem, dot, ext = name, "", ""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(mtime_ns / 1e9))
    for n in range(1, 1000):
        suffix = f".conflict-{stamp}-{side}" + (f"-{n}" if n > 1 else "")
        room = 255 - _size(f"{suffix}{dot}{ext}")  # a name's byte limit
        short = stem
        while _size(short) > max(room, 1) and len(short) > 1:
            short = short[: -max(1, (_size(short) - room) // 4)]  # whole characters
        candidate = f"{short}{suffix}{dot}{ext}"
        full = f"{folder}/{candidate}" if folder else candidate
        if full not in taken:
            return full
    raise RuntimeError("no free conflict name")  # pragma: no cover


def _size(name: str) -> int:
    """``name``'s length in bytes, as stored (a surrogate escape is one)."""
    return len(name.encode("utf-8", "surrogateescape"))


_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def shown(name: str) -> str:
    """``name`` as people should see it: unchanged when every character is
    printable, else quoted with escapes (``'a\\nb'``, ``'caf\\xe9'`` for an
    undecodable byte kept as a surrogate escape), so that a control
    character or a stray byte can neither hide nor break a line."""
    if name and name.isprintable() and name == name.strip():
        return name
    return "'" + "".join(_escape(ch) for ch in name) + "'"


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch.isprintable():
        return ch
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def fold(key: str) -> str:
    """The spelling a case-insensitive place treats as the same name."""
    return key.casefold()


class IgnoreRules:
    """gitignore-style rules; ``matches(key, is_dir)`` says to skip a key."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = [p for p in (line.rstrip("\n") for line in patterns) if p]
        self._spec = None
        if any(p.strip() and not p.lstrip().startswith("#") for p in self.patterns):
            import pathspec  # imported only when there are rules

            # patterns and names are compared in NFC, so a pattern typed in
            # one Unicode spelling matches a name kept in the other (names
            # themselves are never rewritten)
            lines = [nfc(p) for p in self.patterns]
            self._spec = pathspec.GitIgnoreSpec.from_lines(lines)

    def __bool__(self) -> bool:
        return self._spec is not None

    def matches(self, key: str, is_dir: bool) -> bool:
        if self._spec is None:
            return False
        key = nfc(key)
        return self._spec.match_file(key + "/" if is_dir else key)

    def excludes(self, key: str, is_dir: bool) -> bool:
        """True when ``key`` or any folder above it matches a rule (for
        places that list whole trees instead of walking folders)."""
        if self.matches(key, is_dir):
            return True
        cut = key.rfind("/")
        while cut > 0:
            key = key[:cut]
            if self.matches(key, True):
                return True
            cut = key.rfind("/")
        return False

    def covers(self, folder: str) -> bool:
        """True when the folder ``folder`` or one above it is ignored: a
        scan never enters it."""
        return self.excludes(folder, True)

    def __add__(self, other: IgnoreRules) -> IgnoreRules:
        return IgnoreRules([*self.patterns, *other.patterns])
