"""A plant-scan database behind plantdb's REST server:
``plantdb+http://[USER@]HOST:PORT`` (``plantdb+https://`` for TLS).

The place is the FSDB as plantdb lays it out on disk: one folder per scan
holding ``files.json``, ``metadata/`` and one folder per fileset. It is
seen only through the server's API (``/api/v1``):

* **Listing** asks for the scan ids (``GET /scans``) and, per scan, for its
  ``files.json``. A scan whose ``files.json`` says what it said when this
  place last listed it is taken from the local record of that listing
  (kept in accord's state folder) with no further request; a scan new to
  accord, or one whose files changed, comes down as one zip archive
  (``GET /assets/archive/S``), which gives every file's bytes, size and
  sha256 at once and serves the reads of this run. A no-op therefore costs
  one request plus one per scan, and downloads no data.
* **A new scan** is staged in accord's state folder while the run writes
  it (durably: the engine's record of the run counts it as sent) and goes
  up whole as one archive (``POST /assets/archive/S``) when the run ends:
  plantdb's readers never see half a scan. What could not be sent (the
  server went away) stays staged and is sent by the next run.
* **Changes inside an existing scan** go through the API item by item: a
  new fileset (``POST /filesets/S/F``), a new file (``POST /files/S/F/ID``,
  only the extensions plantdb takes), metadata (``POST .../metadata``,
  merged by the server). plantdb writes its own ``created`` and
  ``last_modified`` into metadata and its own ``files.json``: such a file
  counts as the one accord sent while it says the same (its other keys,
  its filesets and files). Afterwards the run asks the server to reload
  each scan it changed (``GET /refresh?scan_id=S``).
* **What the API cannot do** is refused per item, with the reason, and
  stays pending for the next run: there is no delete, a file cannot be
  overwritten, a metadata key cannot be removed, and root files
  (``romidb``, ``users.json``) are not the API's to write.

Without a password (``--user`` with ``PLANTDB_PASSWORD``, ``--password-env``
/``--password-file``, or ``[plantdb."HOST:PORT"]`` in accord.toml) the place
is read as plantdb's guest, read-only. The server rate-limits each client
(429): the client waits and goes on. accord's own small files (its run lock,
history) live in the state folder, not on the server.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any, ClassVar
from urllib.parse import quote, urlsplit

from accord.capabilities import Capabilities
from accord.config import config_path, default_state_dir
from accord.errors import (
    AccordError,
    ConfigError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    ProtocolError,
    TransientError,
    Unreachable,
    Unsupported,
)
from accord.keys import IgnoreRules
from accord.model import DIR, FILE, Entry, Problem, parent_of
from accord.replica import (
    DIGEST,
    Replica,
    check_digest,
    check_expected,
    check_key,
    read_all,
)
from accord.replicas.plantdb_client import PlantdbClient

__all__ = ["PlantdbReplica"]

#: what plantdb's file POST takes; only images are stored as raw bytes
_EXTENSIONS = frozenset(
    {"jpg", "jpeg", "png", "tif", "txt", "json", "ply", "yaml", "toml"}
)
_RAW = frozenset({"jpg", "jpeg", "png", "tif"})
#: metadata keys plantdb writes itself and its API cannot set
_MANAGED = frozenset({"created", "created_by", "last_modified", "owner"})
_PASSWORD_ENV = "PLANTDB_PASSWORD"
#: items of one scan read one by one before the rest come as one archive
_SINGLE_READS = 2
#: at most this many new items of a known scan are fetched one by one
_FEW = 40


def _sha(data: bytes) -> str:
    return f"{DIGEST}:{hashlib.sha256(data).hexdigest()}"


def _meaning(key: str, data: bytes) -> str | None:
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
        found = _fileset_names(found)
    elif isinstance(found, dict):
        found = {k: v for k, v in found.items() if k not in _MANAGED}
    canon = json.dumps(found, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def _fileset_names(found: Any) -> dict[str, list[str]]:
    """``files.json`` as {fileset: sorted file names}."""
    sets: dict[str, list[str]] = {}
    for fileset in found.get("filesets", []) if isinstance(found, dict) else []:
        files = [str(f.get("file", "")) for f in fileset.get("files", [])]
        sets[str(fileset.get("id", ""))] = sorted(files)
    return sets


class _Record:
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


class PlantdbReplica(Replica):
    """An FSDB served by ``fsdb_rest_api``."""

    scheme = "plantdb+http"
    #: options this place takes besides its URL (the CLI offers them)
    takes: ClassVar[frozenset[str]] = frozenset({"user", "password"})

    def __init__(
        self,
        base: str,
        *,
        user: str | None = None,
        password: str | None = None,
        state_dir: str | Path | None = None,
    ) -> None:
        self.base = base.rstrip("/")
        scheme, _, hostport = self.base.partition("://")
        self.user = user
        self._password = password
        self.url = f"plantdb+{scheme}://{user + '@' if user else ''}{hostport}"
        self.identity = f"plantdb+{scheme}://{hostport}"
        self.capabilities = Capabilities(
            mtime_precision_ns=None,
            modes=False,
            empty_dirs=False,
            symlinks=False,
            conditional_writes=False,
            server_side_move=False,
            trash=False,
            parallel_transfers=False,
            utf8_names=True,
            forbidden_chars="\\",
        )
        self._state_dir = state_dir
        self.client: PlantdbClient | None = None
        self._record: _Record | None = None
        self._server_scans: set[str] = set()
        self._entries: dict[str, Entry] = {}
        self._zips: dict[str, Path] = {}
        self._tmp: Path | None = None
        self._touched: set[str] = set()
        self._filesets: dict[str, set[str]] = {}
        self._wanted_files_json: dict[str, list[Any]] = {}
        self._sent = 0
        self._throttled = 0
        self._ids: set[str] | None = None
        self._reads: dict[str, int] = {}
        self._fetched: dict[str, bytes] = {}

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PlantdbReplica:
        scheme, _, rest = url.partition("+")
        parts = urlsplit(rest)
        if scheme != "plantdb" or parts.scheme not in ("http", "https"):
            raise ConfigError(
                f"not a plantdb URL: {url!r}",
                hint="write plantdb+http://[USER@]HOST:PORT",
            )
        if parts.password is not None:
            raise ConfigError(
                "a password in the URL would end up in shell history and logs",
                hint=f"set {_PASSWORD_ENV}, or give --password-env VAR or "
                "--password-file FILE",
            )
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"bad port in {url!r}: {exc}") from None
        host = parts.hostname
        if not host or parts.path.strip("/") or parts.query:
            raise ConfigError(
                f"{url!r} is not HOST:PORT of a plantdb server",
                hint="write plantdb+http://[USER@]HOST:PORT (no path: the API "
                "is at /api/v1)",
            )
        netloc = f"[{host}]" if ":" in host else host
        hostport = f"{netloc}:{port}" if port else netloc
        user = options.pop("user", None) or parts.username
        password = options.pop("password", None)
        if password is None:
            user, password = _login_from_config(hostport, user)
        return cls(
            f"{parts.scheme}://{hostport}", user=user, password=password, **options
        )

    # -- lifetime ---------------------------------------------------------
    def open(self, create: bool = False) -> None:
        if self.user and self._password is None:
            raise ConfigError(
                f"no password for {self.user} at {self.base}",
                hint=f"export {_PASSWORD_ENV}=..., or give --password-env VAR, "
                f'or add password = "..." under [plantdb."HOST:PORT"] in accord.toml',
            )
        self._ids = None
        self.client = PlantdbClient(
            self.base, where=self.url, user=self.user, password=self._password
        )
        try:
            self._check_server()
            self.client.login()
        except BaseException:
            self.close()
            raise
        if not self.client.logged_in:
            self.capabilities = self.capabilities._replace(read_only=True)
            self.notices = (
                f"{self.url}: no password given, so it is read as plantdb's "
                "guest (read-only)",
            )
        folder = (
            default_state_dir() if self._state_dir is None else Path(self._state_dir)
        )
        name = hashlib.sha256(self.identity.encode()).hexdigest()[:24]
        self._record = _Record(folder / "plantdb" / name)
        self._tmp = Path(tempfile.mkdtemp(prefix="download.", dir=self._record.folder))

    def _check_server(self) -> None:
        """Unreachable unless a plantdb REST server answers there."""
        try:
            found = self._http().json("GET", "/health", auth=False)
        except NotFound as exc:
            raise Unreachable(
                f"no plantdb REST API at {self.base} (/api/v1/health is not there)",
                where=self.url,
                hint="is this the host and port of fsdb_rest_api?",
            ) from exc
        except ProtocolError as exc:
            raise Unreachable(
                f"{self.base} does not answer like a plantdb REST server",
                where=self.url,
            ) from exc
        if not isinstance(found, dict) or "database" not in found:
            raise Unreachable(
                f"{self.base} does not answer like a plantdb REST server",
                where=self.url,
            )

    def close(self) -> None:
        if self.client is not None:
            self._sent += self.client.requests
            self._throttled += self.client.throttled
            self.client.close()
            self.client = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._zips.clear()
        self._fetched.clear()

    def _http(self) -> PlantdbClient:
        if self.client is None:
            raise ConfigError(f"{self.url} is not open")
        return self.client

    @property
    def record(self) -> _Record:
        if self._record is None:
            raise ConfigError(f"{self.url} is not open")
        return self._record

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (each try counts)."""
        return self._sent + (self.client.requests if self.client else 0)

    @property
    def throttled(self) -> int:
        """429 answers met so far (each was waited out)."""
        return self._throttled + (self.client.throttled if self.client else 0)

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
            entries = _tree(scan, _staged_items(staged, scan))
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
        sem = _meaning(f"{scan}/files.json", raw)
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
        self._filesets[scan] = set(_fileset_names(json.loads(raw)))
        items = dict(items)
        items[f"{scan}/files.json"] = [len(raw), _sha(raw), sem]
        return _tree(scan, self._agreed(items))

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
            now = _fileset_names(json.loads(raw))
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
            items[key] = [len(data), _sha(data), _meaning(key, data)]
        return items

    def _agreed(self, items: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """Items, with each JSON file accord wrote shown as accord sent it
        while the server's copy says the same."""
        out = {}
        for key, (size, digest, sem) in items.items():
            sent = self.record.agreed.get(key)
            if sent is not None and sem is not None and sent[2] == sem:
                body = self.record.sent(key)
                if body is not None and _sha(body) == sent[1]:
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
                    items[key] = [len(data), _sha(data), _meaning(key, data)]
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
        return entry._replace(digest=_sha(data))

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

    # -- writing ----------------------------------------------------------
    def _writable(self, key: str) -> None:
        if self.capabilities.read_only or not self._http().logged_in:
            raise PermissionDenied(
                "plantdb's guest may not write; nothing was sent",
                where=self.url,
                key=key,
                hint=f"give --user NAME and set {_PASSWORD_ENV}",
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
        digest = _sha(body)
        check_digest(like, digest, self.url, key)
        entry = Entry(key, FILE, len(body), 0, 0, digest, digest)
        if self._is_new(scan):
            self._stage(key, body)
        elif rest == "files.json":
            self._wanted_files_json[scan] = [len(body), digest, _meaning(key, body)]
            self.record.keep_sent(key, body)
            self._touched.add(scan)
        elif rest.startswith("metadata/"):
            self._set_metadata(key, rest, body)
            self.record.agreed[key] = [len(body), digest, _meaning(key, body)]
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
        wanted = {k: v for k, v in wanted.items() if k not in _MANAGED}
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
        extra = sorted(k for k in now if k not in _MANAGED and k not in wanted)
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
        items = _staged_items(folder, scan)
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
        return _meaning(f"{scan}/files.json", raw) == items[f"{scan}/files.json"][2]

    def _refreshed(self, scan: str) -> list[str]:
        http = self._http()
        http.send("GET", "/refresh", params={"scan_id": scan}, auth=False)
        raw = self._get_file(f"{scan}/files.json")
        sem = _meaning(f"{scan}/files.json", raw)
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


class PlantdbsReplica(PlantdbReplica):
    """The same place over TLS (``plantdb+https://``)."""

    scheme = "plantdb+https"


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


def _staged_items(folder: Path, scan: str) -> dict[str, list[Any]]:
    items: dict[str, list[Any]] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            key = f"{scan}/{path.relative_to(folder).as_posix()}"
            data = path.read_bytes()
            items[key] = [len(data), _sha(data), _meaning(key, data)]
        elif path.is_dir() and not any(path.iterdir()):
            items[f"{scan}/{path.relative_to(folder).as_posix()}/"] = [0, None, None]
    return items


def _tree(scan: str, items: dict[str, list[Any]]) -> list[Entry]:
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


def _zip_folder(folder: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())


def _login_from_config(
    hostport: str, user: str | None
) -> tuple[str | None, str | None]:
    """The user and password for a server: ``$PLANTDB_PASSWORD``, else the
    ``[plantdb."HOST:PORT"]`` table of accord.toml (``user``, ``password``)."""
    password = os.environ.get(_PASSWORD_ENV)
    if password is not None and user:
        return user, password
    path = config_path()
    if path is None or not path.is_file():
        return user, None
    import tomllib

    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("plantdb", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    found = table.get(hostport) if isinstance(table, dict) else None
    if not isinstance(found, dict):
        return user, None
    user = user or found.get("user")
    secret = found.get("password")
    return user, secret if isinstance(secret, str) and user else None
