"""The wire between accord and its agent on an SSH server.

Frames, both ways, over one SSH channel (the agent's stdin and stdout)::

    length:u32  kind:u8  id:u32  payload[length]

``id`` names a request; one request may carry several frames. Kinds:

==== ======================================================================
C    a call: JSON ``[method, args]``
R    its result: JSON
E    its error: JSON ``{"type", "reason", "key", "hint"}``
D    bytes of the request's stream (file content, scan batches)
Z    the end of that stream
A    credit: the receiver consumed ``payload`` (u32) bytes of the stream
X    the caller no longer wants the stream (a read closed early)
==== ======================================================================

A stream's sender keeps at most :data:`WINDOW` unacknowledged bytes in
flight, so neither end buffers a whole big file in memory and one slow
stream does not stall the others.

This module, like ``agent.py`` and the local place, runs on the server
too: it uses the standard library only and works on Python 3.8 and later.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from accord import errors
from accord.model import Entry, Problem
from accord.replica import TrashItem

TYPE_CHECKING = False  # typing's, without importing typing (see accord/tuples.py)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "HEADER",
    "WINDOW",
    "Inbox",
    "decode_entry",
    "encode_error",
    "encode_item",
    "error_from",
    "frame",
    "frames",
    "run_digest",
]

HEADER = struct.Struct("!IBI")
WINDOW = 8 << 20  # unacknowledged stream bytes a sender keeps in flight
CHUNK = 1 << 20  # the largest data frame
PIPE_SIZE = 1 << 20  # a pipe's buffer, where the system lets us set it
_DIRECT = 64 << 10  # a payload read into a buffer of its own above this size
CALL, RESULT, ERROR, DATA, END, ACK, CANCEL = (ord(c) for c in "CREDZAX")
_COUNT = struct.Struct("!I")


def frame(kind: int, ident: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(len(payload), kind, ident) + payload


# one encoder for every frame; values are trees of lists, dicts and
# scalars built here, never circular, so the check for cycles is left out
# (a tenth of a listing's encoding)
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def dumps(value: Any) -> bytes:
    """``value`` as JSON, ASCII only: a name that is not UTF-8 (surrogate
    escapes) travels as ``\\udcXX`` escapes and arrives byte for byte."""
    return _ENCODER.encode(value).encode()


def loads(data: bytes) -> Any:
    return json.loads(data)


def ack(ident: int, count: int) -> bytes:
    return frame(ACK, ident, _COUNT.pack(count))


def ack_count(payload: bytes) -> int:
    return int(_COUNT.unpack(payload)[0])


def frames(read: Callable[[int], bytes]) -> Iterator[tuple[int, int, bytes]]:
    """``(kind, id, payload)`` of each frame in what ``read(n)`` returns,
    until it returns nothing (the other end closed)."""
    buffer = bytearray()
    while True:
        data = read(1 << 20)
        if not data:
            return
        buffer += data
        with memoryview(buffer) as view:  # one copy per payload, not two
            found, start, _ = _whole_frames(buffer, view)
        del buffer[:start]
        yield from found


def _whole_frames(
    buffer: bytearray, view: memoryview
) -> tuple[list[tuple[int, int, bytes]], int, tuple[int, int, int]]:
    """The whole frames at the start of ``buffer`` (``view`` is over it),
    the offset where they end, and the header (length, kind, id) of a
    frame begun after them (zeros when no header is there whole)."""
    size = HEADER.size
    start, found = 0, []
    while len(buffer) - start >= size:
        length, kind, ident = HEADER.unpack_from(buffer, start)
        end = start + size + length
        if len(buffer) < end:
            return found, start, (length, kind, ident)
        found.append((kind, ident, bytes(view[start + size : end])))
        start = end
    return found, start, (0, 0, 0)


def frames_from(
    fd: int, before_read: Callable[[], object] | None = None
) -> Iterator[tuple[int, int, Any]]:
    """As :func:`frames`, reading the descriptor ``fd`` itself (the agent's
    stdin), until it ends (a frame it cuts short is dropped, as there);
    ``before_read()`` is called before each read that may wait. A
    payload of more than :data:`_DIRECT` bytes, up to a data frame's most
    (:data:`CHUNK`: what is allocated for it is bounded), is read into a
    buffer of its own (a ``bytearray``), where the rest of it goes straight
    from the channel: its bytes are copied once on their way in, not three
    times (into a bytes object, onto the buffer, out of it)."""
    buffer = bytearray()
    size = HEADER.size
    while True:
        if before_read is not None:
            before_read()
        data = os.read(fd, 1 << 20)
        if not data:
            return
        buffer += data
        with memoryview(buffer) as view:
            found, start, (length, kind, ident) = _whole_frames(buffer, view)
            whole = not _DIRECT < length <= CHUNK
            if not whole:  # a big payload begun: the rest read into its own
                payload = bytearray(length)
                have = len(buffer) - start - size
                payload[:have] = view[start + size :]
                start = len(buffer)
        del buffer[:start]
        yield from found
        if not whole:
            if not _fill(fd, payload, have, before_read):
                return  # the channel ended within the frame: as at its end
            yield kind, ident, payload


def _fill(
    fd: int, payload: bytearray, have: int, before_read: Callable[[], object] | None
) -> bool:
    """Read into ``payload`` from ``have`` on, until it is full; False if
    the channel ends first."""
    with memoryview(payload) as view:
        while have < len(payload):
            if before_read is not None:
                before_read()
            got = os.readv(fd, [view[have:]])
            if not got:
                return False
            have += got
    return True


def widen_pipes(*fds: int) -> None:
    """Give pipes among ``fds`` 1 MiB of buffer (Linux; 64 KiB by default),
    so a batch crosses in a few writes and reads, not dozens of wake-ups.
    Anything else (a socket, another system) is left as it is."""
    if not sys.platform.startswith("linux"):
        return
    import fcntl

    setting = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Python 3.10+ names it
    for fd in fds:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, setting, PIPE_SIZE)


# -- values -------------------------------------------------------------------
def encode_entry(entry: Entry | None) -> list[Any] | None:
    return None if entry is None else list(entry)


def decode_entry(data: list[Any] | None) -> Entry | None:
    return None if data is None else Entry(*data)


def encode_item(item: Entry | Problem | str) -> Any:
    """One scan item: an entry (a list), a known key (a string) or a problem."""
    if isinstance(item, Entry):
        return list(item)
    if isinstance(item, Problem):
        return {"p": [item.key, item.message, item.retryable, item.notice]}
    return item


def decode_item(data: Any) -> Entry | Problem | str:
    if isinstance(data, list):
        return Entry(*data)
    if isinstance(data, dict):
        key, message, retryable, notice = data["p"]
        return Problem(key, None, message, retryable, notice=notice)
    return str(data)


def run_digest(pairs: Iterable[tuple[str, str]]) -> str:
    """The digest of a run of ``(key, version)`` pairs, as the agent sends
    it for a run of unchanged items and the client checks it against its
    archive's rows: each string followed by a NUL (no name or version holds
    one), in UTF-8 with surrogates kept (names that are not UTF-8)."""
    text = "\0".join(map("\0".join, pairs)) + "\0"  # each pair joined in C
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def encode_trash(item: TrashItem) -> list[Any]:
    return [item.run, item.key, list(item.entry)]


def decode_trash(data: list[Any]) -> TrashItem:
    run, key, entry = data
    return TrashItem(run, key, Entry(*entry))


# -- errors -------------------------------------------------------------------
def encode_error(exc: BaseException) -> dict[str, Any]:
    """An error raised on the server, as data (the server's paths left out)."""
    if isinstance(exc, errors.ReplicaError):
        return {
            "type": type(exc).__name__,
            "reason": exc.reason,
            "key": exc.key,
            "hint": exc.hint,
        }
    if isinstance(exc, errors.AccordError):
        return {"type": type(exc).__name__, "reason": exc.message, "hint": exc.hint}
    return {"type": "ReplicaError", "reason": f"the agent failed: {exc!r}"}


def error_from(data: dict[str, Any], where: str) -> errors.AccordError:
    """The error an agent reported, raised here against the place's URL."""
    cls = getattr(errors, str(data.get("type")), None)
    reason = str(data.get("reason") or "failed")
    hint = data.get("hint")
    if isinstance(cls, type) and issubclass(cls, errors.ReplicaError):
        return cls(reason, where=where, key=data.get("key"), hint=hint)
    if isinstance(cls, type) and issubclass(cls, errors.AccordError):
        return cls(reason, hint=hint)
    return errors.ReplicaError(reason, where=where, key=data.get("key"), hint=hint)


# -- streams ------------------------------------------------------------------
class Acker:
    """Grants a stream's sender credit, in steps of a quarter window (one
    acknowledgement per few megabytes, not one per frame)."""

    def __init__(self, send: Any, ident: int) -> None:
        self._send = send
        self._ident = ident
        self._owed = 0

    def __call__(self, count: int) -> None:
        self._owed += count
        if self._owed >= WINDOW // 4:
            owed, self._owed = self._owed, 0
            self._send(ack(self._ident, owed))


class Inbox:
    """Bytes of one stream as they arrive; read by one consumer thread.

    ``on_take(n)`` is called as the consumer takes bytes, to grant the
    sender credit.
    """

    def __init__(self, on_take: Any = None) -> None:
        self._blocks: deque[bytes] = deque()
        self._cond = threading.Condition()
        self._ended = False
        self._error: BaseException | None = None
        self._on_take = on_take

    def feed(self, block: bytes) -> None:
        with self._cond:
            self._blocks.append(block)
            self._cond.notify()

    def finish(self, error: BaseException | None = None) -> None:
        with self._cond:
            self._ended = True
            self._error = self._error or error
            self._cond.notify_all()

    def next_block(self) -> bytes:
        """The next block, or b"" at the end of the stream."""
        with self._cond:
            while not self._blocks and not self._ended:
                self._cond.wait()
            if self._blocks:
                block = self._blocks.popleft()
            elif self._error is not None:
                raise self._error
            else:
                return b""
        if self._on_take is not None:
            self._on_take(len(block))
        return block

    @property
    def ended(self) -> bool:
        return self._ended and not self._blocks

    @property
    def waiting(self) -> bool:
        """True while there is nothing to take yet (``next_block`` would
        wait for the sender)."""
        return not self._blocks and not self._ended


class Reader:
    """A file-like reader over an :class:`Inbox`."""

    def __init__(self, inbox: Inbox, on_close: Any = None) -> None:
        self._inbox = inbox
        self._rest = b""
        self._on_close = on_close
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = [self._rest]
            self._rest = b""
            while block := self._inbox.next_block():
                parts.append(block)
            return b"".join(parts)
        if not self._rest:
            self._rest = self._inbox.next_block()
        block, self._rest = self._rest[:n], self._rest[n:]
        return block

    def prime(self) -> None:
        """Wait for the first bytes (or the error that stops them)."""
        if not self._rest:
            self._rest = self._inbox.next_block()

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._on_close is not None:
                self._on_close(self._inbox.ended)

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Credit:
    """The sending side of a stream's window."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._in_flight = 0
        self.cancelled = False
        self.broken: BaseException | None = None

    def spend(self, count: int) -> None:
        """Wait until ``count`` more bytes may be sent."""
        with self._cond:
            while (
                self._in_flight + count > WINDOW
                and self._in_flight
                and not self.cancelled
                and self.broken is None
            ):
                self._cond.wait()
            if self.broken is not None:
                raise self.broken
            self._in_flight += count

    def grant(self, count: int) -> None:
        with self._cond:
            self._in_flight -= count
            self._cond.notify_all()

    def cancel(self, error: BaseException | None = None) -> None:
        with self._cond:
            self.cancelled = True
            self.broken = self.broken or error
            self._cond.notify_all()
