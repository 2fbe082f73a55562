"""SyncML messages as values: a header, commands, and whether it is final.

``parse(data)`` reads XML or WBXML into a :class:`Message`; ``render(msg,
wbxml=...)`` writes one. Commands are small immutable values; the state
machines (``client``, ``server``) only ever see these. A command accord
does not implement (Atomic, Sequence, Copy, Exec, Search, Move) is read as
:class:`Other` and answered 406.

Item data is ``bytes`` (base64 undone when the item says ``b64``), or a
:class:`~accord.syncml.tree.Node` for structured data (a DevInf, an
anchor in a Status).
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import NamedTuple

from accord.syncml import wbxml
from accord.syncml.tree import Malformed, Node, from_xml, leaf, to_xml

__all__ = [
    "Alert",
    "Chal",
    "Change",
    "Command",
    "Cred",
    "Exchange",
    "Header",
    "Item",
    "Map",
    "Message",
    "Meta",
    "Other",
    "Status",
    "Sync",
    "new_anchor",
    "parse",
    "render",
    "text_safe",
]

CHANGES = ("Add", "Replace", "Delete")
EXCHANGES = ("Put", "Get", "Results")
DEVINF_TYPE = "application/vnd.syncml-devinf+xml"


class Meta(NamedTuple):
    type: str | None = None
    format: str | None = None
    size: int | None = None
    max_msg_size: int | None = None
    max_obj_size: int | None = None
    last: str | None = None  # Anchor/Last
    next: str | None = None  # Anchor/Next
    next_nonce: str | None = None
    version: str | None = None


class Item(NamedTuple):
    target: str | None = None
    source: str | None = None
    meta: Meta | None = None
    data: bytes | Node | None = None
    more_data: bool = False
    target_name: str | None = None


class Cred(NamedTuple):
    type: str  # syncml:auth-basic, syncml:auth-md5
    format: str | None
    data: str


class Chal(NamedTuple):
    type: str
    format: str | None = "b64"
    next_nonce: str | None = None


class Header(NamedTuple):
    session_id: str
    msg_id: int
    target: str
    source: str
    source_name: str | None = None  # LocName: the user name, with MD5
    resp_uri: str | None = None
    cred: Cred | None = None
    max_msg_size: int | None = None
    max_obj_size: int | None = None
    no_resp: bool = False
    target_name: str | None = None


class Status(NamedTuple):
    cmd_id: int
    msg_ref: int
    cmd_ref: int
    cmd: str
    code: int
    target_ref: str | None = None
    source_ref: str | None = None
    chal: Chal | None = None
    items: tuple[Item, ...] = ()


class Alert(NamedTuple):
    cmd_id: int
    code: int
    items: tuple[Item, ...] = ()
    no_resp: bool = False


class Change(NamedTuple):
    """Add, Replace or Delete (inside a Sync)."""

    name: str
    cmd_id: int
    items: tuple[Item, ...]
    meta: Meta | None = None
    no_resp: bool = False


class Sync(NamedTuple):
    cmd_id: int
    target: str | None
    source: str | None
    changes: tuple[Change | Other, ...] = ()
    number_of_changes: int | None = None
    meta: Meta | None = None
    no_resp: bool = False


class Exchange(NamedTuple):
    """Put, Get or Results (device information)."""

    name: str
    cmd_id: int
    items: tuple[Item, ...]
    meta: Meta | None = None
    msg_ref: int | None = None
    cmd_ref: int | None = None
    no_resp: bool = False


class Map(NamedTuple):
    cmd_id: int
    target: str | None
    source: str | None
    items: tuple[tuple[str, str], ...]  # (target: server id, source: client id)


class Other(NamedTuple):
    """A command accord does not carry out (answered 406)."""

    name: str
    cmd_id: int
    no_resp: bool = False


Command = Status | Alert | Sync | Change | Exchange | Map | Other


class Message(NamedTuple):
    header: Header
    commands: tuple[Command, ...]
    final: bool


def new_anchor() -> str:
    """A sync anchor: the time now, UTC, to the second."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


# -- rendering ------------------------------------------------------------------


def render(message: Message, *, wbxml_encoding: bool = False) -> bytes:
    root = to_node(message)
    return wbxml.encode(root) if wbxml_encoding else to_xml(root)


def to_node(message: Message) -> Node:
    body = [_command_node(c) for c in message.commands]
    if message.final:
        body.append(Node("Final"))
    return Node("SyncML", (_header_node(message.header), Node("SyncBody", tuple(body))))


def _n(tag: str, *children: Node | None, text: str | bytes | None = None) -> Node:
    return Node(tag, tuple(c for c in children if c is not None), text)


def _loc(tag: str, uri: str | None, name: str | None = None) -> Node | None:
    if uri is None:
        return None
    return _n(tag, leaf("LocURI", uri), leaf("LocName", name))


def _header_node(h: Header) -> Node:
    return _n(
        "SyncHdr",
        leaf("VerDTD", "1.2"),
        leaf("VerProto", "SyncML/1.2"),
        leaf("SessionID", h.session_id),
        leaf("MsgID", h.msg_id),
        _loc("Target", h.target, h.target_name),
        _loc("Source", h.source, h.source_name),
        leaf("RespURI", h.resp_uri),
        Node("NoResp") if h.no_resp else None,
        _cred_node(h.cred) if h.cred else None,
        _meta_node(Meta(max_msg_size=h.max_msg_size, max_obj_size=h.max_obj_size)),
    )


def _cred_node(cred: Cred) -> Node:
    meta = _meta_node(Meta(type=cred.type, format=cred.format))
    return _n("Cred", meta, leaf("Data", cred.data))


def _meta_node(meta: Meta | None) -> Node | None:
    if meta is None:
        return None
    anchor = None
    if meta.last is not None or meta.next is not None:
        anchor = _n("Anchor", leaf("Last", meta.last), leaf("Next", meta.next))
    children = (
        leaf("Format", meta.format),
        leaf("Type", meta.type),
        leaf("Version", meta.version),
        anchor,
        leaf("Size", meta.size),
        leaf("NextNonce", meta.next_nonce),
        leaf("MaxMsgSize", meta.max_msg_size),
        leaf("MaxObjSize", meta.max_obj_size),
    )
    if all(c is None for c in children):
        return None
    return _n("Meta", *children)


def _data_node(data: bytes | Node | None, meta: Meta | None) -> Node | None:
    if data is None:
        return None
    if isinstance(data, Node):
        return _n("Data", data)
    if meta is not None and meta.format == "b64":
        return leaf("Data", base64.b64encode(data).decode("ascii"))
    return leaf("Data", data)


def _item_node(item: Item) -> Node:
    meta = item.meta
    binary = isinstance(item.data, bytes) and not text_safe(item.data)
    if binary and (meta is None or meta.format != "b64"):
        # bytes that are not text travel as base64 in either encoding
        meta = (meta or Meta())._replace(format="b64")
    return _n(
        "Item",
        _loc("Target", item.target, item.target_name),
        _loc("Source", item.source),
        _meta_node(meta),
        _data_node(item.data, meta),
        Node("MoreData") if item.more_data else None,
    )


def text_safe(data: bytes) -> bool:
    """True when ``data`` is UTF-8 text an XML document can carry."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(ord(c) < 0x20 and c not in "\t\n\r" for c in text)


def _command_node(cmd: Command) -> Node:
    render_one = _RENDER.get(type(cmd))
    if render_one is None:
        raise ValueError(f"cannot render {type(cmd).__name__}")
    return render_one(cmd)


def _status_node(s: Status) -> Node:
    chal = None
    if s.chal is not None:
        meta = Meta(
            type=s.chal.type, format=s.chal.format, next_nonce=s.chal.next_nonce
        )
        chal = _n("Chal", _meta_node(meta))
    return _n(
        "Status",
        leaf("CmdID", s.cmd_id),
        leaf("MsgRef", s.msg_ref),
        leaf("CmdRef", s.cmd_ref),
        leaf("Cmd", s.cmd),
        leaf("TargetRef", s.target_ref),
        leaf("SourceRef", s.source_ref),
        chal,
        leaf("Data", s.code),
        *(_item_node(i) for i in s.items),
    )


def _alert_node(a: Alert) -> Node:
    return _n(
        "Alert",
        leaf("CmdID", a.cmd_id),
        Node("NoResp") if a.no_resp else None,
        leaf("Data", a.code),
        *(_item_node(i) for i in a.items),
    )


def _change_node(c: Change) -> Node:
    return _n(
        c.name,
        leaf("CmdID", c.cmd_id),
        Node("NoResp") if c.no_resp else None,
        _meta_node(c.meta),
        *(_item_node(i) for i in c.items),
    )


def _sync_node(s: Sync) -> Node:
    return _n(
        "Sync",
        leaf("CmdID", s.cmd_id),
        Node("NoResp") if s.no_resp else None,
        _loc("Target", s.target),
        _loc("Source", s.source),
        _meta_node(s.meta),
        leaf("NumberOfChanges", s.number_of_changes),
        *(_command_node(c) for c in s.changes),
    )


def _exchange_node(x: Exchange) -> Node:
    return _n(
        x.name,
        leaf("CmdID", x.cmd_id),
        leaf("MsgRef", x.msg_ref),
        leaf("CmdRef", x.cmd_ref),
        _meta_node(x.meta),
        *(_item_node(i) for i in x.items),
    )


def _map_node(m: Map) -> Node:
    items = (
        _n("MapItem", _loc("Target", target), _loc("Source", source))
        for target, source in m.items
    )
    return _n(
        "Map",
        leaf("CmdID", m.cmd_id),
        _loc("Target", m.target),
        _loc("Source", m.source),
        *items,
    )


def _other_node(o: Other) -> Node:
    return _n(o.name, leaf("CmdID", o.cmd_id))


_RENDER = {
    Status: _status_node,
    Alert: _alert_node,
    Change: _change_node,
    Sync: _sync_node,
    Exchange: _exchange_node,
    Map: _map_node,
    Other: _other_node,
}


# -- parsing ----------------------------------------------------------------------


def parse(data: bytes) -> Message:
    """A message from its XML or WBXML bytes; Malformed when it is not one."""
    root = wbxml.decode(data) if wbxml.is_wbxml(data) else from_xml(data)
    return from_node(root)


def from_node(root: Node) -> Message:
    if root.tag != "SyncML":
        raise Malformed(f"the document is <{root.tag}>, not <SyncML>")
    hdr, body = root.find("SyncHdr"), root.find("SyncBody")
    if hdr is None or body is None:
        raise Malformed("a SyncML message needs SyncHdr and SyncBody")
    commands = tuple(_command(n) for n in body.children if n.tag != "Final")
    return Message(_header(hdr), commands, body.has("Final"))


def _int(node: Node, *tags: str, required: bool = True) -> int | None:
    text = node.value(*tags)
    if text is None or text == "":
        if required:
            raise Malformed(f"<{node.tag}> lacks {'/'.join(tags)}")
        return None
    try:
        return int(text)
    except ValueError:
        raise Malformed(
            f"<{node.tag}>/{'/'.join(tags)} is not a number: {text!r}"
        ) from None


def _req_int(node: Node, *tags: str) -> int:
    value = _int(node, *tags)
    assert value is not None
    return value


def _meta(node: Node | None) -> Meta | None:
    if node is None:
        return None
    # MetInf may sit directly in Meta or (older peers) inside a MetInf element
    inner = node.find("MetInf") or node
    return Meta(
        type=inner.value("Type"),
        format=inner.value("Format"),
        size=_int(inner, "Size", required=False),
        max_msg_size=_int(inner, "MaxMsgSize", required=False),
        max_obj_size=_int(inner, "MaxObjSize", required=False),
        last=inner.value("Anchor", "Last"),
        next=inner.value("Anchor", "Next"),
        next_nonce=inner.value("NextNonce"),
        version=inner.value("Version"),
    )


def _header(node: Node) -> Header:
    meta = _meta(node.find("Meta")) or Meta()
    cred = node.find("Cred")
    return Header(
        session_id=node.value("SessionID") or "",
        msg_id=_req_int(node, "MsgID"),
        target=node.value("Target", "LocURI") or "",
        source=node.value("Source", "LocURI") or "",
        source_name=node.value("Source", "LocName"),
        resp_uri=node.value("RespURI"),
        cred=_cred(cred) if cred is not None else None,
        max_msg_size=meta.max_msg_size,
        max_obj_size=meta.max_obj_size,
        no_resp=node.has("NoResp"),
        target_name=node.value("Target", "LocName"),
    )


def _cred(node: Node) -> Cred:
    meta = _meta(node.find("Meta")) or Meta()
    return Cred(meta.type or "syncml:auth-basic", meta.format, node.value("Data") or "")


def _item(node: Node, meta_type: str | None = None) -> Item:
    meta = _meta(node.find("Meta"))
    data_node = node.find("Data")
    data: bytes | Node | None = None
    if data_node is not None:
        data = _data(data_node, meta, meta_type)
    return Item(
        target=node.value("Target", "LocURI"),
        source=node.value("Source", "LocURI"),
        meta=meta,
        data=data,
        more_data=node.has("MoreData"),
        target_name=node.value("Target", "LocName"),
    )


def _data(node: Node, meta: Meta | None, outer_type: str | None) -> bytes | Node:
    if node.children:
        return node.children[0]
    text = node.text if node.text is not None else b""
    kind = (meta.type if meta and meta.type else None) or outer_type or ""
    if isinstance(text, bytes) and "devinf" in kind:
        return wbxml.decode(text) if wbxml.is_wbxml(text) else from_xml(text)
    blob = text.encode("utf-8") if isinstance(text, str) else text
    if meta is not None and meta.format == "b64":
        try:
            return base64.b64decode(blob, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise Malformed("item data marked b64 is not base64") from exc
    return blob


def _no_resp(node: Node) -> bool:
    return node.has("NoResp")


def _command(node: Node) -> Command:
    parse_one = _PARSE.get(node.tag)
    if parse_one is None:
        return Other(node.tag, _int(node, "CmdID", required=False) or 0, _no_resp(node))
    return parse_one(node)


def _parse_status(node: Node) -> Status:
    chal = node.find("Chal")
    chal_value = None
    if chal is not None:
        meta = _meta(chal.find("Meta")) or Meta()
        chal_value = Chal(
            meta.type or "syncml:auth-basic", meta.format, meta.next_nonce
        )
    return Status(
        cmd_id=_req_int(node, "CmdID"),
        msg_ref=_int(node, "MsgRef", required=False) or 0,
        cmd_ref=_int(node, "CmdRef", required=False) or 0,
        cmd=node.value("Cmd") or "",
        code=_req_int(node, "Data"),
        target_ref=node.value("TargetRef"),
        source_ref=node.value("SourceRef"),
        chal=chal_value,
        items=tuple(_item(i) for i in node.findall("Item")),
    )


def _parse_alert(node: Node) -> Alert:
    return Alert(
        cmd_id=_req_int(node, "CmdID"),
        code=_req_int(node, "Data"),
        items=tuple(_item(i) for i in node.findall("Item")),
        no_resp=_no_resp(node),
    )


def _parse_change(node: Node) -> Change:
    meta = _meta(node.find("Meta"))
    kind = meta.type if meta else None
    return Change(
        name=node.tag,
        cmd_id=_req_int(node, "CmdID"),
        items=tuple(_item(i, kind) for i in node.findall("Item")),
        meta=meta,
        no_resp=_no_resp(node),
    )


def _parse_sync(node: Node) -> Sync:
    inner = tuple(
        _command(c)
        for c in node.children
        if c.tag in (*CHANGES, "Atomic", "Sequence", "Copy", "Move")
    )
    return Sync(
        cmd_id=_req_int(node, "CmdID"),
        target=node.value("Target", "LocURI"),
        source=node.value("Source", "LocURI"),
        changes=inner,  # type: ignore[arg-type]
        number_of_changes=_int(node, "NumberOfChanges", required=False),
        meta=_meta(node.find("Meta")),
        no_resp=_no_resp(node),
    )


def _parse_exchange(node: Node) -> Exchange:
    meta = _meta(node.find("Meta"))
    kind = meta.type if meta else None
    return Exchange(
        name=node.tag,
        cmd_id=_req_int(node, "CmdID"),
        items=tuple(_item(i, kind) for i in node.findall("Item")),
        meta=meta,
        msg_ref=_int(node, "MsgRef", required=False),
        cmd_ref=_int(node, "CmdRef", required=False),
        no_resp=_no_resp(node),
    )


def _parse_map(node: Node) -> Map:
    items = tuple(
        (i.value("Target", "LocURI") or "", i.value("Source", "LocURI") or "")
        for i in node.findall("MapItem")
    )
    return Map(
        cmd_id=_req_int(node, "CmdID"),
        target=node.value("Target", "LocURI"),
        source=node.value("Source", "LocURI"),
        items=items,
    )


_PARSE = {
    "Status": _parse_status,
    "Alert": _parse_alert,
    "Sync": _parse_sync,
    "Map": _parse_map,
    **{name: _parse_change for name in CHANGES},
    **{name: _parse_exchange for name in EXCHANGES},
}
