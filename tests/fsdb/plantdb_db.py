"""Build, open and compare plantdb FSDB databases with plantdb's own API."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

MARKER = "romidb"


def open_db(root: Path) -> Any:
    """plantdb's FSDB over ``root``, connected, logged in as admin."""
    from plantdb.commons.fsdb.core import FSDB

    db = FSDB(str(root), log_level="ERROR")
    db.connect()
    db.login("admin", "admin")
    return db


def new_db(root: Path) -> Path:
    """An empty database (the marker; plantdb adds its bookkeeping)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).touch()
    db = open_db(root)
    db.disconnect()
    return root


def build(
    root: Path,
    scans: int = 3,
    filesets: tuple[str, ...] = ("images", "masks"),
    files: int = 4,
    size: int = 2048,
    seed: int = 1,
) -> Path:
    """A database made through plantdb's API: scans, filesets, files, metadata."""
    new_db(root)
    db = open_db(root)
    try:
        for s in range(scans):
            scan = db.create_scan(
                f"scan_{s:03d}", metadata={"project": "accord", "n": s}
            )
            for fs_id in filesets:
                fileset = scan.create_fileset(fs_id)
                fileset.set_metadata({"kind": fs_id, "scan": s})
                for f in range(files):
                    file = fileset.create_file(f"{fs_id}_{f:03d}")
                    data = (bytes([seed + s + f]) * 16 + os.urandom(16)) * (size // 32)
                    file.write_raw(data, ext="png")
                    file.set_metadata({"index": f, "angle": f * 30})
    finally:
        db.disconnect()
    return root


def contents(root: Path) -> dict[str, Any]:
    """Everything plantdb shows of a database: scans, their metadata, their
    filesets and files with metadata and bytes."""
    db = open_db(root)
    try:
        found: dict[str, Any] = {}
        for scan in db.get_scans():
            filesets = {}
            for fileset in scan.get_filesets():
                files = {}
                for file in fileset.get_files():
                    files[file.id] = (
                        file.get_metadata(),
                        Path(file.path()).read_bytes(),
                    )
                filesets[fileset.id] = (fileset.get_metadata(), files)
            meta = {k: v for k, v in scan.get_metadata().items()}
            found[scan.id] = (meta, filesets)
        return found
    finally:
        db.disconnect()


logging.getLogger("plantdb").setLevel(logging.ERROR)
