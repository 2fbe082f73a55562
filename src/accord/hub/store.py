"""A hub's store: its folder, database, blob store and key.

Content at most ``INLINE`` bytes is kept in the database, committed in the
same transaction as the items that hold it (one commit makes a batch of
small files durable, with no file per item to flush; the S3 store gets no
request per small file); bigger content goes to the blob store.

``accord hub init FOLDER`` makes the folder: ``hub.toml`` (where the
metadata and the blobs live: SQLite and ``blobs/`` in the folder by
default, or a PostgreSQL URL and an S3 prefix), ``hub.key`` (the secret
from which node secrets are derived, mode 0600) and the first user,
``admin``, with a token printed once. Several server processes may serve
one store: they share the database and the blob store, and each needs the
same ``hub.key`` (copy the file, or set ``ACCORD_HUB_KEY``).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

from accord.errors import ConfigError, SchemaTooNew
from accord.hub import accounts
from accord.hub import schema as t
from accord.hub.blobs import Blobs, open_blobs

__all__ = ["INLINE", "Hub", "init_hub", "open_hub"]

INLINE = 256 << 10  # content this small lives in the database
_CONFIG = "hub.toml"
_KEY = "hub.key"


@dataclass
class Hub:
    """An opened hub store, shared by every request of a server process."""

    folder: Path
    db_url: str
    writer: sa.Engine
    reader: sa.Engine
    blobs: Blobs
    key: bytes
    hub_id: str
    #: set when the server is shutting down (long-lived streams end)
    state: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        self.writer.dispose()
        self.reader.dispose()
        self.blobs.close()

    # -- content: small pieces in the database, the rest in the blob store --
    def has(self, digest: str) -> bool:
        """True when the hub holds the content named ``digest``."""
        with self.reader.connect() as conn:
            found = conn.execute(
                sa.select(t.inline.c.digest).where(t.inline.c.digest == digest)
            ).first()
        return found is not None or self.blobs.has(digest)

    def open(self, digest: str, start: int = 0) -> IO[bytes]:
        """The content named ``digest``, from byte ``start``."""
        with self.reader.connect() as conn:
            row = conn.execute(
                sa.select(t.inline.c.data).where(t.inline.c.digest == digest)
            ).first()
        if row is not None:
            return io.BytesIO(bytes(row.data)[start:])
        return self.blobs.open(digest, start)


def _config(folder: Path) -> dict[str, Any]:
    import tomllib

    path = folder / _CONFIG
    if not path.is_file():
        raise ConfigError(
            f"{folder} is not an accord hub (no {_CONFIG})",
            hint=f"create one with: accord hub init {folder}",
        )
    with path.open("rb") as handle:
        return tomllib.load(handle)


def _write_config(folder: Path, db: str, blobs: str) -> None:
    text = (
        "# accord hub store; options given to `accord hub serve` override these\n"
        f"db = {json.dumps(db)}\nblobs = {json.dumps(blobs)}\n"
    )
    (folder / _CONFIG).write_text(text)


def _default_db(folder: Path) -> str:
    return f"sqlite:///{folder.resolve() / 'hub.db'}"


def init_hub(
    folder: str | os.PathLike[str], *, db: str | None = None, blobs: str | None = None
) -> tuple[str, str]:
    """Create a hub store; ``(hub id, admin token)``. The token is not kept
    in clear anywhere: show it to the user once."""
    path = Path(folder).expanduser()
    if (path / _CONFIG).exists():
        raise ConfigError(f"{path} is already an accord hub", hint="serve it instead")
    path.mkdir(parents=True, exist_ok=True)
    _write_config(path, db or _default_db(path), blobs or "blobs")
    key_file = path / _KEY
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    hub = open_hub(path)
    try:
        with hub.writer.begin() as conn:
            if accounts.find_user(conn, "admin") is None:
                accounts.add_user(conn, "admin", admin=True)
            token = accounts.new_token(conn, "admin", "admin token (hub init)")
        return hub.hub_id, token
    finally:
        hub.close()


def _key(folder: Path) -> bytes:
    env = os.environ.get("ACCORD_HUB_KEY")
    if env:
        return env.strip().encode()
    try:
        return (folder / _KEY).read_text().strip().encode()
    except FileNotFoundError:
        raise ConfigError(
            f"the hub's key {folder / _KEY} is missing",
            hint="copy hub.key from the folder made by accord hub init, "
            "or set ACCORD_HUB_KEY",
        ) from None


def open_hub(
    folder: str | os.PathLike[str], *, db: str | None = None, blobs: str | None = None
) -> Hub:
    """Open the store in ``folder`` (creating its tables on first use)."""
    path = Path(folder).expanduser()
    config = _config(path)
    db_url = db or str(config.get("db") or _default_db(path))
    try:
        writer, reader = t.connect(db_url)
    except sa.exc.SQLAlchemyError as exc:
        raise ConfigError(
            f"cannot open the hub's database: {exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0]}",
            hint="check --db (a postgresql:// or sqlite:/// URL) and the server",
        ) from exc
    hub_id = _hub_id(writer)
    store = open_blobs(blobs or str(config.get("blobs") or "blobs"), path)
    return Hub(path, db_url, writer, reader, store, _key(path), hub_id)


def _hub_id(writer: sa.Engine) -> str:
    with writer.begin() as conn:
        rows = dict(conn.execute(sa.select(t.info.c.name, t.info.c.value)).all())
        if int(rows.get("schema", t.SCHEMA_VERSION)) > t.SCHEMA_VERSION:
            raise SchemaTooNew(
                "the hub's database was made by a newer accord",
                hint="upgrade accord on this server",
            )
        if "hub_id" not in rows:
            rows["hub_id"] = "h" + secrets.token_hex(8)
            conn.execute(
                t.info.insert(),
                [
                    {"name": "hub_id", "value": rows["hub_id"]},
                    {"name": "schema", "value": str(t.SCHEMA_VERSION)},
                    {"name": "created", "value": str(time.time())},
                ],
            )
        return str(rows["hub_id"])
