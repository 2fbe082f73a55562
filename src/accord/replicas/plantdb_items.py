"""plantdb's files as accord sees them: each item of a scan as ``[size,
digest, meaning]`` by key, where a JSON file's meaning is what it says
apart from what plantdb writes itself, and the entries a scan's items make
(:mod:`accord.replicas.plantdb_rest`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from accord.model import DIR, FILE, Entry, parent_of
from accord.replica import DIGEST

__all__ = ["MANAGED", "fileset_names", "meaning", "sha", "staged_items", "tree"]

#: metadata keys plantdb writes itself and its API cannot set
MANAGED = frozenset({"created", "created_by", "last_modified", "owner"})


def sha(data: bytes) -> str:
    return f"{DIGEST}:{hashlib.sha256(data).hexdigest()}"


def meaning(key: str, data: bytes) -> str | None:
    """What a plantdb JSON file says, apart from what plantdb writes itself
    (``files.json``: its filesets and files; metadata: its keys but the
    server-managed ones), as a hash; None for other files or bad JSON."""
    name = key.split("/", 1)[1] if "/" in key else key
    if not key.endswith(".json") or not (
        name == "files.json" or name.startswith("metadata/")
    ):
        return None
    try:
        found = json.loads(data)
    except ValueError:
        return None
    if name == "files.json":
        found = fileset_names(found)
    elif isinstance(found, dict):
        found = {k: v for k, v in found.items() if k not in MANAGED}
    canon = json.dumps(found, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def fileset_names(found: Any) -> dict[str, list[str]]:
    """``files.json`` as {fileset: sorted file names}."""
    sets: dict[str, list[str]] = {}
    for fileset in found.get("filesets", []) if isinstance(found, dict) else []:
        files = [str(f.get("file", "")) for f in fileset.get("files", [])]
        sets[str(fileset.get("id", ""))] = sorted(files)
    return sets


def staged_items(folder: Path, scan: str) -> dict[str, list[Any]]:
    items: dict[str, list[Any]] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            key = f"{scan}/{path.relative_to(folder).as_posix()}"
            data = path.read_bytes()
            items[key] = [len(data), sha(data), meaning(key, data)]
        elif path.is_dir() and not any(path.iterdir()):
            items[f"{scan}/{path.relative_to(folder).as_posix()}/"] = [0, None, None]
    return items


def tree(scan: str, items: dict[str, list[Any]]) -> list[Entry]:
    """The scan's folder, its files and every folder on their paths."""
    dirs = {scan}
    files = []
    for key, (size, digest, _sem) in items.items():
        if key.endswith("/"):
            dirs.add(key[:-1])
            continue
        files.append(Entry(key, FILE, size, 0, 0, digest or "", digest))
        parent = parent_of(key)
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = parent_of(parent)
    return [Entry(d, DIR) for d in sorted(dirs)] + sorted(files)
