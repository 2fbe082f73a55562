"""WBXML 1.2 for SyncML 1.2: the SyncML and MetInf code pages, and DevInf.

A SyncML document (public id ``-//SYNCML//DTD SyncML 1.2//EN``, 0x1201)
uses code page 0 for SyncML and code page 1 for MetInf; a DevInf document
(0x1203) has one page of its own. A ``DevInf`` element inside a message's
``Data`` travels as OPAQUE bytes holding a DevInf WBXML document, as
libwbxml and the Synthesis engine do; ``decode`` leaves such bytes to the
caller (``devinf.from_data``). Text is written inline (STR_I), item data
given as ``bytes`` as OPAQUE. The decoder also reads string-table
references, entities, literal tags and skips attributes, so documents
written by other encoders are read too.

Token values are those of OMA's representation specifications (the same
tables as libwbxml's ``wbxml_tables.c``).
"""

from __future__ import annotations

from accord.syncml.tree import METINF, METINF_TAGS, Malformed, Node

__all__ = ["PUBLIC_DEVINF", "PUBLIC_SYNCML", "decode", "encode", "is_wbxml"]

PUBLIC_SYNCML = 0x1201
PUBLIC_METINF = 0x1202
PUBLIC_DEVINF = 0x1203
_PUBLIC_NAMES = {
    "-//SYNCML//DTD SyncML 1.2//EN": PUBLIC_SYNCML,
    "-//SYNCML//DTD SyncML 1.1//EN": PUBLIC_SYNCML,
    "-//SYNCML//DTD DevInf 1.2//EN": PUBLIC_DEVINF,
    "-//SYNCML//DTD DevInf 1.1//EN": PUBLIC_DEVINF,
}
_UTF8 = 0x6A

_SYNCML_PAGE0 = [
    "Add",
    "Alert",
    "Archive",
    "Atomic",
    "Chal",
    "Cmd",
    "CmdID",
    "CmdRef",
    "Copy",
    "Cred",
    "Data",
    "Delete",
    "Exec",
    "Final",
    "Get",
    "Item",
    "Lang",
    "LocName",
    "LocURI",
    "Map",
    "MapItem",
    "Meta",
    "MsgID",
    "MsgRef",
    "NoResp",
    "NoResults",
    "Put",
    "Replace",
    "RespURI",
    "Results",
    "Search",
    "Sequence",
    "SessionID",
    "SftDel",
    "Source",
    "SourceRef",
    "Status",
    "Sync",
    "SyncBody",
    "SyncHdr",
    "SyncML",
    "Target",
    "TargetRef",
    "_reserved",
    "VerDTD",
    "VerProto",
    "NumberOfChanges",
    "MoreData",
    "Field",
    "Filter",
    "Record",
    "FilterType",
    "SourceParent",
    "TargetParent",
    "Move",
    "Correlator",
]
_METINF_PAGE1 = list(METINF)
_DEVINF_PAGE0 = [
    "CTCap",
    "CTType",
    "DataStore",
    "DataType",
    "DevID",
    "DevInf",
    "DevTyp",
    "DisplayName",
    "DSMem",
    "Ext",
    "FwV",
    "HwV",
    "Man",
    "MaxGUIDSize",
    "MaxID",
    "MaxMem",
    "Mod",
    "OEM",
    "ParamName",
    "PropName",
    "Rx",
    "Rx-Pref",
    "SharedMem",
    "MaxSize",
    "SourceRef",
    "SwV",
    "SyncCap",
    "SyncType",
    "Tx",
    "Tx-Pref",
    "ValEnum",
    "VerCT",
    "VerDTD",
    "XNam",
    "XVal",
    "UTC",
    "SupportNumberOfChanges",
    "SupportLargeObjs",
    "Property",
    "PropParam",
    "MaxOccur",
    "NoTruncate",
    "_reserved",
    "Filter-Rx",
    "FilterCap",
    "FilterKeyword",
    "FieldLevel",
    "SupportHierarchicalSync",
]


def _table(names: list[str]) -> dict[str, int]:
    return {name: 5 + i for i, name in enumerate(names) if name != "_reserved"}


#: per document type: page -> tag -> token, and page -> token -> tag
_TOKENS = {
    PUBLIC_SYNCML: {0: _table(_SYNCML_PAGE0), 1: _table(_METINF_PAGE1)},
    PUBLIC_METINF: {1: _table(_METINF_PAGE1), 0: _table(_METINF_PAGE1)},
    PUBLIC_DEVINF: {0: _table(_DEVINF_PAGE0)},
}
_TAGS = {
    doc: {
        page: {tok: tag for tag, tok in table.items()} for page, table in pages.items()
    }
    for doc, pages in _TOKENS.items()
}

_SWITCH_PAGE, _END, _ENTITY, _STR_I, _LITERAL = 0x00, 0x01, 0x02, 0x03, 0x04
_EXT_I = (0x40, 0x41, 0x42)
_PI, _LITERAL_C = 0x43, 0x44
_EXT_T = (0x80, 0x81, 0x82)
_STR_T, _LITERAL_A = 0x83, 0x84
_EXT = (0xC0, 0xC1, 0xC2)
_OPAQUE, _LITERAL_AC = 0xC3, 0xC4
_DEVINF_TYPES = {
    "application/vnd.syncml-devinf+xml": "application/vnd.syncml-devinf+wbxml"
}


def is_wbxml(data: bytes) -> bool:
    """True when ``data`` looks like WBXML rather than XML."""
    return bool(data) and data[0] in (0x01, 0x02, 0x03)


# -- encoding -----------------------------------------------------------------


def encode(root: Node) -> bytes:
    """The WBXML encoding of a SyncML (or DevInf) document."""
    doc = PUBLIC_DEVINF if root.tag == "DevInf" else PUBLIC_SYNCML
    out = bytearray([0x02])
    out += _mb(doc)
    out += bytes([_UTF8, 0x00])  # UTF-8, empty string table
    page = [0]
    _encode_node(root, doc, out, page)
    return bytes(out)


def _mb(value: int) -> bytes:
    """A multi-byte unsigned integer (7 bits per byte, most significant first)."""
    parts = [value & 0x7F]
    value >>= 7
    while value:
        parts.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(parts))


def _encode_node(node: Node, doc: int, out: bytearray, page: list[int]) -> None:
    want = 1 if doc == PUBLIC_SYNCML and node.tag in METINF_TAGS else 0
    token = _TOKENS[doc][want].get(node.tag)
    if token is None:
        raise ValueError(f"no WBXML token for <{node.tag}>")
    if page[0] != want:
        out += bytes([_SWITCH_PAGE, want])
        page[0] = want
    text = node.text
    if text is not None and doc == PUBLIC_SYNCML and node.tag == "Type":
        text = _DEVINF_TYPES.get(text.strip() if isinstance(text, str) else "", text)
    nested = [c for c in node.children if c.tag == "DevInf" and doc == PUBLIC_SYNCML]
    has_content = bool(node.children) or (text is not None and text not in ("", b""))
    out.append(token | (0x40 if has_content else 0))
    if not has_content:
        return
    if text is not None and text not in ("", b""):
        _encode_text(text, out)
    for child in node.children:
        if nested and child is nested[0]:
            blob = encode(child)
            out.append(_OPAQUE)
            out += _mb(len(blob))
            out += blob
            continue
        _encode_node(child, doc, out, page)
    out.append(_END)


def _encode_text(text: str | bytes, out: bytearray) -> None:
    if isinstance(text, str) and "\0" not in text:
        out.append(_STR_I)
        out += text.encode("utf-8")
        out.append(0)
        return
    blob = text.encode("utf-8") if isinstance(text, str) else text
    out.append(_OPAQUE)
    out += _mb(len(blob))
    out += blob


# -- decoding -----------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def byte(self) -> int:
        if self.at >= len(self.data):
            raise Malformed("WBXML ends in the middle of an element")
        value = self.data[self.at]
        self.at += 1
        return value

    def mb(self) -> int:
        value = 0
        for _ in range(5):
            byte = self.byte()
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                return value
        raise Malformed("WBXML integer longer than 32 bits")

    def take(self, count: int) -> bytes:
        if count < 0 or self.at + count > len(self.data):
            raise Malformed("WBXML opaque data runs past the end")
        blob = self.data[self.at : self.at + count]
        self.at += count
        return blob

    def cstring(self) -> bytes:
        end = self.data.find(b"\0", self.at)
        if end < 0:
            raise Malformed("WBXML string without its terminating NUL")
        blob = self.data[self.at : end]
        self.at = end + 1
        return blob


def decode(data: bytes) -> Node:
    """Parse a WBXML SyncML or DevInf document; Malformed when it is not one."""
    try:
        return _decode(data)
    except (IndexError, UnicodeDecodeError, RecursionError) as exc:
        raise Malformed(f"not well-formed WBXML: {exc}") from exc


def _decode(data: bytes) -> Node:
    reader = _Reader(data)
    version = reader.byte()
    if version not in (0x01, 0x02, 0x03):
        raise Malformed(f"unknown WBXML version {version:#x}")
    public = reader.mb()
    public_index = reader.mb() if public == 0 else None
    charset = reader.mb()
    if charset not in (_UTF8, 0):
        raise Malformed(f"WBXML charset {charset} is not UTF-8")
    strings = reader.take(reader.mb())
    if public_index is not None:
        name = _string_at(strings, public_index).decode("utf-8", "replace")
        public = _PUBLIC_NAMES.get(name, 0)
    if public not in _TAGS:
        public = PUBLIC_SYNCML  # unknown id: read it as SyncML, by its tokens
    page = [0]
    while True:
        token = reader.byte()
        if token == _SWITCH_PAGE:
            page[0] = reader.byte()
            continue
        if token == _PI:
            _skip_attributes(reader, strings)
            continue
        return _decode_element(token, reader, public, page, strings, 0)


def _entity(code: int) -> bytes:
    """The character an ENTITY token names, in UTF-8."""
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise Malformed(f"WBXML entity {code:#x} is not a character")
    return chr(code).encode("utf-8")


def _string_at(strings: bytes, index: int) -> bytes:
    if index >= len(strings):
        raise Malformed("WBXML string-table reference past its end")
    end = strings.find(b"\0", index)
    return strings[index : end if end >= 0 else len(strings)]


def _decode_element(
    token: int, reader: _Reader, doc: int, page: list[int], strings: bytes, depth: int
) -> Node:
    if depth > 64:
        raise Malformed("WBXML nested too deeply")
    ident = token & 0x3F
    if ident == _LITERAL:
        tag = _string_at(strings, reader.mb()).decode("utf-8", "replace")
    else:
        tag = _TAGS[doc].get(page[0], {}).get(ident)
        if tag is None:
            raise Malformed(f"unknown WBXML tag {ident:#x} on code page {page[0]}")
    if token & 0x80:
        _skip_attributes(reader, strings)
    if not token & 0x40:
        return Node(tag)
    children: list[Node] = []
    texts: list[bytes] = []
    opaque = False
    while True:
        item = reader.byte()
        if item == _END:
            break
        if item == _SWITCH_PAGE:
            page[0] = reader.byte()
        elif item == _STR_I:
            texts.append(reader.cstring())
        elif item == _STR_T:
            texts.append(_string_at(strings, reader.mb()))
        elif item == _OPAQUE:
            texts.append(reader.take(reader.mb()))
            opaque = True
        elif item == _ENTITY:
            texts.append(_entity(reader.mb()))
        elif item in _EXT_I:
            reader.cstring()
        elif item in _EXT_T:
            reader.mb()
        elif item in _EXT:
            pass
        elif item == _PI:
            _skip_attributes(reader, strings)
        else:
            children.append(
                _decode_element(item, reader, doc, page, strings, depth + 1)
            )
    text: str | bytes | None = None
    if texts:
        blob = b"".join(texts)
        text = blob if opaque else blob.decode("utf-8")
        if children and not blob.strip():
            text = None
    return Node(tag, tuple(children), text)


def _skip_attributes(reader: _Reader, strings: bytes) -> None:
    """Skip an attribute list (SyncML has none) up to its END."""
    while True:
        item = reader.byte()
        if item == _END:
            return
        if item == _STR_I or item in _EXT_I:
            reader.cstring()
        elif item in (_STR_T, _LITERAL) or item in _EXT_T:
            reader.mb()
        elif item == _OPAQUE:
            reader.take(reader.mb())
        elif item == _ENTITY:
            reader.mb()
        elif item == _SWITCH_PAGE:
            reader.byte()
