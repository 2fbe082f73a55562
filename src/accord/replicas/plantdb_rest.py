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

The place is an FSDB and says so (``capabilities.fsdb_server``): the FSDB
mode takes it without a marker, leaves the other side's bookkeeping out of
the run, and takes no plantdb lock here (the server locks each request).

Without a password (``--user`` with ``PLANTDB_PASSWORD``, ``--password-env``
/``--password-file``, or ``[plantdb."HOST:PORT"]`` in accord.toml) the place
is read as plantdb's guest, read-only. The server rate-limits each client
(429): the client waits and goes on. accord's own small files (its run lock,
history) live in the state folder, not on the server.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from accord.capabilities import Capabilities
from accord.config import config_path, default_state_dir
from accord.errors import ConfigError, NotFound, ProtocolError, Unreachable
from accord.model import Entry
from accord.registry import url_host, url_port
from accord.replica import Replica
from accord.replicas.plantdb_client import PASSWORD_ENV, PlantdbClient
from accord.replicas.plantdb_read import Reading
from accord.replicas.plantdb_record import OwnFiles, Record
from accord.replicas.plantdb_write import Writing

__all__ = ["PlantdbReplica"]


class PlantdbReplica(Reading, Writing, OwnFiles, Replica):
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
            fsdb_server=True,
        )
        self._state_dir = state_dir
        self.client: PlantdbClient | None = None
        self._record: Record | None = None
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
                hint=f"set {PASSWORD_ENV}, or give --password-env VAR or "
                "--password-file FILE",
            )
        port = url_port(parts, url)
        host = parts.hostname
        if not host or parts.path.strip("/") or parts.query:
            raise ConfigError(
                f"{url!r} is not HOST:PORT of a plantdb server",
                hint="write plantdb+http://[USER@]HOST:PORT (no path: the API "
                "is at /api/v1)",
            )
        netloc = url_host(host)
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
                hint=f"export {PASSWORD_ENV}=..., or give --password-env VAR, "
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
        self._record = Record(folder / "plantdb" / name)
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
    def record(self) -> Record:
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


class PlantdbsReplica(PlantdbReplica):
    """The same place over TLS (``plantdb+https://``)."""

    scheme = "plantdb+https"


def _login_from_config(
    hostport: str, user: str | None
) -> tuple[str | None, str | None]:
    """The user and password for a server: ``$PLANTDB_PASSWORD``, else the
    ``[plantdb."HOST:PORT"]`` table of accord.toml (``user``, ``password``)."""
    password = os.environ.get(PASSWORD_ENV)
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
