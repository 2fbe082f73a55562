"""plantdb's REST server, writing: a new scan is staged and sent whole as
one archive when the run ends (or by the next run, if the server went
away); a change inside an existing scan goes through the API item by item
(filesets, files, merged metadata); what the API cannot do is refused per
item; the scans changed are reloaded and their ``files.json`` compared
(:mod:`accord.replicas.plantdb_rest`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from accord.errors import (
    AccordError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    ProtocolError,
    TransientError,
    Unreachable,
    Unsupported,
)
from accord.model import DIR, FILE, Entry
from accord.replica import check_digest, check_expected, check_key, read_all
from accord.replicas.plantdb_client import PASSWORD_ENV
from accord.replicas.plantdb_items import MANAGED, meaning, sha, staged_items

__all__ = ["Writing"]

#: what plantdb's file POST takes; only images are stored as raw bytes
_EXTENSIONS = frozenset(
    {"jpg", "jpeg", "png", "tif", "txt", "json", "ply", "yaml", "toml"}
)
_RAW = frozenset({"jpg", "jpeg", "png", "tif"})


class Writing:
    """The writing half of
    :class:`~accord.replicas.plantdb_rest.PlantdbReplica` (which holds the
    client, ``_http``, and the ``record``)."""

    # -- writing ----------------------------------------------------------
    def _writable(self, key: str) -> None:
        if self.capabilities.read_only or not self._http().logged_in:
            raise PermissionDenied(
                "plantdb's guest may not write; nothing was sent",
                where=self.url,
                key=key,
                hint=f"give --user NAME and set {PASSWORD_ENV}",
            )
        if key.startswith("."):
            raise Unsupported(
                "a top-level name starting with a dot is not a plantdb scan "
                "(plantdb's own .locks/ is not data); not sent, it stays pending",
                where=self.url,
                key=key,
                hint="leave it out (--exclude), or use accord's FSDB mode",
            )
        if "/" not in key:
            raise Unsupported(
                "plantdb's REST API holds scans only: a file at the root "
                "of the database is not sent (it stays pending)",
                where=self.url,
                key=key,
                hint="leave root files out (--exclude), or use accord's FSDB mode",
            )

    def _is_new(self, scan: str) -> bool:
        return scan not in self._server_scans

    def write(
        self,
        key: str,
        data: IO[bytes],
        *,
        like: Entry,
        expect: Entry | None,
        trash: str | None = None,
    ) -> Entry:
        check_key(key, self.url)
        self._writable(key)
        scan, _, rest = key.partition("/")
        current = self._entries.get(key)
        check_expected(current, expect, self.url)
        body = read_all(data)
        digest = sha(body)
        check_digest(like, digest, self.url, key)
        entry = Entry(key, FILE, len(body), 0, 0, digest, digest)
        if self._is_new(scan):
            self._stage(key, body)
        elif rest == "files.json":
            self._wanted_files_json[scan] = [len(body), digest, meaning(key, body)]
            self.record.keep_sent(key, body)
            self._touched.add(scan)
        elif rest.startswith("metadata/"):
            self._set_metadata(key, rest, body)
            self.record.agreed[key] = [len(body), digest, meaning(key, body)]
            self.record.keep_sent(key, body)
        else:
            if current is not None:
                raise Unsupported(
                    "plantdb's REST API cannot overwrite a file; the server "
                    "keeps its copy and the change stays pending",
                    where=self.url,
                    key=key,
                )
            self._post_file(scan, rest, key, body)
        self._entries[key] = entry
        return entry

    def _stage(self, key: str, body: bytes) -> None:
        path = self.record.staged / key
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())

    def _post_file(self, scan: str, rest: str, key: str, body: bytes) -> None:
        fileset, _, name = rest.partition("/")
        stem, dot, ext = name.rpartition(".")
        ext = ext.lower()
        if not name or "/" in name or not dot or not stem:
            raise Unsupported(
                "plantdb holds files with an extension, one level inside a "
                "fileset; this one has no place there",
                where=self.url,
                key=key,
            )
        if ext not in _EXTENSIONS:
            raise Unsupported(
                f"plantdb's file upload does not take .{ext} files (it takes "
                f"{', '.join(sorted(_EXTENSIONS))})",
                where=self.url,
                key=key,
            )
        if ext not in _RAW:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                raise Unsupported(
                    f"plantdb's file upload stores .{ext} files as UTF-8 text, "
                    "and this one is not",
                    where=self.url,
                    key=key,
                ) from None
        self._ensure_fileset(scan, fileset)
        self._http().send(
            "POST",
            f"/files/{quote(scan)}/{quote(fileset)}/{quote(stem)}",
            files={"file": (name, body)},
            data={"ext": ext},
        )
        self._touched.add(scan)

    def _ensure_fileset(self, scan: str, fileset: str) -> None:
        known = self._filesets.setdefault(scan, set())
        if fileset in known:
            return
        self._http().send(
            "POST", f"/filesets/{quote(scan)}/{quote(fileset)}", json={}, ok=(201, 409)
        )
        known.add(fileset)
        self._touched.add(scan)

    def _set_metadata(self, key: str, rest: str, body: bytes) -> None:
        """Merge a metadata file's keys into the server's (it keeps keys the
        API cannot remove: refused when the file no longer has them)."""
        path = _metadata_path(key, rest, self.url)
        try:
            wanted = json.loads(body)
        except ValueError:
            wanted = None
        if not isinstance(wanted, dict):
            raise Unsupported(
                "not a JSON object: plantdb keeps metadata as one",
                where=self.url,
                key=key,
            )
        wanted = {k: v for k, v in wanted.items() if k not in MANAGED}
        scan = key.split("/", 1)[0]
        try:
            now = self._http().json("GET", path)["metadata"] or {}
        except NotFound:
            raise PreconditionFailed(
                "the item this metadata belongs to is not on the server yet; "
                "sent by the next run",
                where=self.url,
                key=key,
            ) from None
        extra = sorted(k for k in now if k not in MANAGED and k not in wanted)
        if extra:
            raise Unsupported(
                "plantdb's REST API cannot remove metadata keys, and the "
                f"server holds {', '.join(extra)}; left pending",
                where=self.url,
                key=key,
            )
        if any(now.get(k) != v for k, v in wanted.items()):
            self._http().send("POST", path, json={"metadata": wanted})
        self._touched.add(scan)

    def make_dir(self, key: str, *, like: Entry, expect: Entry | None) -> Entry:
        check_key(key, self.url)
        self._writable(key if "/" in key else key + "/")
        scan, _, rest = key.partition("/")
        if self._is_new(scan):
            (self.record.staged / key).mkdir(parents=True, exist_ok=True)
        elif rest and "/" not in rest and rest != "metadata":
            self._ensure_fileset(scan, rest)
        entry = Entry(key, DIR)
        self._entries[key] = entry
        return entry

    def set_meta(self, key: str, *, like: Entry, expect: Entry) -> Entry:
        check_key(key, self.url)
        return self._entries.get(key) or expect

    def delete(self, key: str, *, expect: Entry, trash: str | None = None) -> None:
        check_key(key, self.url)
        scan = key.partition("/")[0]
        staged = self.record.staged / key
        if self._is_new(scan) and (staged.is_file() or staged.is_dir()):
            if staged.is_dir():
                staged.rmdir()
            else:
                staged.unlink()
            self._entries.pop(key, None)
            return
        raise Unsupported(
            "plantdb's REST API has no delete; the item stays on the server "
            "and is reported again by the next run",
            where=self.url,
            key=key,
        )

    def flush(self) -> None:
        if self._record is not None:
            self.record.save()

    def finish(self) -> list[str]:
        """Send the staged new scans as archives; ask the server to reload
        the scans changed item by item and check their ``files.json``."""
        if self.client is None or not self.client.logged_in:
            return []
        notices: list[str] = []
        ready = set(self.record.staged_scans())
        self.record.set_ready(ready)
        try:
            self._send_staged(ready)
        finally:
            for scan in sorted(self._touched):
                notices += self._refreshed(scan)
            self._touched.clear()
            self.record.save()
        return notices

    def _send_pending(self) -> None:
        """Send the new scans an earlier run staged but could not deliver
        (the server was away), before listing."""
        ready = self.record.ready() if self._http().logged_in else set()
        if not ready:
            return
        try:
            self._send_staged(ready)
        except AccordError as exc:
            self.notices += (f"{exc.message}; kept and sent by the next run",)
        self._ids = None

    def _send_staged(self, scans: set[str]) -> None:
        failed: list[str] = []
        for scan in sorted(scans):
            try:
                self._upload(scan)
            except AccordError as exc:
                failed.append(f"scan {scan}: {exc.message}")
                if isinstance(exc, Unreachable):
                    break
        if failed:
            raise TransientError("; ".join(failed), where=self.url)

    def _upload(self, scan: str) -> None:
        folder = self.record.staged / scan
        missing = [
            name
            for name in ("files.json", "metadata", "images")
            if not (folder / name).exists()
        ]
        if missing:
            raise Unsupported(
                f"plantdb takes a new scan as an archive only with images/, "
                f"metadata/ and files.json; it lacks {', '.join(missing)}",
                where=self.url,
                key=scan,
            )
        items = staged_items(folder, scan)
        fd, tmp = tempfile.mkstemp(suffix=".zip", dir=self.record.folder)
        os.close(fd)
        try:
            _zip_folder(folder, Path(tmp))
            with open(tmp, "rb") as handle:
                answer = self._http().send(
                    "POST",
                    f"/assets/archive/{quote(scan)}",
                    files={"zip_file": (f"{scan}.zip", handle, "application/zip")},
                    ok=(200, 201, 400),
                )
        finally:
            os.unlink(tmp)
        if answer.status_code == 400 and not self._same_scan(scan, items):
            raise ProtocolError(
                f"the server refused the archive: {answer.text[:300]}",
                where=self.url,
                key=scan,
            )
        sem = items[f"{scan}/files.json"][2]
        self.record.scans[scan] = {"sem": sem, "items": items}
        self.record.save()
        shutil.rmtree(folder)
        self._server_scans.add(scan)

    def _same_scan(self, scan: str, items: dict[str, list[Any]]) -> bool:
        """True when the server already holds this scan as staged (an upload
        whose answer was lost)."""
        try:
            raw = self._get_file(f"{scan}/files.json")
        except NotFound:
            return False
        return meaning(f"{scan}/files.json", raw) == items[f"{scan}/files.json"][2]

    def _refreshed(self, scan: str) -> list[str]:
        http = self._http()
        http.send("GET", "/refresh", params={"scan_id": scan}, auth=False)
        raw = self._get_file(f"{scan}/files.json")
        sem = meaning(f"{scan}/files.json", raw)
        known = self.record.scans.setdefault(scan, {"sem": None, "items": {}})
        for key, entry in self._entries.items():
            if key.startswith(scan + "/") and entry.kind == FILE:
                known["items"][key] = [entry.size, entry.digest, None]
        for key, sent in self.record.agreed.items():
            if key.startswith(scan + "/") and key in known["items"]:
                known["items"][key] = list(sent)
        known["sem"] = sem
        wanted = self._wanted_files_json.pop(scan, None)
        if wanted is not None and wanted[2] == sem:
            self.record.agreed[f"{scan}/files.json"] = wanted
            return []
        if wanted is not None:
            return [
                f"{self.url}: scan {scan}: the server's files.json does not list "
                "the same files as the one sent yet; it is compared again by the "
                "next run"
            ]
        return []


def _metadata_path(key: str, rest: str, where: str) -> str:
    """The API path of the metadata a ``metadata/...json`` file holds."""
    scan = key.split("/", 1)[0]
    parts = rest.split("/")[1:]
    if parts == ["metadata.json"]:
        return f"/scans/{quote(scan)}/metadata"
    if len(parts) == 1 and parts[0].endswith(".json"):
        return f"/filesets/{quote(scan)}/{quote(parts[0][:-5])}/metadata"
    if len(parts) == 2 and parts[1].endswith(".json"):
        fileset, name = parts[0], parts[1][:-5]
        return f"/files/{quote(scan)}/{quote(fileset)}/{quote(name)}/metadata"
    raise Unsupported(
        "plantdb keeps metadata as metadata/metadata.json, metadata/FILESET.json "
        "or metadata/FILESET/FILE.json; this file has no place there",
        where=where,
        key=key,
    )


def _zip_folder(folder: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
