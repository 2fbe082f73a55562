"""What a plantdb place keeps in accord's state folder between runs: the
last listing of each scan, the JSON files accord sent that the server holds
in its own words, new scans staged until they are sent, and accord's own
small files (its run lock, history), which do not go to the server
(:mod:`accord.replicas.plantdb_rest`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["OwnFiles", "Record"]


class Record:
    """What this place knows between runs, in accord's state folder:
    the last listing of each scan, the JSON files accord wrote that the
    server holds in its own words, staged new scans, and accord's own
    small files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.staged = folder / "staged"
        self.own = folder / "own"
        for path in (self.staged, self.own):
            path.mkdir(parents=True, exist_ok=True)
        self._file = folder / "listing.json"
        try:
            found = json.loads(self._file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            found = {}
        #: scan -> {"sem": files.json meaning, "items": {key: [size, digest, sem]}}
        self.scans: dict[str, dict[str, Any]] = found.get("scans", {})
        #: key -> [size, digest, sem]: a JSON file accord wrote, as it sent it
        self.agreed: dict[str, list[Any]] = found.get("agreed", {})

    def save(self) -> None:
        data = json.dumps({"scans": self.scans, "agreed": self.agreed})
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".listing.")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self._file)

    def staged_scans(self) -> list[str]:
        return sorted(p.name for p in self.staged.iterdir() if p.is_dir())

    def keep_sent(self, key: str, body: bytes) -> None:
        """The bytes of a JSON file accord sent, which the server holds in
        its own words: reads see these while the server says the same."""
        path = self.folder / "sent" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())

    def sent(self, key: str) -> bytes | None:
        try:
            return (self.folder / "sent" / key).read_bytes()
        except OSError:
            return None

    def ready(self) -> set[str]:
        """Staged scans a finished run let go (an interrupted run's are
        not: the next run completes them before they are sent)."""
        try:
            found = json.loads((self.folder / "ready.json").read_text("utf-8"))
        except (OSError, ValueError):
            return set()
        return {str(name) for name in found} & set(self.staged_scans())

    def set_ready(self, scans: set[str]) -> None:
        path = self.folder / "ready.json"
        path.write_text(json.dumps(sorted(scans)), encoding="utf-8")


class OwnFiles:
    """accord's own small files of
    :class:`~accord.replicas.plantdb_rest.PlantdbReplica`, in its record's
    ``own/`` folder."""

    # -- accord's own small files -------------------------------------------
    def _own(self, name: str) -> Path:
        return self.record.own / name.replace("/", "%2F")

    def meta_create(self, name: str, data: bytes) -> bool:
        try:
            fd = os.open(self._own(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return True

    def meta_read(self, name: str) -> bytes | None:
        try:
            return self._own(name).read_bytes()
        except FileNotFoundError:
            return None

    def meta_delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._own(name).unlink()

    def meta_list(self, prefix: str) -> list[str]:
        mangled = prefix.replace("/", "%2F")
        return sorted(
            p.name.replace("%2F", "/")
            for p in self.record.own.iterdir()
            if p.name.startswith(mangled)
        )
