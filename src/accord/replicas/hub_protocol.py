"""The hub's wire protocol, shared by its server (``accord.hub``) and its
client (``accord.replicas.hub``): request signing, error codes, entries and
batches on the wire. Pure: no I/O.

**Signing.** A node signs every request with its secret (HMAC-SHA256) over
the canonical text ``method``, raw path, raw query, the body's sha256,
a Unix timestamp and a random nonce, one per line. The server refuses a
timestamp more than ``SKEW`` seconds away and a nonce it has seen (nonces
are kept in the hub's database, so several server processes agree).

**Errors** are JSON ``{"error": {"code", "message", "key", "hint"}}`` with
an HTTP status; ``CODES`` maps each code to its status and to the accord
error the client raises, so the engine sees a stale write as
:class:`~accord.errors.PreconditionFailed` and re-plans.

**Batches** of small files travel in one body: a 4-byte big-endian length,
a JSON manifest (one object per file: key, like, expect, trash, size), then
the files' bytes one after the other.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from typing import Any

from accord.errors import (
    AccordError,
    AlreadyExists,
    ConfigError,
    InvalidInput,
    NoSpace,
    NotEmpty,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    PullFirst,
    RepairNeeded,
    ReplicaError,
    TransientError,
    Unreachable,
    UnsafeName,
)
from accord.model import Entry

__all__ = [
    "API",
    "CODES",
    "EMPTY_SHA256",
    "HEADER_NODE",
    "HEADER_NONCE",
    "HEADER_SHA256",
    "HEADER_TIME",
    "SCHEME",
    "SKEW",
    "canonical",
    "code_of",
    "decode_batch_head",
    "encode_batch_head",
    "entry_from_wire",
    "entry_to_wire",
    "error_from_body",
    "sign",
]

#: the prefix of the file API (a new major version would be /api/v2)
API = "/api/v1"
SKEW = 300  # seconds a signed request's timestamp may be off
SCHEME = "Accord-HMAC-SHA256"
HEADER_NODE = "x-accord-node"
HEADER_TIME = "x-accord-time"
HEADER_NONCE = "x-accord-nonce"
HEADER_SHA256 = "x-accord-content-sha256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

#: error code -> (HTTP status, accord error raised by the client)
CODES: dict[str, tuple[int, type[AccordError]]] = {
    "bad_request": (400, InvalidInput),
    "unsafe_name": (400, UnsafeName),
    "not_authenticated": (401, PermissionDenied),
    "bad_signature": (401, PermissionDenied),
    "stale_request": (401, PermissionDenied),
    "replayed_request": (401, PermissionDenied),
    "revoked": (401, PermissionDenied),
    "forbidden": (403, PermissionDenied),
    "no_grant": (403, PermissionDenied),
    "not_found": (404, NotFound),
    "exists": (409, AlreadyExists),
    "not_empty": (412, NotEmpty),
    "precondition_failed": (412, PreconditionFailed),
    "pull_first": (412, PullFirst),
    "repair_needed": (409, RepairNeeded),
    "too_large": (413, InvalidInput),
    "too_many_attempts": (429, PermissionDenied),
    "no_space": (507, NoSpace),
    "unavailable": (503, TransientError),
    "internal": (500, TransientError),
}


#: the wire code of each accord error the server raises (most specific first)
_RAISED: tuple[tuple[type[AccordError], str], ...] = (
    (UnsafeName, "unsafe_name"),
    (NotEmpty, "not_empty"),
    (PullFirst, "pull_first"),
    (PreconditionFailed, "precondition_failed"),
    (RepairNeeded, "repair_needed"),
    (AlreadyExists, "exists"),
    (NotFound, "not_found"),
    (PermissionDenied, "forbidden"),
    (NoSpace, "no_space"),
    (Unreachable, "unavailable"),
    (TransientError, "unavailable"),
    (ConfigError, "bad_request"),  # InvalidInput too
)


def code_of(error: AccordError) -> str:
    """The wire code for an accord error raised inside the server."""
    for cls, code in _RAISED:
        if isinstance(error, cls):
            return code
    return "internal"


def canonical(
    method: str, path: str, query: str, body_sha256: str, stamp: str, nonce: str
) -> bytes:
    """The text a node signs for one request."""
    return "\n".join((method.upper(), path, query, body_sha256, stamp, nonce)).encode()


def sign(secret: str, text: bytes) -> str:
    """The hex HMAC-SHA256 of ``text`` under ``secret``."""
    return hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()


def error_from_body(
    status: int, body: Any, where: str, hint: str | None = None
) -> AccordError:
    """The accord error for an error answer of the hub."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return TransientError(f"the hub answered HTTP {status}", where=where)
    code = str(error.get("code", "internal"))
    message = str(error.get("message", code))
    key = error.get("key")
    hint = error.get("hint") or hint
    cls = CODES.get(code, (status, ReplicaError))[1]
    if issubclass(cls, ReplicaError):
        return cls(message, where=where, key=key, hint=hint)
    return cls(f"{message} (in {where})", hint=hint)


def entry_to_wire(entry: Entry) -> list[Any]:
    """An entry as a compact JSON array."""
    return list(entry)


def entry_from_wire(data: Any) -> Entry:
    """An entry from its JSON array (or object) form."""
    if isinstance(data, dict):
        return Entry.from_json(data)
    return Entry(*data)


def encode_batch_head(manifest: list[dict[str, Any]]) -> bytes:
    """The head of a batch body: its manifest's length, then the manifest."""
    text = json.dumps(manifest, separators=(",", ":")).encode()
    return struct.pack(">I", len(text)) + text


def decode_batch_head(prefix: bytes) -> tuple[int, int]:
    """``(manifest length, offset of the manifest)`` from a body's first bytes."""
    if len(prefix) < 4:
        raise InvalidInput("a batch body is too short")
    (length,) = struct.unpack(">I", prefix[:4])
    return length, 4
