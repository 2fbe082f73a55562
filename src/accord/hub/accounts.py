"""Users, nodes, tokens, sessions and grants of a hub.

* A **user** has a name, maybe a password (scrypt-hashed, for the browser
  login and SyncML's Basic login; and, only when asked for, the
  ``b64(md5(user:password))`` SyncML's MD5 login needs) and grants:
  read or write, per collection. An admin may do anything.
* A **node** is one machine of a user, registered with a one-time
  enrolment code (``accord login``). Its secret is never stored: it is
  ``HMAC(hub key, node id + salt)``, so the database alone gives nothing
  away, and every server process that has the hub's key can check a
  signature. Revoking a node refuses its next request.
* **Tokens** (the admin token printed by ``accord hub init``) and browser
  **sessions** are random strings stored as their sha256.
* Failed logins are counted per user name and per address; past a few,
  answers are delayed, then refused for a while.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any, NamedTuple

import sqlalchemy as sa

from accord.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from accord.hub import schema as t

__all__ = [
    "ENROL_DAYS",
    "Account",
    "add_user",
    "check_password",
    "create_session",
    "drop_session",
    "enrol",
    "failure_delay",
    "find_user",
    "grant",
    "hash_secret",
    "list_nodes",
    "list_users",
    "node_secret",
    "note_failure",
    "readable_ids",
    "revoke_node",
    "set_password",
    "user_by_session",
    "user_by_token",
]

ENROL_DAYS = 7
SESSION_DAYS = 7
_FREE_FAILURES = 3  # failures allowed before answers slow down
_LOCK_FAILURES = 8  # failures after which logins are refused for a while
_ADDRESS_SHARE = 5  # an address (maybe shared by many people) counts 1/5
_LOCK_SECONDS = 300


class Account(NamedTuple):
    """Who made a request."""

    user_id: int
    user: str
    admin: bool
    node: str | None = None  # the node id, for signed requests
    via: str = "node"  # node, token or session


def hash_secret(value: str) -> str:
    """How random secrets (codes, tokens, cookies) are stored."""
    return hashlib.sha256(value.encode()).hexdigest()


def node_secret(hub_key: bytes, node_id: str, salt: str) -> str:
    """A node's signing secret, derived, never stored."""
    return hmac.new(hub_key, f"{node_id}:{salt}".encode(), hashlib.sha256).hexdigest()


def _hash_password(password: str) -> str:
    salt = secrets.token_hex(16)
    digest = hashlib.scrypt(password.encode(), salt=salt.encode(), n=2**14, r=8, p=1)
    return f"scrypt${salt}${digest.hex()}"


def _password_matches(stored: str | None, password: str) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        hashlib.scrypt(b"x", salt=b"y" * 16, n=2**14, r=8, p=1)  # same cost
        return False
    _, salt, hexdigest = stored.split("$")
    digest = hashlib.scrypt(password.encode(), salt=salt.encode(), n=2**14, r=8, p=1)
    return hmac.compare_digest(digest.hex(), hexdigest)


def find_user(conn: sa.Connection, name: str) -> sa.Row[Any] | None:
    return conn.execute(sa.select(t.users).where(t.users.c.name == name)).first()


def _user_row(conn: sa.Connection, name: str) -> sa.Row[Any]:
    row = find_user(conn, name)
    if row is None:
        raise NotFound(
            f"no user named {name!r}", hint="add it with accord hub user add"
        )
    return row


def add_user(conn: sa.Connection, name: str, *, admin: bool = False) -> None:
    if find_user(conn, name) is not None:
        raise AlreadyExists(
            f"a user named {name!r} exists already",
            hint=f"for a new enrolment code (another machine): "
            f"accord hub user code {name}",
        )
    conn.execute(t.users.insert().values(name=name, admin=admin, created=time.time()))


def new_code(conn: sa.Connection, name: str) -> str:
    """A one-time enrolment code for ``name`` (valid ``ENROL_DAYS`` days)."""
    user = _user_row(conn, name)
    code = secrets.token_urlsafe(18)
    conn.execute(
        t.enrolments.insert().values(
            hash=hash_secret(code),
            user_id=user.id,
            expires=time.time() + ENROL_DAYS * 86400,
        )
    )
    return code


def new_token(conn: sa.Connection, name: str, label: str) -> str:
    """A bearer token acting for ``name`` (the admin token of ``hub init``)."""
    user = _user_row(conn, name)
    token = "acc_" + secrets.token_urlsafe(30)
    conn.execute(
        t.tokens.insert().values(
            hash=hash_secret(token), user_id=user.id, label=label, created=time.time()
        )
    )
    return token


def enrol(conn: sa.Connection, name: str, code: str, node_name: str) -> tuple[str, str]:
    """Register a node for ``name`` with ``code``; ``(node id, salt)``.

    An enrolment code is used up; the user's own token (the admin token)
    also enrols and stays valid.
    """
    user = find_user(conn, name)
    hashed = hash_secret(code)
    found = None
    if user is not None:
        found = conn.execute(
            sa.select(t.enrolments).where(
                t.enrolments.c.hash == hashed,
                t.enrolments.c.user_id == user.id,
                t.enrolments.c.expires > time.time(),
            )
        ).first()
        if found is not None:
            conn.execute(t.enrolments.delete().where(t.enrolments.c.hash == hashed))
        else:
            found = conn.execute(
                sa.select(t.tokens).where(
                    t.tokens.c.hash == hashed, t.tokens.c.user_id == user.id
                )
            ).first()
    if user is None or found is None:
        raise PermissionDenied(
            "this user name and enrolment code do not match (or the code was "
            "used or has expired)",
            hint="ask the hub's admin for a new code: accord hub user add NAME "
            "--code-only",
        )
    node_id = "n" + secrets.token_hex(8)
    salt = secrets.token_hex(16)
    conn.execute(
        t.nodes.insert().values(
            id=node_id,
            user_id=user.id,
            name=node_name[:200],
            salt=salt,
            created=time.time(),
        )
    )
    return node_id, salt


def user_by_token(conn: sa.Connection, token: str) -> Account | None:
    row = conn.execute(
        sa.select(t.users)
        .join(t.tokens, t.tokens.c.user_id == t.users.c.id)
        .where(t.tokens.c.hash == hash_secret(token))
    ).first()
    return Account(row.id, row.name, row.admin, None, "token") if row else None


def set_password(
    conn: sa.Connection, name: str, password: str, *, syncml_md5: bool = False
) -> None:
    """Set ``name``'s password (its scrypt hash). ``syncml_md5``: keep
    also ``b64(md5(user:password))``, which SyncML's MD5 login needs (a
    fast hash, that logs in over SyncML as the user: see docs/hub.md); any
    earlier one goes whenever the password is set."""
    if len(password) < 8:
        raise InvalidInput("a password needs at least 8 characters")
    user = _user_row(conn, name)
    conn.execute(
        t.users.update()
        .where(t.users.c.id == user.id)
        .values(password=_hash_password(password))
    )
    s = t.syncml_secrets
    conn.execute(s.delete().where(s.c.user_id == user.id))
    if syncml_md5:
        from accord.syncml.auth import secret

        digest = secret(name, password).decode()
        conn.execute(s.insert().values(user_id=user.id, secret=digest))


def check_password(conn: sa.Connection, name: str, password: str) -> Account | None:
    user = find_user(conn, name)
    if not _password_matches(user.password if user else None, password):
        return None
    assert user is not None
    return Account(user.id, user.name, user.admin, None, "session")


def create_session(conn: sa.Connection, account: Account) -> str:
    cookie = secrets.token_urlsafe(32)
    conn.execute(
        t.sessions.insert().values(
            hash=hash_secret(cookie),
            user_id=account.user_id,
            expires=time.time() + SESSION_DAYS * 86400,
        )
    )
    return cookie


def drop_session(conn: sa.Connection, cookie: str) -> None:
    conn.execute(t.sessions.delete().where(t.sessions.c.hash == hash_secret(cookie)))


def user_by_session(conn: sa.Connection, cookie: str) -> Account | None:
    row = conn.execute(
        sa.select(t.users)
        .join(t.sessions, t.sessions.c.user_id == t.users.c.id)
        .where(
            t.sessions.c.hash == hash_secret(cookie),
            t.sessions.c.expires > time.time(),
        )
    ).first()
    return Account(row.id, row.name, row.admin, None, "session") if row else None


def grant(conn: sa.Connection, name: str, collection_id: int, access: str) -> None:
    """Give ``name`` ``read``, ``write`` or ``none`` on a collection."""
    if access not in ("read", "write", "none"):
        raise InvalidInput(f"unknown access {access!r}", hint="read, write or none")
    user = _user_row(conn, name)
    where = (t.grants.c.user_id == user.id) & (
        t.grants.c.collection_id == collection_id
    )
    conn.execute(t.grants.delete().where(where))
    if access != "none":
        conn.execute(
            t.grants.insert().values(
                user_id=user.id, collection_id=collection_id, write=access == "write"
            )
        )


def access_of(conn: sa.Connection, account: Account, collection_id: int) -> str:
    """``write``, ``read`` or ``none``."""
    if account.admin:
        return "write"
    row = conn.execute(
        sa.select(t.grants.c.write).where(
            t.grants.c.user_id == account.user_id,
            t.grants.c.collection_id == collection_id,
        )
    ).first()
    if row is None:
        return "none"
    return "write" if row.write else "read"


def readable_ids(conn: sa.Connection, account: Account) -> sa.Select[Any]:
    """A query of the ids of the collections ``account`` may read."""
    if account.admin:
        return sa.select(t.collections.c.id)
    return sa.select(t.grants.c.collection_id).where(
        t.grants.c.user_id == account.user_id
    )


def list_users(conn: sa.Connection) -> list[dict[str, Any]]:
    users = conn.execute(sa.select(t.users).order_by(t.users.c.name)).all()
    granted = conn.execute(
        sa.select(t.grants.c.user_id, t.collections.c.name, t.grants.c.write).join(
            t.collections, t.collections.c.id == t.grants.c.collection_id
        )
    ).all()
    out = []
    for user in users:
        mine = {
            g.name: "write" if g.write else "read"
            for g in granted
            if g.user_id == user.id
        }
        out.append(
            {
                "name": user.name,
                "admin": bool(user.admin),
                "password": bool(user.password),
                "grants": mine,
            }
        )
    return out


def list_nodes(conn: sa.Connection, account: Account) -> list[dict[str, Any]]:
    query = sa.select(t.nodes, t.users.c.name.label("user")).join(
        t.users, t.users.c.id == t.nodes.c.user_id
    )
    if not account.admin:
        query = query.where(t.nodes.c.user_id == account.user_id)
    return [
        {
            "id": row.id,
            "name": row.name,
            "user": row.user,
            "created": row.created,
            "last_seen": row.last_seen,
            "revoked": row.revoked,
        }
        for row in conn.execute(query.order_by(t.nodes.c.created))
    ]


def revoke_node(conn: sa.Connection, account: Account, node_id: str) -> None:
    """Revoke a node (an admin any, a user their own); refused at once."""
    row = conn.execute(sa.select(t.nodes).where(t.nodes.c.id == node_id)).first()
    if row is None or (not account.admin and row.user_id != account.user_id):
        raise NotFound(f"no node {node_id!r}", hint="see accord hub status")
    conn.execute(
        t.nodes.update().where(t.nodes.c.id == node_id).values(revoked=time.time())
    )


def failure_delay(conn: sa.Connection, who: list[str]) -> float | None:
    """Seconds to wait before answering a login from ``who``; None: refused
    for now (too many recent failures)."""
    rows = conn.execute(sa.select(t.failures).where(t.failures.c.who.in_(who))).all()
    now = time.time()
    worst = 0
    for row in rows:
        if now - row.last > _LOCK_SECONDS:
            continue
        count = row.count
        if row.who.startswith("addr:"):
            count //= _ADDRESS_SHARE
        worst = max(worst, count)
    if worst >= _LOCK_FAILURES:
        return None
    if worst < _FREE_FAILURES:
        return 0.0
    return min(0.2 * 2 ** (worst - _FREE_FAILURES), 2.0)


def note_failure(conn: sa.Connection, who: list[str], failed: bool) -> None:
    """Count a failed login, or forget past failures after a success."""
    now = time.time()
    for name in who:
        row = conn.execute(
            sa.select(t.failures).where(t.failures.c.who == name)
        ).first()
        conn.execute(t.failures.delete().where(t.failures.c.who == name))
        if failed:
            recent = row is not None and now - row.last <= _LOCK_SECONDS
            count = row.count + 1 if recent and row is not None else 1
            conn.execute(t.failures.insert().values(who=name, count=count, last=now))
