"""Device information (DevInf 1.2): what a peer is and what its stores take.

Sent with ``Put ./devinf12`` and asked for with ``Get ./devinf12`` (answered
by ``Results``). accord reads from a peer's DevInf the content types each
store takes (to choose SIF notes or plain text) and its size limits.
"""

from __future__ import annotations

from typing import NamedTuple

from accord.syncml.tree import Node, leaf

__all__ = ["LOC", "DataStore", "DevInf", "from_node", "to_node"]

LOC = "./devinf12"


class DataStore(NamedTuple):
    source_ref: str
    display_name: str | None = None
    max_guid_size: int | None = None
    rx_pref: tuple[str, str] = ("text/plain", "1.0")
    rx: tuple[tuple[str, str], ...] = ()
    tx_pref: tuple[str, str] = ("text/plain", "1.0")
    tx: tuple[tuple[str, str], ...] = ()
    sync_types: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
    max_obj_size: int | None = None

    def accepts(self, content_type: str) -> bool:
        return any(ct == content_type for ct, _ in (self.rx_pref, *self.rx))


class DevInf(NamedTuple):
    dev_id: str
    dev_type: str = "server"
    man: str = "accord"
    mod: str = "accord"
    oem: str = "-"
    fwv: str = "-"
    swv: str = "0.1"
    hwv: str = "-"
    utc: bool = True
    large_objs: bool = True
    number_of_changes: bool = True
    datastores: tuple[DataStore, ...] = ()

    def store(self, ref: str) -> DataStore | None:
        """The store named ``ref`` (``./notes`` and ``notes`` are one)."""
        want = ref.removeprefix("./")
        for store in self.datastores:
            if store.source_ref.removeprefix("./") == want:
                return store
        return None


def _type_node(tag: str, ct: tuple[str, str]) -> Node:
    return Node(tag, (Node("CTType", (), ct[0]), Node("VerCT", (), ct[1])))


def _store_node(store: DataStore) -> Node:
    children = [
        leaf("SourceRef", store.source_ref),
        leaf("DisplayName", store.display_name),
        leaf("MaxGUIDSize", store.max_guid_size),
        _type_node("Rx-Pref", store.rx_pref),
        *(_type_node("Rx", ct) for ct in store.rx),
        _type_node("Tx-Pref", store.tx_pref),
        *(_type_node("Tx", ct) for ct in store.tx),
        Node("SyncCap", tuple(Node("SyncType", (), str(t)) for t in store.sync_types)),
    ]
    return Node("DataStore", tuple(c for c in children if c is not None))


def to_node(info: DevInf) -> Node:
    flags = [
        Node(name)
        for name, on in (
            ("UTC", info.utc),
            ("SupportLargeObjs", info.large_objs),
            ("SupportNumberOfChanges", info.number_of_changes),
        )
        if on
    ]
    children = [
        Node("VerDTD", (), "1.2"),
        Node("Man", (), info.man),
        Node("Mod", (), info.mod),
        Node("OEM", (), info.oem),
        Node("FwV", (), info.fwv),
        Node("SwV", (), info.swv),
        Node("HwV", (), info.hwv),
        Node("DevID", (), info.dev_id),
        Node("DevTyp", (), info.dev_type),
        *flags,
        *(_store_node(s) for s in info.datastores),
    ]
    return Node("DevInf", tuple(children))


def _ct(node: Node) -> tuple[str, str]:
    return (node.value("CTType") or "", node.value("VerCT") or "")


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _store(node: Node) -> DataStore:
    rx_pref = node.find("Rx-Pref")
    tx_pref = node.find("Tx-Pref")
    cap = node.find("SyncCap")
    types = tuple(
        t
        for t in (_int(n.value()) for n in (cap.findall("SyncType") if cap else ()))
        if t
    )
    return DataStore(
        source_ref=node.value("SourceRef") or "",
        display_name=node.value("DisplayName"),
        max_guid_size=_int(node.value("MaxGUIDSize")),
        rx_pref=_ct(rx_pref) if rx_pref else ("", ""),
        rx=tuple(_ct(n) for n in node.findall("Rx")),
        tx_pref=_ct(tx_pref) if tx_pref else ("", ""),
        tx=tuple(_ct(n) for n in node.findall("Tx")),
        sync_types=types,
        max_obj_size=_int(node.value("DSMem", "MaxMem")),
    )


def from_node(node: Node) -> DevInf:
    """The DevInf in ``node`` (a ``DevInf`` element); lenient with missing parts."""
    return DevInf(
        dev_id=node.value("DevID") or "",
        dev_type=node.value("DevTyp") or "",
        man=node.value("Man") or "",
        mod=node.value("Mod") or "",
        oem=node.value("OEM") or "",
        fwv=node.value("FwV") or "",
        swv=node.value("SwV") or "",
        hwv=node.value("HwV") or "",
        utc=node.has("UTC"),
        large_objs=node.has("SupportLargeObjs"),
        number_of_changes=node.has("SupportNumberOfChanges"),
        datastores=tuple(_store(n) for n in node.findall("DataStore")),
    )
