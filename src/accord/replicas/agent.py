"""accord's agent: the server side of an ``sftp://`` place, over SSH.

accord starts this on the server through the SSH connection it already has
(``python3 -S -c BOOT``, see ``ssh_launch.py``), sends it the few modules
it needs as one zip file (unpacked in the server's cache folder, checked
against the bundle's digest at each start), and then talks to it
over the channel's stdin and stdout with the frames of ``wire.py``. The
agent serves every call of the Replica contract with the local place
(``local.py``) on the server's own disk: scans with ``scandir`` and
nanosecond times, content digests computed where the bytes are, atomic
no-clobber installs, the trash and accord's own files, exactly as for a
local folder. So a transfer costs one round trip, many are in flight at
once, and the bytes travel through OpenSSH's own channel.

Standard library only (plus ``pathspec`` for ignore rules, sent along);
runs on Python 3.8 and later.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import IO, Any

from accord.errors import ReplicaError
from accord.keys import IgnoreRules
from accord.model import Entry
from accord.replica import Replica, WriteItem
from accord.replicas import wire
from accord.replicas.local import LocalReplica

__all__ = ["main"]

_WORKERS = 8
_BATCH = 1000  # scan items per data frame

# how each call's arguments are decoded: s = as sent, E = an entry,
# e = an entry or None, T = a trash item
_SIGNATURES = {
    "exists": "",
    "open": "s",
    "is_empty_root": "",
    "stat": "s",
    "digest": "E",
    "write": "sEes",
    "write_batch": "s",
    "make_dir": "sEe",
    "make_link": "sEes",
    "set_meta": "sEE",
    "delete": "sEs",
    "move": "ssE",
    "clean_temp": "",
    "flush": "",
    "close": "",
    "meta_create": "ss",
    "meta_read": "s",
    "meta_delete": "s",
    "meta_list": "s",
    "root_file_exists": "s",
    "trash_list": "",
    "trash_runs": "",
    "trash_restore": "Ts",
    "trash_purge": "s",
    "forget_meta": "",
    "leave_as_found": "",
    "hold_lock": "sssss",
    "drop_lock": "s",
}
# calls quick enough to run in the reading thread, in order
_QUICK = frozenset(
    (
        "hello", "exists", "open", "close", "is_empty_root", "stat", "make_dir",
        "make_link", "set_meta", "delete", "move", "meta_create", "meta_read",
        "meta_delete", "meta_list", "root_file_exists", "trash_runs",
        "leave_as_found", "drop_lock",
    )
)  # fmt: skip
_DECODE: dict[str, Callable[[Any], Any]] = {
    "s": lambda value: value,
    "E": wire.decode_entry,
    "e": wire.decode_entry,
    "T": wire.decode_trash,
}


class _Held:
    """A write whose bytes are still arriving, kept whole while small."""

    __slots__ = ("args", "blocks", "method", "size")

    def __init__(self, method: str, args: list[Any]) -> None:
        self.method = method
        self.args = args
        self.blocks: list[bytes] = []
        self.size = 0


class _Frames:
    """The bytes of a batch as their data frames arrived."""

    __slots__ = ("blocks",)

    def __init__(self, blocks: list[bytes]) -> None:
        self.blocks = blocks

    def pieces(self, sizes: list[int]) -> list[Any]:
        """The batch cut in pieces of ``sizes``: a view of its frame where a
        piece lies within one (the client sends whole files in a frame),
        else its parts joined. ValueError when the bytes are too few."""
        views = [memoryview(block) for block in self.blocks]
        found: list[Any] = []
        index, at = 0, 0
        for size in sizes:
            while index < len(views) and at == len(views[index]):
                index, at = index + 1, 0
            if index < len(views) and at + size <= len(views[index]):
                found.append(views[index][at : at + size])
                at += size
                continue
            parts, left = [], size
            while left:
                if index >= len(views):
                    raise ValueError("a batch's bytes are fewer than its sizes")
                take = min(left, len(views[index]) - at)
                parts.append(views[index][at : at + take])
                at, left = at + take, left - take
                if at == len(views[index]):
                    index, at = index + 1, 0
            found.append(b"".join(parts))
        return found


class _Workers:
    """Up to ``size`` threads running the calls given to :meth:`submit`,
    started as they are needed. (Not concurrent.futures: it imports
    logging, traceback and more, a good part of the agent's start.)"""

    def __init__(self, size: int) -> None:
        self._size = size
        self._tasks: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for a task, not yet woken for one
        self._closed = False

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        with self._cond:
            self._tasks.append((function, args))
            if self._idle:
                self._idle -= 1
                self._cond.notify()
            elif len(self._threads) < self._size:
                thread = threading.Thread(target=self._work, daemon=True)
                self._threads.append(thread)
                thread.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._tasks:
                    if self._closed:
                        return
                    self._idle += 1
                    self._cond.wait()
                function, args = self._tasks.popleft()
            function(*args)  # Agent.run: it answers every error itself

    def close(self) -> None:
        """Wait for every task given, then for the threads to end."""
        with self._cond:
            self._closed = True
            self._idle = 0
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()


class Agent:
    """Serves one place over a pair of file descriptors.

    Quick calls, and writes whose bytes arrive whole (up to one chunk), run
    in the reading thread, in order, and their replies leave together when
    the input runs dry: one packet answers many requests. Scans, reads,
    digests and big writes run in worker threads, streaming with credit.
    """

    def __init__(self, fd_in: int, fd_out: int) -> None:
        self._in = fd_in
        self._out = fd_out
        self._send_lock = threading.Lock()
        self._outbox: list[bytes] = []
        self._held: dict[int, _Held] = {}
        self._inboxes: dict[int, wire.Inbox] = {}
        self._credits: dict[int, wire.Credit] = {}
        self._table_lock = threading.Lock()
        self._pool: _Workers | None = None
        self.replica: Replica | None = None
        self.rules = False  # the agent applies ignore rules itself
        self._closed = False  # the client closed the place: nothing follows

    # -- output -------------------------------------------------------------
    def send(self, data: bytes) -> None:
        with self._send_lock:
            view = memoryview(data)
            while view:
                view = view[os.write(self._out, view) :]

    def _flush_outbox(self) -> None:
        if self._outbox:
            data, self._outbox = b"".join(self._outbox), []
            self.send(data)

    # -- input --------------------------------------------------------------
    def _read(self, size: int) -> bytes:
        self._flush_outbox()  # about to wait: answer what is done
        return os.read(self._in, size)

    def serve(self) -> None:
        self._pool = pool = _Workers(_WORKERS)
        try:
            for kind, ident, payload in wire.frames(self._read):
                if kind == wire.CALL:
                    self._on_call(ident, payload)
                    if self._closed:
                        # answered, and the client sends nothing more: leave
                        # now, not once its end of the channel is closed too
                        self._flush_outbox()
                        break
                elif kind == wire.DATA:
                    self._on_data(ident, payload)
                elif kind == wire.END:
                    self._on_end(ident)
                else:
                    self._credit(kind, ident, payload)
            self._hang_up()
        finally:
            pool.close()
        if self.replica is not None:
            self.replica.close()

    def _on_call(self, ident: int, payload: bytes) -> None:
        method, args = wire.loads(payload)
        if method in ("write", "write_batch"):
            self._held[ident] = _Held(method, args)
        elif method in _QUICK:
            self.run(ident, method, args, None, inline=True)
            self._closed = method == "close"
        else:
            self._submit(ident, method, args, None)

    def _on_data(self, ident: int, payload: bytes) -> None:
        held = self._held.get(ident)
        if held is None:
            with self._table_lock:
                inbox = self._inboxes.get(ident)
            if inbox is not None:
                inbox.feed(payload)
            return  # else the call already ended (it failed early): drop it
        held.blocks.append(payload)
        held.size += len(payload)
        if held.size > wire.CHUNK and held.method == "write":
            # a big file: stream it to a worker (a batch is small: kept whole)
            del self._held[ident]
            inbox = wire.Inbox(wire.Acker(self.send, ident))
            for block in held.blocks:
                inbox.feed(block)
            with self._table_lock:
                self._inboxes[ident] = inbox
            self._submit(ident, "write", held.args, wire.Reader(inbox))

    def _on_end(self, ident: int) -> None:
        held = self._held.pop(ident, None)
        if held is not None:
            data: IO[bytes] | _Frames
            if held.method == "write_batch":
                data = _Frames(held.blocks)
            else:
                data = io.BytesIO(b"".join(held.blocks))
            self.run(ident, held.method, held.args, data, inline=True)  # type: ignore[arg-type]
            return
        with self._table_lock:
            inbox = self._inboxes.pop(ident, None)
        if inbox is not None:
            inbox.finish()

    def _submit(
        self, ident: int, method: str, args: list[Any], data: IO[bytes] | None
    ) -> None:
        assert self._pool is not None
        self._pool.submit(self.run, ident, method, args, data)

    def _hang_up(self) -> None:
        """The client is gone: stop every call still waiting on it."""
        gone = ReplicaError("the client went away")
        self._held.clear()
        with self._table_lock:
            inboxes, self._inboxes = self._inboxes, {}
            credits, self._credits = self._credits, {}
        for inbox in inboxes.values():
            inbox.finish(gone)  # a write in progress drops its temp file
        for credit in credits.values():
            credit.cancel(gone)

    def _credit(self, kind: int, ident: int, payload: bytes) -> None:
        """Credit for a stream we send, or the client stopping a stream."""
        stopped = ReplicaError("the sender stopped the copy")
        with self._table_lock:
            credit = self._credits.get(ident)
            inbox = self._inboxes.pop(ident, None) if kind == wire.CANCEL else None
        if kind == wire.ACK:
            if credit is not None:
                credit.grant(wire.ack_count(payload))
            return
        if credit is not None:
            credit.cancel()
        if inbox is not None:  # the source of a write failed: drop the temp file
            inbox.finish(stopped)
        if self._held.pop(ident, None) is not None:
            self._outbox.append(self._error_frame(ident, stopped))

    # -- calls --------------------------------------------------------------
    def run(
        self,
        ident: int,
        method: str,
        args: list[Any],
        data: IO[bytes] | None,
        *,
        inline: bool = False,
    ) -> None:
        try:
            value = self.call(ident, method, args, data)
            reply = wire.frame(wire.RESULT, ident, wire.dumps(value))
        except BaseException as exc:
            reply = self._error_frame(ident, exc)
        finally:
            with self._table_lock:
                self._inboxes.pop(ident, None)
                self._credits.pop(ident, None)
        if inline:
            self._outbox.append(reply)
        else:
            self.send(reply)

    @staticmethod
    def _error_frame(ident: int, exc: BaseException) -> bytes:
        return wire.frame(wire.ERROR, ident, wire.dumps(wire.encode_error(exc)))

    def call(
        self, ident: int, method: str, args: list[Any], data: IO[bytes] | None
    ) -> Any:
        """Perform one call; ``data`` is the bytes a write carries."""
        if method == "hello":
            return self.hello(*args)
        if method in ("scan", "open_read"):
            return self.stream(ident, method, args)
        replica = self.replica
        if replica is None or method not in _SIGNATURES:
            raise ValueError(f"unknown call {method!r}")
        signature = _SIGNATURES[method]
        values = [_DECODE[code](value) for code, value in zip(signature, args)]  # noqa: B905 (3.8)
        if method == "write_batch":
            assert isinstance(data, _Frames)
            return self.write_batch(replica, args[0], data)
        if method == "write":
            assert data is not None
            key, like, expect, trash = values
            return replica.write(key, data, like=like, expect=expect, trash=trash)
        if method in ("make_dir", "make_link", "set_meta"):
            key, like, expect, *rest = values
            extra = {"trash": rest[0]} if rest else {}
            return getattr(replica, method)(key, like=like, expect=expect, **extra)
        if method == "delete":
            key, expect, trash = values
            return replica.delete(key, expect=expect, trash=trash)
        if method == "move":
            key, new_key, expect = values
            return replica.move(key, new_key, expect=expect)
        if method == "open":
            replica.open(*values)
            return replica.capabilities.to_json()
        if method == "meta_create":
            name, data = values
            return replica.meta_create(name, base64.b64decode(data))
        if method == "meta_read":
            data = replica.meta_read(values[0])
            return None if data is None else base64.b64encode(data).decode()
        if method == "hold_lock":
            key, shared, timeout, note_key, note = values
            return replica.hold_lock(
                key,
                shared=bool(shared),
                timeout=float(timeout),
                note_key=note_key,
                note=base64.b64decode(note),
            )
        if method == "trash_list":
            return list(replica.trash_list())
        return getattr(replica, method)(*values)

    @staticmethod
    def write_batch(replica: Replica, items: list[Any], data: _Frames) -> list[Any]:
        """Several small files, their bytes one after another in the data
        frames of ``data`` (each file passed on as a view of its frame, not
        a copy): the local place's ``write_batch``; each new entry, or the
        error that stopped it."""
        decode = wire.decode_entry
        pieces = data.pieces([item[4] for item in items])
        batch = [
            WriteItem(key, body, decode(like), decode(expect), trash)  # type: ignore[arg-type]
            for (key, like, expect, trash, _), body in zip(items, pieces)  # noqa: B905 (3.8)
        ]
        return [
            {"error": wire.encode_error(done)} if isinstance(done, Exception) else done
            for done in replica.write_batch(batch)
        ]

    def hello(self, root: str, case_sensitive: bool | None) -> dict[str, Any]:
        self.replica = LocalReplica(root, case_sensitive=case_sensitive)
        # pathspec needs Python 3.9: older ones leave ignore rules to accord.
        # Found, not imported: a scan without rules never needs it.
        from importlib.util import find_spec

        self.rules = sys.version_info >= (3, 9) and find_spec("pathspec") is not None
        return {
            "python": list(sys.version_info[:3]),
            "executable": sys.executable,
            "root": self.replica.root,
            "ignore_rules": self.rules,
            "spots": [list(spot) for spot in self.replica.spots()],
        }

    def stream(self, ident: int, method: str, args: list[Any]) -> None:
        """Send a file's bytes, or scan batches, as data frames."""
        replica = self.replica
        assert replica is not None
        credit = wire.Credit()
        with self._table_lock:
            self._credits[ident] = credit
        if method == "open_read":
            with replica.open_read(args[0]) as handle:
                while not credit.cancelled:
                    block = handle.read(wire.CHUNK)
                    if not block:
                        break
                    self._push(ident, credit, block)
        else:
            batch: list[Any] = []
            rules = IgnoreRules(args[0]) if self.rules else None
            encode = wire.encode_item
            for item in replica.scan(rules):
                # an entry is a tuple, which JSON writes as the list it sends
                batch.append(item if type(item) is Entry else encode(item))
                if len(batch) >= _BATCH:
                    self._push(ident, credit, wire.dumps(batch))
                    batch = []
                if credit.cancelled:
                    break
            if batch:
                self._push(ident, credit, wire.dumps(batch))
        self.send(wire.frame(wire.END, ident))

    def _push(self, ident: int, credit: wire.Credit, block: bytes) -> None:
        credit.spend(len(block))
        self.send(wire.frame(wire.DATA, ident, block))


def main() -> None:
    """Serve on stdin and stdout; nothing else may write to stdout."""
    fd_in, fd_out = os.dup(0), os.dup(1)
    wire.widen_pipes(fd_in, fd_out)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)  # a stray print() cannot corrupt the frames
    with contextlib.suppress(KeyboardInterrupt):  # the client went away
        Agent(fd_in, fd_out).serve()
    # served, and the place closed: nothing is left but the interpreter's
    # teardown (freeing each module and object), which the client's exit
    # would wait for
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
