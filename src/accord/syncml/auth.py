"""SyncML authentication: ``syncml:auth-basic`` and ``syncml:auth-md5``.

Basic sends ``b64(user:password)``. MD5 sends
``b64(md5(b64(md5(user:password)) + ":" + nonce))`` with the user name in
the header's ``Source/LocName``; the nonce is the one the server gave in
its last challenge (``NextNonce``, base64), and a server gives a fresh one
with every accepted login, so a captured credential is never good twice
("nonce chaining"). A server needs only ``secret = b64(md5(user:password))``
to check both kinds, so that is what accord's server keeps.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from typing import NamedTuple

from accord.syncml.message import Chal, Cred

__all__ = [
    "BASIC",
    "MD5",
    "Login",
    "basic_cred",
    "md5_cred",
    "new_nonce",
    "read_login",
    "secret",
    "verify",
]

BASIC = "syncml:auth-basic"
MD5 = "syncml:auth-md5"


def secret(user: str, password: str) -> bytes:
    """``b64(md5(user:password))``: enough to check either kind of credential."""
    digest = hashlib.md5(f"{user}:{password}".encode()).digest()
    return base64.b64encode(digest)


def basic_cred(user: str, password: str) -> Cred:
    return Cred(BASIC, "b64", base64.b64encode(f"{user}:{password}".encode()).decode())


def md5_cred(user: str, password: str, nonce: bytes) -> Cred:
    return Cred(MD5, "b64", _md5_digest(secret(user, password), nonce))


def _md5_digest(user_secret: bytes, nonce: bytes) -> str:
    digest = hashlib.md5(user_secret + b":" + nonce).digest()
    return base64.b64encode(digest).decode()


def new_nonce() -> str:
    """A fresh nonce, as a server sends it (base64 of 12 random bytes)."""
    return base64.b64encode(os.urandom(12)).decode()


def decode_nonce(text: str | None) -> bytes:
    if not text:
        return b""
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return text.encode()


class Login(NamedTuple):
    """Who a credential claims to be."""

    kind: str  # BASIC or MD5
    user: str
    password: str | None  # Basic only
    digest: str | None  # MD5 only


def read_login(cred: Cred, loc_name: str | None) -> Login | None:
    """The claim in ``cred``; None when it cannot be read."""
    data = cred.data.strip()
    if cred.type == BASIC:
        try:
            raw = (
                base64.b64decode(data, validate=False)
                if cred.format == "b64"
                else data.encode()
            )
            user, sep, password = raw.decode("utf-8").partition(":")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return None
        return Login(BASIC, user, password, None) if sep else None
    if cred.type == MD5 and loc_name:
        return Login(MD5, loc_name, None, data)
    return None


def verify(login: Login, user_secret: bytes | None, nonce: bytes) -> bool:
    """True when ``login`` proves knowledge of the password behind the secret."""
    if user_secret is None:
        return False
    if login.kind == BASIC and login.password is not None:
        return hmac.compare_digest(secret(login.user, login.password), user_secret)
    if login.kind == MD5 and login.digest is not None:
        return hmac.compare_digest(_md5_digest(user_secret, nonce), login.digest)
    return False


def challenge(nonce: str) -> Chal:
    """A challenge asking for MD5 with ``nonce`` next."""
    return Chal(MD5, "b64", nonce)
