"""Twins: one item that two places spell in two Unicode normalizations.

Names are kept byte for byte: a key is the name as its place lists it. A
name written on macOS arrives decomposed (NFD: ``e`` + U+0301); the same
name that went through another tool may be composed (NFC). Those two
spellings are one item, so a tree that went through a normalizing file
system does not come back doubled.

:func:`pair` looks only at the listed names that match nothing exactly
(not archived, not listed by the other side). Such a name whose twin (same
folder, same name once both are NFC) is an archived key this side no longer
lists takes that key; else, when the other side also lists exactly one
such name in that folder and neither matches anything, the two are one
item under the left side's spelling. A name is paired only when it is
alone in its group on its side: two spellings held as two items stay two
items (whether the other side can hold both is the clash guard's question).

Each side keeps its own spelling. ``pair`` returns, for each side, the keys
it gave another spelling, mapped to the spelling the place holds;
:class:`~accord.engine.spelled.Spelled` addresses the place by them. So
accord never renames an existing name into another normalization, and a new
item is created in its source's spelling (a new item inside a paired folder
goes into the folder as the target spells it).

Pure; it costs nothing for a tree of ASCII names and one NFC per other name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterable

from accord.engine.detect import Scanned
from accord.keys import nfc
from accord.model import Side

__all__ = ["pair"]

_Group = tuple[str, str]  # (folder, name in NFC)


def pair(
    left: Scanned, right: Scanned, archived: Container[str]
) -> tuple[Scanned, Scanned, dict[Side, dict[str, str]]]:
    """Both listings with each twin under the key it pairs with, and for
    each side the keys so renamed, mapped to their real spelling."""
    scans = {Side.LEFT: left, Side.RIGHT: right}
    odd = {
        side: [
            e.key for e in scan.fresh if not e.key.isascii() and e.key not in archived
        ]
        for side, scan in scans.items()
    }
    if not odd[Side.LEFT] and not odd[Side.RIGHT]:
        return left, right, {}
    lost = {
        side: _groups(k for k in scan.unseen if not k.isascii())
        for side, scan in scans.items()
    }
    renamed: dict[Side, dict[str, str]] = {Side.LEFT: {}, Side.RIGHT: {}}
    for depth in sorted({k.count("/") for keys in odd.values() for k in keys}):
        level = {
            side: _canonical(keys, depth, renamed[side]) for side, keys in odd.items()
        }
        _pair_level(level, archived, lost, renamed)
    spelled = {
        side: {canonical: real for real, canonical in names.items()}
        for side, names in renamed.items()
        if names
    }
    return (
        _renamed(left, renamed[Side.LEFT]),
        _renamed(right, renamed[Side.RIGHT]),
        spelled,
    )


def _groups(keys: Iterable[str]) -> dict[_Group, list[str]]:
    found: dict[_Group, list[str]] = defaultdict(list)
    for key in keys:
        found[_group(key)].append(key)
    return found


def _group(key: str) -> _Group:
    folder, _, name = key.rpartition("/")
    return folder, nfc(name)


def _canonical(keys: list[str], depth: int, renamed: dict[str, str]) -> dict[str, str]:
    """The keys of one depth under their folder's key (a folder paired
    above them gives its key to everything in it): key -> real name."""
    found = {}
    for real in keys:
        if real.count("/") != depth:
            continue
        folder, sep, name = real.rpartition("/")
        key = renamed.get(folder, folder) + sep + name if folder else real
        if key != real:
            renamed[real] = key
        found[key] = real
    return found


def _pair_level(
    level: dict[Side, dict[str, str]],
    archived: Container[str],
    lost: dict[Side, dict[_Group, list[str]]],
    renamed: dict[Side, dict[str, str]],
) -> None:
    """Pair the names of one depth that match nothing exactly."""
    orphans = {
        side: _groups(
            key for key in keys if key not in archived and key not in level[side.other]
        )
        for side, keys in level.items()
    }
    for side, groups in orphans.items():  # a twin of an archived key
        for group, keys in list(groups.items()):
            gone = lost[side].get(group, [])
            if len(keys) == 1 and len(gone) == 1:
                renamed[side][level[side][keys[0]]] = gone.pop()
                del groups[group]
    mine, theirs = orphans[Side.LEFT], orphans[Side.RIGHT]
    for group, keys in mine.items():  # a twin on the other side
        other = theirs.get(group, [])
        if len(keys) == 1 and len(other) == 1:
            renamed[Side.RIGHT][level[Side.RIGHT][other[0]]] = keys[0]


def _renamed(scan: Scanned, renamed: dict[str, str]) -> Scanned:
    if not renamed:
        return scan
    fresh = [
        entry._replace(key=renamed[entry.key]) if entry.key in renamed else entry
        for entry in scan.fresh
    ]
    listed = set(renamed.values())
    unseen = [key for key in scan.unseen if key not in listed]
    return scan._replace(fresh=fresh, unseen=unseen)
