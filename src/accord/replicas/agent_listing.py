"""The listings the agent keeps on the server, to send only what changed.

A no-op over SSH was mostly the agent's listing: every item of the tree
encoded as JSON on the server, decoded and merged with the archive on the
client. The agent keeps, in the server's cache folder, the ``(key,
version)`` pairs it expects a client's archive to hold for the tree (its
last listing for that client, with what it wrote for it since), named by a
token the client sends (a name for its archive and side) and the tree. The
next listing for that client compares the scan with them and sends, for a
run of items that are as kept, only the run's first key, its length and
the digest of its pairs (``wire.run_digest``); items that differ, new ones
and problems go as they always did.

The kept pairs only predict: the client checks each run's digest against
its own archive rows, and passes the run as unchanged only when they are
exactly the run's pairs. So a kept listing that is stale, another
client's, damaged or gone costs speed, never a change unseen; on a
digest that does not match, the client asks for the rest of the listing
in full. Keeping is best-effort: a file that cannot be written (a full
disk) leaves the next listing to be sent in full.

Standard library only, Python 3.8 and later: this runs on the server.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Iterable

__all__ = ["VERSION", "KeptRows", "listing_name", "read_kept", "write_kept"]

#: the listings with runs this module speaks of, as the agent says at hello
#: (a client asks for runs only of an agent that says this version)
VERSION = 1

_MAGIC = b"accord listing 1 "
_STALE = 30 * 86400  # kept listings unused this long are removed
#: items a kept listing holds at most: the agent holds it, and the listing
#: it makes, in memory (about 250 bytes an item); a bigger tree is listed
#: in full, as before
MOST = 500_000


def listing_name(token: str, root: str) -> str:
    """The file naming a client's (``token``) kept listing of ``root``."""
    text = f"{token}\0{root}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(text).hexdigest()[:32]


def read_kept(folder: str, name: str) -> list[tuple[str, str]] | None:
    """The kept pairs, or None when there are none or they are damaged
    (checked against the digest the file begins with)."""
    try:
        with open(os.path.join(folder, name), "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    end = data.find(b"\n")
    body = memoryview(data)[end + 1 :]  # not copied
    if end < 0 or data[:end] != _MAGIC + hashlib.sha256(body).hexdigest().encode():
        return None
    if not body:
        return []
    try:
        parts = str(body, "utf-8", "surrogatepass").split("\0")
    except UnicodeDecodeError:
        return None
    if len(parts) % 2:
        return None
    return list(zip(parts[0::2], parts[1::2]))  # noqa: B905 (3.8)


def write_kept(folder: str, name: str, pairs: Iterable[tuple[str, str]]) -> None:
    """Keep ``pairs`` (in key order) as ``name``, whole or not at all (a
    temporary file renamed over it); best-effort, never raises OSError."""
    flat = "\0".join(part for pair in pairs for part in pair)
    body = flat.encode("utf-8", "surrogatepass")
    data = _MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body
    path = os.path.join(folder, name)
    temp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        with open(temp, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(temp)
        return
    _tidy(folder)


def _tidy(folder: str) -> None:
    """Remove kept listings (and stray temporary files) not read for 30
    days (by their access time, as the bootstrap tidies old agents: a
    listing read at every no-op is not rewritten)."""
    now = time.time()
    with contextlib.suppress(OSError), os.scandir(folder) as found:
        for item in found:
            with contextlib.suppress(OSError):
                if now - item.stat().st_atime > _STALE:
                    os.remove(item.path)


class KeptRows:
    """Kept pairs read alongside a scan in key order (the ``known`` the
    local place's scan takes): ``get(key)`` moves to ``key`` and gives its
    kept version, ``same(pairs)`` passes a run of pairs equal to the next
    kept ones. What was matched last is left in ``found`` (the version
    ``get`` gave), ``skipped`` (``get`` passed over kept keys the scan did
    not show: gone since) and ``passed`` (the pairs ``same`` passed)."""

    __slots__ = ("_at", "_rows", "found", "passed", "skipped")

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        self._rows = rows
        self._at = 0
        self.found: str | None = None
        self.skipped = False
        self.passed: list[tuple[str, str]] = []

    def get(self, key: str, default: str | None = None) -> str | None:
        rows, at = self._rows, self._at
        end = len(rows)
        while at < end and rows[at][0] < key:
            at += 1
        self.skipped = at > self._at
        if at < end and rows[at][0] == key:
            self._at = at + 1
            self.found = rows[at][1]
            return self.found
        self._at = at
        return default

    def same(self, pairs: list[tuple[str, str]]) -> bool:
        at = self._at
        if self._rows[at : at + len(pairs)] != pairs:
            return False
        self._at = at + len(pairs)
        self.passed = pairs
        return True
