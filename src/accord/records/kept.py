"""A row of a target file, kept whole when a record is deleted from it.

A record's text holds its mapped fields only; the row of a CSV file (or
the object on a line of a JSON lines file) may hold more: columns the
mapping does not name. When a run deletes the row, the trash keeps it as
the file held it (``kept_at``): every column of the CSV row by name, or
the line itself, and the keys of the rows before and after it, so that
``accord trash restore`` puts it back whole, where it was (``placed``):
after the row that came before it, else before the one that came after
it, else last. Pure functions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple, TypeVar

__all__ = [
    "Kept",
    "kept_at",
    "kept_whole",
    "placed",
    "positions",
    "read_kept",
    "read_whole",
]

T = TypeVar("T")


class Kept(NamedTuple):
    """A row as its file held it: ``row`` (a CSV row's values by column,
    or a JSON lines file's line), and its neighbours' keys then."""

    row: Any
    after: str | None
    before: str | None


def positions(keys: list[str], wanted: Iterable[str]) -> dict[str, int]:
    """Where each wanted key is in ``keys`` (a file's rows in order)."""
    found = set(wanted)
    if not found:
        return {}
    return {key: at for at, key in enumerate(keys) if key in found}


def kept_at(keys: list[str], at: int, row: Any) -> str:
    """What the trash keeps of ``row``, the file's row at ``at`` (its keys
    in ``keys``): the row and its neighbours' keys (``read_kept``)."""
    after = keys[at - 1] if at else None
    before = keys[at + 1] if at + 1 < len(keys) else None
    return json.dumps({"row": row, "after": after, "before": before})


def read_kept(text: str | None) -> Kept | None:
    """The row the trash kept (None: it kept the mapped fields only)."""
    if not text:
        return None
    data = json.loads(text)
    return Kept(data["row"], data.get("after"), data.get("before"))


def kept_whole(kind: str, whole: dict[str, Any]) -> str:
    """What the trash keeps of a record a table or a directory held
    (``kind``: "sql", "ldap"): the whole row or entry, which has no place
    among others to come back to (``read_whole``)."""
    return json.dumps({"row": {kind: whole}, "after": None, "before": None})


def read_whole(text: str | None, kind: str) -> dict[str, Any] | None:
    """The whole row or entry ``kept_whole`` kept for ``kind``; None when the
    trash kept the mapped fields only (or another kind of place's row)."""
    kept = read_kept(text)
    whole = kept.row.get(kind) if kept and isinstance(kept.row, dict) else None
    return whole if isinstance(whole, dict) else None


def placed(
    rows: Iterable[tuple[str, T]], back: Mapping[str, Kept], present: set[str]
) -> Iterator[tuple[str, T]]:
    """``rows`` (key, row) in their order, with the rows put back: one
    whose key is ``present`` in the file in place of that row, another
    after the row its ``after`` names, else before its ``before``, else
    last (``Kept.row`` is already in the file's form)."""
    if not back:
        yield from rows
        return
    following: dict[str, list[tuple[str, T]]] = {}
    preceding: dict[str, list[tuple[str, T]]] = {}
    last: list[tuple[str, T]] = []
    for key, kept in back.items():
        if key in present:
            continue
        if kept.after is not None and kept.after in present:
            following.setdefault(kept.after, []).append((key, kept.row))
        elif kept.before is not None and kept.before in present:
            preceding.setdefault(kept.before, []).append((key, kept.row))
        else:
            last.append((key, kept.row))
    for key, row in rows:
        yield from preceding.get(key, ())
        yield (key, back[key].row) if key in back else (key, row)
        yield from following.get(key, ())
    yield from last
