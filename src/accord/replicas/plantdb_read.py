"""plantdb's REST server, reading: the listing (the scan ids, each scan's
``files.json``; a scan new to accord or changed comes down as one archive,
or its few new items one by one), stat, digests and reads
(:mod:`accord.replicas.plantdb_rest`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import IO, Any
from urllib.parse import quote

from accord.errors import NotFound, ProtocolError, TransientError
from accord.keys import IgnoreRules
from accord.model import DIR, FILE, Entry, Problem
from accord.replica import check_key, read_all
from accord.replicas.plantdb_items import (
    fileset_names,
    meaning,
    sha,
    staged_items,
    tree,
)

__all__ = ["Reading"]

#: items of one scan read one by one before the rest come as one archive
_SINGLE_READS = 2
#: at most this many new items of a known scan are fetched one by one
_FEW = 40


class Reading:
    """The reading half of
    :class:`~accord.replicas.plantdb_rest.PlantdbReplica` (which holds the
    client, ``_http``, and the ``record``)."""

    # -- reading ----------------------------------------------------------
    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str]:
        self._send_pending()
        self._server_scans = self._scan_ids()
        self._entries = {}
        names = sorted(self._server_scans | set(self.record.staged_scans()))
        for scan in names:
            if ignore and ignore.excludes(scan, True):
                continue
            try:
                entries = self._scan_entries(scan)
            except TransientError as exc:
                yield Problem(scan, None, exc.message, retryable=True)
                continue
            for entry in entries:
                self._entries[entry.key] = entry
                if ignore and ignore.excludes(entry.key, entry.kind == DIR):
                    continue
                yield entry
        self.record.save()

    def _scan_ids(self) -> set[str]:
        """The server's scan ids (asked once per run: a check that the place
        is not empty and the scan that follows share the answer)."""
        if self._ids is None:
            found = self._http().json("GET", "/scans", auth=False)
            self._ids = {str(s) for s in found} if isinstance(found, list) else set()
        return self._ids

    def is_empty_root(self) -> bool:
        return not self._scan_ids() and not self.record.staged_scans()

    def _scan_entries(self, scan: str) -> list[Entry]:
        staged = self.record.staged / scan
        if staged.is_dir():
            entries = tree(scan, staged_items(staged, scan))
            if scan in self.record.ready():
                return entries
            # staged by a run that did not finish: a new version (same
            # content) of its files.json makes this run finish and send it
            key = f"{scan}/files.json"
            return [
                e._replace(version="pending:" + e.version) if e.key == key else e
                for e in entries
            ]
        raw = self._get_file(f"{scan}/files.json")
        sem = meaning(f"{scan}/files.json", raw)
        known = self.record.scans.get(scan)
        if known is None or known.get("sem") != sem:
            added = self._added(scan, known, raw)
            if added is None:
                items = self._fetch_archive(scan)
            else:
                items = {**known["items"], **self._fetch_items(added)}  # type: ignore[index]
            self.record.scans[scan] = {"sem": sem, "items": items}
        else:
            items = known["items"]
        self._fetched[f"{scan}/files.json"] = raw  # this run reads it from here
        self._filesets[scan] = set(fileset_names(json.loads(raw)))
        items = dict(items)
        items[f"{scan}/files.json"] = [len(raw), sha(raw), sem]
        return tree(scan, self._agreed(items))

    def _added(
        self, scan: str, known: dict[str, Any] | None, raw: bytes
    ) -> list[str] | None:
        """The keys a few new files add to a scan known before (each data
        file, its metadata, a new fileset's metadata), to be fetched one by
        one; None when the scan comes down whole (new to accord, files gone,
        or many new)."""
        if known is None:
            return None
        try:
            now = fileset_names(json.loads(raw))
        except ValueError:
            return None
        items = known["items"]
        added: list[str] = []
        for fileset, names in now.items():
            if f"{scan}/metadata/{fileset}.json" not in items:
                added.append(f"{scan}/metadata/{fileset}.json")
            for name in names:
                key = f"{scan}/{fileset}/{name}"
                if key not in items:
                    stem = name.rpartition(".")[0] or name
                    added += [key, f"{scan}/metadata/{fileset}/{stem}.json"]
        gone = any(
            key.count("/") == 2
            and not key.startswith(f"{scan}/metadata/")
            and key.split("/")[2] not in now.get(key.split("/")[1], ())
            for key in items
        )
        if gone or len(added) > _FEW:
            return None
        return added

    def _fetch_items(self, keys: list[str]) -> dict[str, list[Any]]:
        """Items fetched one request each (missing metadata is no item)."""
        items: dict[str, list[Any]] = {}
        for key in keys:
            try:
                data = self._get_file(key)
            except NotFound:
                continue
            self._fetched[key] = data
            items[key] = [len(data), sha(data), meaning(key, data)]
        return items

    def _agreed(self, items: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """Items, with each JSON file accord wrote shown as accord sent it
        while the server's copy says the same."""
        out = {}
        for key, (size, digest, sem) in items.items():
            sent = self.record.agreed.get(key)
            if sent is not None and sem is not None and sent[2] == sem:
                body = self.record.sent(key)
                if body is not None and sha(body) == sent[1]:
                    size, digest = sent[0], sent[1]
                    self._fetched[key] = body  # what reads see
            out[key] = [size, digest, sem]
        return out

    def _get_file(self, key: str) -> bytes:
        """The bytes at ``key``: a fileset's file through the file route,
        anything else (files.json, metadata) through the assets route (each
        route has its own rate limit)."""
        parts = key.split("/")
        if len(parts) == 3 and parts[1] != "metadata" and "." in parts[2]:
            stem = parts[2].rpartition(".")[0]
            path = "/files/" + "/".join(quote(p) for p in (parts[0], parts[1], stem))
        else:
            path = "/assets/files/" + quote(key)
        return self._http().send("GET", path, auth=False).content

    def _fetch_archive(self, scan: str) -> dict[str, list[Any]]:
        """Download scan ``scan`` as one zip: its items' sizes and digests;
        the zip serves this run's reads."""
        assert self._tmp is not None
        path = self._tmp / f"{hashlib.sha256(scan.encode()).hexdigest()[:16]}.zip"
        answer = self._http().send("GET", f"/assets/archive/{quote(scan)}")
        path.write_bytes(answer.content)
        self._zips[scan] = path
        items: dict[str, list[Any]] = {}
        try:
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if info.is_dir() or info.filename.startswith("webcache/"):
                        continue
                    data = archive.read(info)
                    key = f"{scan}/{info.filename}"
                    items[key] = [len(data), sha(data), meaning(key, data)]
        except zipfile.BadZipFile as exc:
            raise ProtocolError(
                f"the archive of scan {scan!r} is not a zip", where=self.url
            ) from exc
        return items

    def stat(self, key: str) -> Entry | None:
        check_key(key, self.url)
        return self._entries.get(key)

    def digest(self, entry: Entry) -> Entry:
        check_key(entry.key, self.url)
        if entry.digest or entry.kind != FILE:
            return entry
        with self.open_read(entry.key) as stream:
            data = read_all(stream)
        return entry._replace(digest=sha(data))

    def open_read(self, key: str) -> AbstractContextManager[IO[bytes]]:
        check_key(key, self.url)
        scan, _, rest = key.partition("/")
        staged = self.record.staged / key
        if staged.is_file():
            return staged.open("rb")
        fetched = self._fetched.get(key)
        if fetched is not None:
            return io.BytesIO(fetched)
        archive = self._zips.get(scan)
        self._reads[scan] = self._reads.get(scan, 0) + 1
        if archive is None and self._reads[scan] > _SINGLE_READS and self._tmp:
            self._fetch_archive(scan)  # many items of one scan: one request
            archive = self._zips.get(scan)
        if archive is not None:
            with zipfile.ZipFile(archive) as found, contextlib.suppress(KeyError):
                return io.BytesIO(found.read(rest))
        return io.BytesIO(self._get_file(key))
