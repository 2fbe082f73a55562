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

import binascii
import contextlib
import gc
import io
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator

from accord.errors import AccordError, ReplicaError
from accord.keys import IgnoreRules
from accord.model import Entry, Problem
from accord.replica import Replica, WriteItem
from accord.replicas import agent_listing, wire
from accord.replicas.agent_listing import KeptRows, listing_name, read_kept, write_kept
from accord.replicas.local import LocalReplica

TYPE_CHECKING = False  # typing's, without importing typing (see accord/tuples.py)
if TYPE_CHECKING:
    from typing import IO, Any

__all__ = ["main"]

_WORKERS = 8
_BATCH = 1000  # scan items per data frame
_RUN = 4096  # unchanged items a run (one digest) covers at most

# how each call's arguments are decoded: s = as sent, E = an entry,
# e = an entry or None, T = a trash item
_SIGNATURES = {
    "exists": "",
    "missing_parent": "",
    "open": "s",
    "is_empty_root": "",
    "stat": "s",
    "digest": "E",
    "write": "sEes",
    "write_batch": "s",
    "make_dir": "sEe",
    "make_dirs": "s",
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
    "new_listing": "s",
}
# calls quick enough to run in the reading thread, in order
_QUICK = frozenset(
    (
        "hello", "exists", "missing_parent", "open", "close", "is_empty_root",
        "stat", "make_dir", "make_dirs",
        "make_link", "set_meta", "delete", "move", "meta_create", "meta_read",
        "meta_delete", "meta_list", "root_file_exists", "trash_runs",
        "leave_as_found", "drop_lock", "new_listing",
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

    def __init__(self, fd_in: int, fd_out: int, listings: str | None = None) -> None:
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
        #: where kept listings live (None: none are kept)
        self._listings = listings
        #: the last whole listing made for a client that sent a token: its
        #: file name, its pairs, and whether they are the kept ones
        self._listed: tuple[str, list[tuple[str, str]], bool] | None = None
        #: what this session wrote, by key (None: deleted), for the next one
        self._written: dict[str, str | None] = {}
        #: the kept pairs and listing done with, held until the agent ends
        #: or lists again (``_list``, ``_keep_listing``)
        self._spent: list[object] = []

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
    def serve(self) -> None:
        self._pool = pool = _Workers(_WORKERS)
        try:
            # before each read, which may wait: answer what is done
            for kind, ident, payload in wire.frames_from(self._in, self._flush_outbox):
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
        if method == "make_dirs":
            return self.make_dirs(replica, args[0])
        if method == "write":
            assert data is not None
            key, like, expect, trash = values
            new = replica.write(key, data, like=like, expect=expect, trash=trash)
            return self._wrote(new)
        if method in ("make_dir", "make_link", "set_meta"):
            key, like, expect, *rest = values
            extra = {"trash": rest[0]} if rest else {}
            method_of = getattr(replica, method)
            return self._wrote(method_of(key, like=like, expect=expect, **extra))
        if method == "delete":
            key, expect, trash = values
            replica.delete(key, expect=expect, trash=trash)
            self._written[key] = None
            return None
        if method == "move":
            key, new_key, expect = values
            moved = replica.move(key, new_key, expect=expect)
            self._written[key] = None
            return self._wrote(moved)
        if method == "trash_restore":
            return self._wrote(replica.trash_restore(*values))
        if method == "close":
            self._keep_listing()
            return replica.close()
        if method == "new_listing":  # the client made the place, empty
            if self._listings is not None:
                name = listing_name(str(values[0]), replica.root)
                self._listed = (name, [], False)
            return None
        if method == "open":
            replica.open(*values)
            return replica.capabilities.to_json()
        if method == "meta_create":
            name, data = values
            return replica.meta_create(name, binascii.a2b_base64(data))
        if method == "meta_read":
            data = replica.meta_read(values[0])
            if data is None:
                return None
            return binascii.b2a_base64(data, newline=False).decode()
        if method == "hold_lock":
            key, shared, timeout, note_key, note = values
            return replica.hold_lock(
                key,
                shared=bool(shared),
                timeout=float(timeout),
                note_key=note_key,
                note=binascii.a2b_base64(note),
            )
        if method == "trash_list":
            return list(replica.trash_list())
        return getattr(replica, method)(*values)

    def _wrote(self, entry: Entry) -> Entry:
        """Note what a write left under its key (for the next listing)."""
        self._written[entry.key] = entry.version
        return entry

    def write_batch(
        self, replica: Replica, items: list[Any], data: _Frames
    ) -> list[Any]:
        """Several small files, their bytes one after another in the data
        frames of ``data`` (each file passed on as a view of its frame, not
        a copy): the local place's ``write_batch``; each new entry (noted
        for the next listing), or the error that stopped it."""
        decode = wire.decode_entry
        pieces = data.pieces([item[4] for item in items])
        batch = [
            WriteItem(key, body, decode(like), decode(expect), trash)  # type: ignore[arg-type]
            for (key, like, expect, trash, _), body in zip(items, pieces)  # noqa: B905 (3.8)
        ]
        return [
            {"error": wire.encode_error(done)}
            if isinstance(done, Exception)
            else self._wrote(done)
            for done in replica.write_batch(batch)
        ]

    def make_dirs(self, replica: Replica, items: list[Any]) -> list[Any]:
        """New folders, ``[key, like]`` each, made in the order sent (the
        client sends a folder's parent before it) by the local place's
        ``make_dir`` with nothing expected; each new entry (noted for the
        next listing), or the error that stopped it."""
        found: list[Any] = []
        for key, like in items:
            try:
                new = replica.make_dir(key, like=Entry(*like), expect=None)
            except AccordError as exc:
                found.append({"error": wire.encode_error(exc)})
            else:
                found.append(self._wrote(new))
        return found

    def hello(self, root: str, case_sensitive: bool | None) -> dict[str, Any]:
        self.replica = LocalReplica(root, case_sensitive=case_sensitive)
        # pathspec needs Python 3.9: older ones leave ignore rules to accord
        self.rules = sys.version_info >= (3, 9) and _has_pathspec()
        return {
            "python": list(sys.version_info[:3]),
            "executable": sys.executable,
            "root": self.replica.root,
            "ignore_rules": self.rules,
            "listings": agent_listing.VERSION if self._listings else 0,
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
            options = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
            with _no_collection():
                self._list(ident, credit, args[0], options)
        self.send(wire.frame(wire.END, ident))

    def _list(
        self,
        ident: int,
        credit: wire.Credit,
        patterns: list[str],
        options: dict[str, Any],
    ) -> None:
        """Send the listing in batches. With a ``token`` from the client,
        runs of items as this agent kept them for it go as
        ``{"r": [first key, count, digest]}`` (``agent_listing.py``), and
        the whole listing is kept for the next time. With ``from``, the
        listing is sent in full from that key on (the client found a run
        that was not as its archive holds it). The caller pauses the
        collector meanwhile (``_no_collection``)."""
        replica = self.replica
        assert replica is not None
        self._spent.clear()  # what the listing before held (see below)
        rules = IgnoreRules(patterns) if self.rules else None
        token = options.get("token") if self._listings else None
        name = listing_name(str(token), replica.root) if token else None
        start = options.get("from")
        before = None
        if name is not None and start is None:
            assert self._listings is not None
            before = read_kept(self._listings, name)
        if before is not None and len(before) > agent_listing.MOST:
            before = None  # kept by an agent with a higher limit
        kept = None if before is None else KeptRows(before)
        out = _Batches(
            lambda block: self._push(ident, credit, block), name is not None, start
        )
        for item in replica.scan(rules, kept):  # type: ignore[arg-type]
            kind = type(item)
            if kind is int:  # a run of items as kept
                assert kept is not None
                out.as_kept(kept.passed)
            elif kind is str and kept is not None:  # one item as kept
                out.as_kept([(item, kept.found)], apart=kept.skipped)  # type: ignore[list-item]
            else:
                out.item(item)  # type: ignore[arg-type]
            if credit.cancelled:
                return  # a listing cut short is not kept
        out.finish()
        if name is not None and out.listed is not None and not credit.cancelled:
            self._listed = (name, out.listed, _as_kept(out, before))
        # freed when the agent ends or lists again: freeing 20,000 kept
        # pairs here cost the listing's end, which the client waits for, a
        # millisecond
        self._spent.append(before)

    def _keep_listing(self) -> None:
        """Keep the session's last whole listing, with what it wrote since,
        for the client's next listing (when it differs from what was kept).
        The listing stays held (``_spent``): this runs as ``close`` is
        answered, and freeing 20,000 pairs there cost that answer, which
        every run waits for, a millisecond; the agent's process ends
        without freeing anything (``main``)."""
        listed, self._listed = self._listed, None
        self._spent.append(listed)
        if listed is None or self._listings is None:
            return
        name, pairs, unchanged = listed
        if self._written:
            merged = dict(pairs)
            for key, version in list(self._written.items()):
                if version is None:
                    merged.pop(key, None)
                else:
                    merged[key] = version
            pairs = sorted(merged.items())
        elif unchanged:
            return  # the kept pairs are still right
        write_kept(self._listings, name, pairs)

    def _push(self, ident: int, credit: wire.Credit, block: bytes) -> None:
        credit.spend(len(block))
        self.send(wire.frame(wire.DATA, ident, block))


_collecting = threading.Lock()
_paused = 0  # listings being made, during which the collector pauses
#: freeze what a listing leaves: in the agent's own process (``main``),
#: not where an Agent serves inside another program (tests)
_freezing = False


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """Pause Python's cycle collector while a listing is made: a scan
    allocates tuples by the hundred thousand (items, pairs, stats), none in
    a cycle, and the collector would walk them all again and again, and
    the kept listing with them. When the last listing ends, what is left
    (the kept pairs, the listing kept for the next time) is frozen, left
    out of later collections (else the first one, at once, would walk it
    all: freeing by reference counts goes on as ever), and the collector
    resumes."""
    global _paused
    with _collecting:
        _paused += 1
        if _paused == 1:
            gc.disable()
    try:
        yield
    finally:
        with _collecting:
            _paused -= 1
            if _paused == 0:
                if _freezing:
                    gc.freeze()
                gc.enable()


class _Batches:
    """A listing as it is sent: items in batches of about ``_BATCH``, runs
    of items as kept as ``{"r": [first key, count, digest]}``, and the
    ``(key, version)`` pairs of all of it (``listed``) while there are few
    enough to keep. With ``start``, items before that key are not sent."""

    def __init__(
        self, push: Callable[[bytes], None], keep: bool, start: str | None
    ) -> None:
        self._push = push
        self._start = start
        self.listed: list[tuple[str, str]] | None = [] if keep else None
        self._batch: list[Any] = []
        self._run: list[tuple[str, str]] = []
        self._covered = 0  # items the batch speaks for
        self.whole = False  # an item went whole (``item``): not all as kept

    def as_kept(self, pairs: list[tuple[str, str]], *, apart: bool = False) -> None:
        """Items as kept; ``apart``: kept keys the scan did not show come
        before them (gone), so they begin a run of their own."""
        if apart:
            self._end_run()
        self._run += pairs
        self._covered += len(pairs)
        if len(self._run) >= _RUN:
            self._end_run()
        self._send_full()

    def item(self, item: Entry | Problem | str) -> None:
        """An item sent whole: an entry, a problem, or a known key."""
        self.whole = True
        self._end_run()
        if type(item) is Entry:
            key = item[0]
            self._note([(key, item[5])])
            data: Any = item  # a tuple, which JSON writes as the list it sends
        else:
            key = item if isinstance(item, str) else item.key
            data = wire.encode_item(item)
        if self._start is None or key >= self._start:
            self._batch.append(data)
        self._covered += 1
        self._send_full()

    def finish(self) -> None:
        self._end_run()
        if self._batch:
            self._push(wire.dumps(self._batch))
            self._batch = []

    def _note(self, pairs: list[tuple[str, str]]) -> None:
        if self.listed is not None:
            self.listed += pairs
            if len(self.listed) > agent_listing.MOST:
                self.listed = None  # too big to keep

    def _end_run(self) -> None:
        run = self._run
        if run:
            self._note(run)
            self._batch.append({"r": [run[0][0], len(run), wire.run_digest(run)]})
            self._run = []

    def _send_full(self) -> None:
        if self._covered >= _BATCH and self._batch:
            self._push(wire.dumps(self._batch))
            self._batch, self._covered = [], 0


def _as_kept(out: _Batches, before: list[tuple[str, str]] | None) -> bool:
    """Whether a listing's pairs (``out.listed``) are exactly the kept ones
    (``before``), without comparing them one by one (2-3 ms for 20,000, on
    the path the client waits for): each pair that went as kept is equal to
    a kept pair, each at a later place among them than the one before
    (``KeptRows``); so when every item went as kept and there are as many
    as were kept, they are all of them, in order."""
    listed = out.listed
    return (
        before is not None
        and listed is not None
        and not out.whole
        and len(listed) == len(before)
    )


def _has_pathspec() -> bool:
    """Whether pathspec can be imported: found, not imported (a scan
    without rules never needs it). The agent's modules have it beside
    accord's (``link.py`` sends both): a look there costs one ``stat``,
    where importing ``importlib.util`` to ask costs the start a
    millisecond."""
    # this file is .../accord/replicas/agent.py
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.isfile(os.path.join(top, "pathspec", "__init__.py")):
        return True
    from importlib.util import find_spec

    return find_spec("pathspec") is not None


def listings_folder() -> str | None:
    """Where kept listings live: beside the agent's unpacked modules in the
    server's cache folder (``.../accord/listings``); None when the agent
    does not run from there."""
    # this file is .../accord/agent-DIGEST/accord/replicas/agent.py
    home = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if not os.path.basename(home).startswith("agent-"):
        return None
    return os.path.join(os.path.dirname(home), "listings")


def main() -> None:
    """Serve on stdin and stdout; nothing else may write to stdout."""
    global _freezing
    # what the start imported stays for the whole run: the collector need
    # not walk it again (the bootstrap paused the collector for the import)
    _freezing = True
    gc.freeze()
    gc.enable()
    fd_in, fd_out = os.dup(0), os.dup(1)
    wire.widen_pipes(fd_in, fd_out)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)  # a stray print() cannot corrupt the frames
    agent = Agent(fd_in, fd_out, listings_folder())
    with contextlib.suppress(KeyboardInterrupt):  # the client went away
        agent.serve()
    # served, and the place closed: nothing is left but the interpreter's
    # teardown (freeing each module and object, the agent and the listings
    # it holds among them), which the client's exit would wait for
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
