"""Shared history: who changed what in a place, kept in the place itself.

After a run, every place that received changes gets one small JSON record,
``.accord/history/<run>.json``: the run, who ran it (``ACCORD_USER`` or
user@host), the command, when, and the changes made *to that place* (at
most ``MAX_CHANGES`` listed; the counts are always complete). A team that
shares one S3 prefix or server folder thus shares its history: ``accord
log`` shows runs made from other machines next to one's own.

The records are written with ``meta_create`` (create-only), so two runs
never overwrite each other's; a place that cannot hold them is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from accord.errors import AccordError, Unsupported
from accord.keys import unsafe_reason
from accord.model import Side
from accord.replica import Replica

__all__ = ["MAX_CHANGES", "PREFIX", "read", "record", "write"]

PREFIX = "history/"
MAX_CHANGES = 1000


def record(
    *,
    run: str,
    who: str,
    command: str,
    started: float,
    finished: float,
    status: str,
    side: Side,
    other: str,
    changes: Iterable[tuple[str, str, str | None]],
) -> dict[str, Any]:
    """The history record of one run for the place on ``side``. Pure.

    ``changes`` are (op, key, new_key) of the actions done on that place.
    """
    listed: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for op, key, new_key in changes:
        counts[op] = counts.get(op, 0) + 1
        if len(listed) < MAX_CHANGES:
            item: dict[str, Any] = {"op": op, "key": key}
            if new_key:
                item["new_key"] = new_key
            listed.append(item)
    return {
        "run": run,
        "who": who,
        "command": command,
        "started": started,
        "finished": finished,
        "status": status,
        "side": side.value,
        "from": other,
        "counts": counts,
        "changes": listed,
    }


def write(replica: Replica, data: dict[str, Any]) -> str | None:
    """Store ``data`` in ``replica``; a notice when that was not possible."""
    name = f"{PREFIX}{data['run']}.json"
    try:
        replica.meta_create(name, json.dumps(data, sort_keys=True).encode())
    except Unsupported:
        return None
    except AccordError as exc:
        return f"could not record this run's history in {replica.url}: {exc.message}"
    return None


def read(replica: Replica) -> list[dict[str, Any]]:
    """Every history record a place holds, oldest first; unreadable ones
    are left out (a record is only ever written whole)."""
    try:
        names = replica.meta_list(PREFIX)
    except Unsupported:
        return []
    found = []
    for name in names:
        if unsafe_reason(name) is not None:  # a name made up by someone else
            continue
        raw = replica.meta_read(name)
        if raw is None:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if isinstance(data, dict) and "run" in data:
            found.append(data)
    return sorted(found, key=lambda item: (item.get("started", 0), item["run"]))
