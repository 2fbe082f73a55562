"""The hub's metadata tables (SQLAlchemy Core), on SQLite or PostgreSQL.

Nothing secret is stored in clear: enrolment codes, tokens and session
cookies are stored as their sha256, passwords as scrypt hashes, and a
node's signing secret is not stored at all (it is derived from the hub's
key and the node's salt, see ``accounts``).

Concurrency: every change to a collection first bumps that collection's
``seq`` (``UPDATE ... RETURNING``), which takes the row's lock on
PostgreSQL and the write lock on SQLite (transactions there are
``BEGIN IMMEDIATE``). Writers of one collection are thus serialised across
every server process sharing the database, and each change gets the next
``seq``: an item's version, and the position in the change feed.
"""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from accord.sqlurls import driver_url

__all__ = [
    "SCHEMA_VERSION",
    "connect",
    "driver_url",
    "insert_new",
    "metadata",
    "tables",
]

SCHEMA_VERSION = 1

metadata = sa.MetaData()
_Big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: keys sort bytewise everywhere (folder ranges and paging rely on it)
_Key = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _entry_columns() -> list[sa.Column[Any]]:
    """What an item and a trashed item both keep of an entry."""
    return [
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("size", _Big, nullable=False),
        sa.Column("mtime_ns", _Big, nullable=False),
        sa.Column("mode", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(80)),
        sa.Column("target", sa.Text),
    ]


info = sa.Table(
    "hub_info",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
users = sa.Table(
    "hub_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("admin", sa.Boolean, nullable=False, default=False),
    sa.Column("password", sa.Text),  # scrypt$salt$hash
    sa.Column("created", sa.Float, nullable=False),
)
tokens = sa.Table(  # admin and API tokens (bearer), by their sha256
    "hub_tokens",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)
enrolments = sa.Table(  # one-time codes, by their sha256
    "hub_enrolments",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
)
nodes = sa.Table(
    "hub_nodes",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float),
    sa.Column("revoked", sa.Float),
)
sessions = sa.Table(  # browser sessions, by the cookie's sha256
    "hub_sessions",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
)
nonces = sa.Table(
    "hub_nonces",
    metadata,
    sa.Column("node_id", sa.String(32), primary_key=True),
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
)
failures = sa.Table(  # failed logins, per user name and per client address
    "hub_failures",
    metadata,
    sa.Column("who", sa.String(200), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("last", sa.Float, nullable=False),
)
collections = sa.Table(
    "hub_collections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("seq", _Big, nullable=False, default=0),
    sa.Column("created", sa.Float, nullable=False),
)
grants = sa.Table(
    "hub_grants",
    metadata,
    sa.Column("user_id", sa.Integer, primary_key=True),
    sa.Column("collection_id", sa.Integer, primary_key=True),
    sa.Column("write", sa.Boolean, nullable=False),
)
items = sa.Table(  # what each collection holds now; ``alive`` false: deleted
    "hub_items",
    metadata,
    sa.Column("collection_id", sa.Integer, primary_key=True),
    sa.Column("key", _Key, primary_key=True),
    *_entry_columns(),
    sa.Column("seq", _Big, nullable=False),
    sa.Column("alive", sa.Boolean, nullable=False),
    sa.Index("hub_items_seq", "collection_id", "seq"),
    sa.Index("hub_items_digest", "digest"),
)
trash = sa.Table(
    "hub_trash",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("collection_id", sa.Integer, nullable=False),
    sa.Column("run", sa.String(64), nullable=False),
    sa.Column("key", _Key, nullable=False),
    *_entry_columns(),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("by_user", sa.String(128)),
    sa.Index("hub_trash_collection", "collection_id", "run"),
    sa.Index("hub_trash_digest", "digest"),
)
inline = sa.Table(  # small content, by sha256: committed with its item
    "hub_inline",
    metadata,
    sa.Column("digest", sa.String(80), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
own = sa.Table(  # accord's own files of a collection (lock, shared history)
    "hub_own",
    metadata,
    sa.Column("collection_id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(400), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
events = sa.Table(  # who changed what and when; the feed of /api/v1/events
    "hub_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("collection_id", sa.Integer, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("user", sa.String(128)),
    sa.Column("node", sa.String(128)),
    sa.Column("data", sa.Text, nullable=False),
)
uploads = sa.Table(  # resumable uploads in progress
    "hub_uploads",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("size", _Big, nullable=False),
    sa.Column("token", sa.String(80)),  # names the content, to resume it
    sa.Column("received", _Big, nullable=False),
    sa.Column("result", sa.String(80)),  # the blob, once the upload is whole
    sa.Column("updated", sa.Float, nullable=False),
)

# -- SyncML (``accord.hub.syncml``): what the hub remembers of each device --
syncml_secrets = sa.Table(  # b64(md5(user:password)), only when asked for
    "hub_syncml_secrets",
    metadata,
    sa.Column("user_id", sa.Integer, primary_key=True),
    sa.Column("secret", sa.String(64), nullable=False),
)
syncml_nonces = sa.Table(  # the next MD5 nonce of each device
    "hub_syncml_nonces",
    metadata,
    sa.Column("device", sa.String(400), primary_key=True),
    sa.Column("nonce", sa.String(64), nullable=False),
)
syncml_guids = sa.Table(  # the id a device knows each item of a collection by
    "hub_syncml_guids",
    metadata,
    sa.Column("collection_id", sa.Integer, primary_key=True),
    sa.Column("guid", sa.String(32), primary_key=True),
    sa.Column("key", _Key, nullable=False),
    sa.UniqueConstraint("collection_id", "key"),
)
syncml_peers = sa.Table(  # anchors per device and collection
    "hub_syncml_peers",
    metadata,
    sa.Column("collection_id", sa.Integer, primary_key=True),
    sa.Column("device", sa.String(400), primary_key=True),
    sa.Column("user", sa.String(128)),
    sa.Column("client_last", sa.Text),
    sa.Column("server_last", sa.Text),
)
syncml_seen = sa.Table(  # what a device holds of each item (its LUID: the Map)
    "hub_syncml_seen",
    metadata,
    sa.Column("collection_id", sa.Integer, primary_key=True),
    sa.Column("device", sa.String(400), primary_key=True),
    sa.Column("guid", sa.String(32), primary_key=True),
    sa.Column("luid", sa.Text),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("digest", sa.String(80), nullable=False),
    sa.Column("ctype", sa.String(200)),
    sa.Index("hub_syncml_seen_luid", "collection_id", "device", "luid"),
)
syncml_bases = sa.Table(  # the bodies devices hold: bases of line merges
    "hub_syncml_bases",
    metadata,
    sa.Column("digest", sa.String(80), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
syncml_sessions = sa.Table(  # sessions in flight (any server process goes on)
    "hub_syncml_sessions",
    metadata,
    sa.Column("token", sa.String(32), primary_key=True),
    sa.Column("updated", sa.Float, nullable=False, index=True),
    sa.Column("wbxml", sa.Boolean, nullable=False),
    sa.Column("last_msg", sa.Integer),  # the client's last message id
    sa.Column("last_reply", sa.LargeBinary),  # and our answer to it
    sa.Column("data", sa.LargeBinary, nullable=False),
)

tables = metadata.tables


def connect(url: str) -> tuple[sa.Engine, sa.Engine]:
    """``(writer, reader)`` engines for ``url``, tables created.

    On SQLite the writer begins every transaction with ``BEGIN IMMEDIATE``
    (no lock upgrade deadlocks between threads or processes) and commits
    with ``synchronous=FULL``; readers use WAL snapshots. On PostgreSQL
    one engine serves both.
    """
    url = driver_url(url)
    if url.startswith("sqlite"):
        writer = _sqlite(url, immediate=True)
        reader = _sqlite(url, immediate=False)
    else:
        writer = reader = sa.create_engine(url, pool_size=10, max_overflow=20)
    with writer.begin() as conn:
        metadata.create_all(conn)
    return writer, reader


def insert_new(conn: sa.Connection, table: sa.Table) -> Any:
    """An INSERT that skips rows whose key exists (SQLite and PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing()


def _sqlite(url: str, *, immediate: bool) -> sa.Engine:
    engine = sa.create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _setup(dbapi: Any, record: Any) -> None:
        dbapi.isolation_level = None  # transactions are begun below
        cursor = dbapi.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    if not immediate:

        @event.listens_for(engine, "begin")
        def _read(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

        return engine
    # SQLite has one writer at a time; waiting for its lock is a poll with
    # growing sleeps, which starves some writers for seconds under load.
    # The threads of this process queue on a lock instead (taken when a
    # transaction begins, released when its connection goes back).
    queue = threading.RLock()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        queue.acquire()
        info = conn.connection.info
        info["queued"] = info.get("queued", 0) + 1
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine.pool, "checkin")
    def _checkin(dbapi: Any, record: Any) -> None:
        for _ in range(record.info.pop("queued", 0)):
            queue.release()

    return engine
