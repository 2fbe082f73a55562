"""The element tree both encodings share, and the XML encoding.

A SyncML message is a small tree of named elements. :class:`Node` is one
element: a tag, children, and text (``str``) or opaque bytes (``bytes``,
WBXML's OPAQUE; item data). Namespaces are not kept in the tree: in SyncML
a tag's namespace follows from its name (the MetInf tags) or from the
subtree it is in (a ``DevInf`` element starts the DevInf namespace), so
both encoders put them back.

XML is parsed with defusedxml: no entity expansion, no external entities;
a document that tries either is refused as malformed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

__all__ = [
    "CT_WBXML",
    "CT_XML",
    "DEVINF_NS",
    "METINF",
    "METINF_NS",
    "METINF_TAGS",
    "SYNCML_NS",
    "Malformed",
    "Node",
    "from_xml",
    "leaf",
    "to_xml",
]

SYNCML_NS = "SYNCML:SYNCML1.2"
METINF_NS = "syncml:metinf"
DEVINF_NS = "syncml:devinf"
CT_XML = "application/vnd.syncml+xml"
CT_WBXML = "application/vnd.syncml+wbxml"

#: the tags of the MetInf code page (namespace ``syncml:metinf``), in
#: token order (0x05 onwards)
METINF = [
    "Anchor",
    "EMI",
    "Format",
    "FreeID",
    "FreeMem",
    "Last",
    "Mark",
    "MaxMsgSize",
    "Mem",
    "MetInf",
    "Next",
    "NextNonce",
    "SharedMem",
    "Size",
    "Type",
    "Version",
    "MaxObjSize",
    "FieldLevel",
]
METINF_TAGS = frozenset(METINF)


class Malformed(ValueError):
    """A message that cannot be decoded (bad XML or WBXML, wrong shape)."""


class Node(NamedTuple):
    """One element: tag, children, and text or opaque bytes (or neither)."""

    tag: str
    children: tuple[Node, ...] = ()
    text: str | bytes | None = None

    def find(self, tag: str) -> Node | None:
        """The first child named ``tag``."""
        for child in self.children:
            if child.tag == tag:
                return child
        return None

    def findall(self, tag: str) -> Iterator[Node]:
        return (child for child in self.children if child.tag == tag)

    def path(self, *tags: str) -> Node | None:
        """The first descendant along ``tags`` (child, grandchild, ...)."""
        node: Node | None = self
        for tag in tags:
            node = node.find(tag) if node is not None else None
        return node

    def value(self, *tags: str) -> str | None:
        """The text at ``tags`` (stripped), or None."""
        node = self.path(*tags)
        if node is None or node.text is None:
            return None
        text = node.text
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return text.strip()

    def has(self, tag: str) -> bool:
        return self.find(tag) is not None


def leaf(tag: str, text: str | bytes | int | None) -> Node | None:
    """An element holding ``text``, or None when ``text`` is None."""
    if text is None:
        return None
    return Node(tag, (), str(text) if isinstance(text, int) else text)


# -- XML ----------------------------------------------------------------------


def to_xml(root: Node) -> bytes:
    """The XML encoding of a SyncML (or DevInf) document, UTF-8."""
    out: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>']
    _write(root, out, _namespace_of(root.tag, None))
    return "".join(out).encode("utf-8")


def _namespace_of(tag: str, parent: str | None) -> str:
    if tag == "DevInf":
        return DEVINF_NS
    if parent == DEVINF_NS:
        return DEVINF_NS
    if tag in METINF_TAGS:
        return METINF_NS
    return SYNCML_NS


def _write(node: Node, out: list[str], ns: str, parent_ns: str | None = None) -> None:
    declare = f" xmlns='{ns}'" if ns != parent_ns else ""
    text = node.text
    if not node.children and (text is None or text == "" or text == b""):
        out.append(f"<{node.tag}{declare}/>")
        return
    out.append(f"<{node.tag}{declare}>")
    if text is not None:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        out.append(_text(text, node.tag == "Data"))
    for child in node.children:
        child_ns = _namespace_of(child.tag, ns if ns == DEVINF_NS else None)
        # MetInf elements inside MetInf ones (Anchor/Last) keep their parent's
        child_ns = ns if ns == METINF_NS and child.tag in METINF_TAGS else child_ns
        _write(child, out, child_ns, ns)
    out.append(f"</{node.tag}>")


def _text(text: str, data: bool = False) -> str:
    """Escaped text. Item data always goes in CDATA (peers read long plain
    text badly: the Synthesis engine took a 9 KB run of letters for 0
    bytes); a CR is written as ``&#13;`` between CDATA sections, since XML
    parsers turn CR LF into LF."""
    if not data and not any(c in text for c in "<>&\r\n"):
        return text
    cdata = "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"
    return cdata.replace("\r", "]]>&#13;<![CDATA[").replace("<![CDATA[]]>", "")


def keep_lone_cr(data: bytes) -> bytes:
    """``data`` with each CR that no LF follows written so that an XML
    parser keeps it: XML's line-end rule reads such a CR as an LF, and a
    large object cut into chunks (``MoreData``) between the CR and the LF
    of a line end then gained a line where its chunks were joined (CR|LF
    read as LF|LF). In a CDATA section the CR becomes ``]]>&#13;<![CDATA[``,
    in text between tags ``&#13;``; CR LF pairs, CRs inside tags, comments
    or processing instructions, and around the root element are left as
    they are."""
    root = _ROOT.search(data)
    if b"\r" not in data or root is None:
        return data
    start, end = root.start(), data.rfind(b">") + 1  # the root element
    if end <= start:
        return data  # not a document: the parser says so
    out, at = [data[:start]], start
    for match in _CDATA.finditer(data, start, end):
        out.append(_MARKUP_OR_TEXT.sub(_text_cr, data[at : match.start()]))
        body = _LONE_CR.sub(b"]]>&#13;<![CDATA[", match.group(1))
        out.append(b"<![CDATA[" + body + b"]]>")
        at = match.end()
    out.append(_MARKUP_OR_TEXT.sub(_text_cr, data[at:end]))
    out.append(data[end:])
    return b"".join(out)


def _text_cr(match: re.Match[bytes]) -> bytes:
    """A piece between CDATA sections: markup as it is, text with its lone
    CRs as character references."""
    piece = match.group(0)
    return piece if piece.startswith(b"<") else _LONE_CR.sub(b"&#13;", piece)


_ROOT = re.compile(rb"<[^?!]")  # the root element's start tag
_CDATA = re.compile(rb"<!\[CDATA\[(.*?)\]\]>", re.S)
_LONE_CR = re.compile(rb"\r(?!\n)")
#: markup (a tag, comment, declaration or processing instruction), or text
_MARKUP_OR_TEXT = re.compile(rb"<!--.*?-->|<[^>]*>|[^<]+", re.S)


def from_xml(data: bytes) -> Node:
    """Parse an XML SyncML (or DevInf) document; Malformed when it is not."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        element = fromstring(keep_lone_cr(data))
    except DefusedXmlException as exc:
        raise Malformed(f"refused XML: {type(exc).__name__}") from exc
    except Exception as exc:  # ParseError, ValueError from expat
        raise Malformed(f"not well-formed XML: {exc}") from exc
    return _from_element(element)


def _from_element(element: object) -> Node:
    tag = element.tag  # type: ignore[attr-defined]
    name = tag.rpartition("}")[2] if isinstance(tag, str) else str(tag)
    children = tuple(_from_element(child) for child in element)  # type: ignore[attr-defined]
    text = element.text  # type: ignore[attr-defined]
    if children and text is not None and not text.strip():
        text = None
    return Node(name, children, text)
