"""plantdb's FSDB layout: what is data, what is its bookkeeping (pure).

An FSDB is a folder holding the marker file ``romidb``. Its scans are the
folders at the root whose names do not start with a dot (a timelapse folder,
with ``timelapse.json``, holds scans one level down; ``configs/`` holds
shared configuration). Everything else at the root is plantdb's own:
``users.json`` and ``groups.json`` (the user registry, password hashes
included) and their ``.tmp`` files, ``.locks/`` (its lock files and log),
and each scan's ``webcache/`` (thumbnails the server makes). accord copies,
deletes and trashes none of them, on either side.

A scan accord creates is built under :func:`staging_name` and renamed into
place once whole, so a reader never finds a scan without ``metadata/`` or
``files.json`` (plantdb then refuses the whole database).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

__all__ = [
    "LOCKS",
    "MARKER",
    "STAGING",
    "fileset_lock",
    "hidden",
    "holder_note",
    "is_whole",
    "real_name",
    "scan_lock",
    "scan_of",
    "selection_patterns",
    "staging_name",
]

MARKER = "romidb"
LOCKS = ".locks"
#: the prefix of a scan being built (a dot name: plantdb skips it)
STAGING = ".accord-new-"
#: plantdb 0.14 and older: a lock file at the root (DBBusyError when present)
ROOT_LOCK = "lock"


def hidden(key: str, is_dir: bool) -> bool:
    """True for what is not scan data (a listing drops it; pure, cheap: a
    few string tests per name, where the same as ignore rules costs a dozen
    regular expressions)."""
    cut = key.find("/")
    if cut < 0:  # at the root: folders only, not hidden ones but ours
        return not is_dir or (key[0] == "." and not key.startswith(STAGING))
    if key[0] == "." and not key.startswith(STAGING):
        return True
    rest = key[cut + 1 :]
    if rest == "webcache" or rest.startswith("webcache/"):
        return True
    cut = rest.find("/")  # a scan inside a timelapse
    return cut > 0 and (
        rest[cut + 1 :] == "webcache" or rest[cut + 1 :].startswith("webcache/")
    )


def _glob_escape(name: str) -> str:
    return re.sub(r"([\\*?\[\]!#])", r"\\\1", name)


def selection_patterns(scans: Iterable[str]) -> list[str]:
    """Rules that keep only the named scans (after :func:`ignore_patterns`)."""
    rules = ["/*/"]
    for name in sorted(set(scans)):
        escaped = _glob_escape(name)
        rules += [f"!/{escaped}/", f"!/{_glob_escape(STAGING)}{escaped}/"]
    return rules


def scan_of(key: str) -> str:
    """The scan (top folder) a key belongs to."""
    return key.split("/", 1)[0]


def staging_name(scan: str) -> str:
    return STAGING + scan


def real_name(top: str) -> str | None:
    """The scan a staging folder builds, or None for any other name."""
    if top.startswith(STAGING) and len(top) > len(STAGING):
        return top[len(STAGING) :]
    return None


def scan_lock(scan: str) -> tuple[str, str]:
    """plantdb's scan-level lock file and its holder note (0.15 and later)."""
    return f"{LOCKS}/{scan}.lock", f"{LOCKS}/{scan}.info"


def fileset_lock(scan: str, fileset: str) -> tuple[str, str]:
    """plantdb's fileset-level lock file and its holder note."""
    return f"{LOCKS}/{scan}_{fileset}.lock", f"{LOCKS}/{scan}_{fileset}.info"


def holder_note(
    resource: str, level: str, *, shared: bool, user: str, now: float, pid: int
) -> bytes:
    """The ``.info`` note in plantdb's own format."""
    return json.dumps(
        {
            "resource_id": resource,
            "level": level,
            "lock_type": "shared" if shared else "exclusive",
            "user": user,
            "timestamp": now,
            "pid": pid,
            "thread_id": 0,
        }
    ).encode()


def is_whole(names: set[str]) -> bool:
    """Whether a scan folder holding ``names`` (its direct children) is one
    plantdb opens: ``metadata/`` and ``files.json``, or a timelapse."""
    return "timelapse.json" in names or {"metadata", "files.json"} <= names
