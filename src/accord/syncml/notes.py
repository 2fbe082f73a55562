"""Notes on the wire: ``text/plain`` and SIF notes (``text/x-s4j-sifn``).

A note is a name and a body (the bytes of a file). SIF carries both (the
``Subject`` is the name); plain text carries only the body, so a name is
made from its first line. Other content types are carried as they are
(opaque bytes, named by their id).

Every name that comes from a peer goes through :func:`safe_name`, which
ends with :func:`accord.keys.unsafe_reason`: a subject such as
``../../etc/passwd`` or ``/tmp/x`` becomes a plain name inside the folder.
"""

from __future__ import annotations

import re
from collections.abc import Container
from xml.sax.saxutils import escape

from accord.keys import unsafe_reason

__all__ = [
    "SIF",
    "TEXT",
    "Note",
    "from_wire",
    "name_from_text",
    "plain_text",
    "safe_name",
    "same_text",
    "tidy",
    "to_wire",
    "unique_name",
]

TEXT = "text/plain"
SIF = "text/x-s4j-sifn"
_NAME_BYTES = 120
_BAD = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


class Note:
    """One note as a peer sends it: a name (None: derive one) and a body."""

    __slots__ = ("body", "extra", "name")

    def __init__(
        self, name: str | None, body: bytes, extra: bytes | None = None
    ) -> None:
        self.name = name
        self.body = body
        self.extra = extra  # a SIF document to keep unknown fields of


def safe_name(candidate: str, fallback: str = "note") -> str:
    """A name for a file inside the folder, made from a peer's ``candidate``.

    Path separators and control characters become ``_``; leading dots and
    spaces go (no hidden files, no ``..``); the result is cut to a sane
    length and checked with ``unsafe_reason``.
    """
    name = _BAD.sub("_", candidate).strip().lstrip(". ").strip()
    name = name.encode()[:_NAME_BYTES].decode("utf-8", "ignore").rstrip(". ")
    if not name or unsafe_reason(name) is not None:
        return fallback
    return name


def name_from_text(body: bytes, ext: str = ".txt") -> str:
    """A file name for a plain-text note: its first non-empty line."""
    text = body.decode("utf-8", "replace")
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    first = re.sub(r"^(title|name|subject)\s*:\s*", "", first, flags=re.IGNORECASE)
    return safe_name(first[:80]) + ext


def unique_name(name: str, taken: Container[str]) -> str:
    """``name``, or ``name (2).ext``, ``name (3).ext``... whichever is free."""
    if name not in taken:
        return name
    stem, dot, ext = name.rpartition(".")
    if not stem:
        stem, dot, ext = name, "", ""
    for n in range(2, 100000):
        candidate = f"{stem} ({n}){dot}{ext}"
        if candidate not in taken:
            return candidate
    raise ValueError("no free name")  # pragma: no cover


def same_text(a: bytes, b: bytes) -> bool:
    """True when two note bodies differ at most in line ends and trailing
    blank lines (peers rewrite those: SyncEvolution adds a CRLF each time)."""
    return plain_text(a) == plain_text(b)


def tidy(body: bytes) -> bytes:
    """A note body as accord stores what a peer sends: LF line ends and one
    final newline (peers rewrite line ends and add blank lines each time a
    note passes through them; kept as sent, notes would grow and differ)."""
    text = plain_text(body)
    return text + b"\n" if text else b""


def plain_text(body: bytes) -> bytes:
    """The text of a note as peers compare it: LF line ends, no trailing
    blank lines or spaces."""
    return body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").rstrip(b"\n \t")


# -- wire formats ---------------------------------------------------------------


def from_wire(content_type: str | None, data: bytes) -> Note:
    """The note a peer sent; a SIF note that cannot be read stays opaque."""
    if content_type == SIF:
        parsed = _from_sif(data)
        if parsed is not None:
            return parsed
    return Note(None, data)


def to_wire(
    content_type: str, name: str, body: bytes, extra: bytes | None = None
) -> bytes:
    """What to send for a note: the body, or a SIF document with its name."""
    if content_type != SIF:
        return body
    subject = name.rsplit("/", 1)[-1]
    text = body.decode("utf-8", "replace")
    if extra is not None:
        updated = _update_sif(extra, subject, text)
        if updated is not None:
            return updated
    return (
        '<?xml version="1.0" encoding="UTF-8"?><note><SIFVersion>1.1</SIFVersion>'
        f"<Subject>{escape(subject)}</Subject><Body>{escape(text)}</Body></note>"
    ).encode()


def _from_sif(data: bytes) -> Note | None:
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(data)
    except (DefusedXmlException, Exception):
        return None
    if root.tag.rpartition("}")[2] != "note":
        return None
    subject = root.findtext("Subject")
    body = root.findtext("Body") or ""
    name = subject.strip() if subject and subject.strip() else None
    return Note(name, body.encode("utf-8"), data)


def _update_sif(extra: bytes, subject: str, body: str) -> bytes | None:
    """``extra`` (a SIF note received earlier) with a new subject and body:
    fields accord does not know (colour, categories...) are kept."""
    import xml.etree.ElementTree as ET

    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(extra)
    except Exception:
        return None
    for tag, value in (("Subject", subject), ("Body", body)):
        node = root.find(tag)
        if node is None:
            node = ET.SubElement(root, tag)
        node.text = value
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        + ET.tostring(root, encoding="utf-8").split(b"?>", 1)[-1]
    )
