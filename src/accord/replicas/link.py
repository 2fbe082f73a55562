"""The link to accord's agent on an SSH server: starting it, and calls.

``start_agent(launch, python, where)`` runs ``python -S -c BOOT``
(``ssh_launch.py``) through a
channel that ``launch(command)`` opens (the system's ``ssh`` as an
:class:`SSHProcess`, or a paramiko channel), sends the agent's modules when
the server does not have them cached, and returns an :class:`AgentLink`:
calls from many threads over the one channel, each waiting for its own
reply, with data streams under credit (``wire.py``).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import itertools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from accord.errors import AccordError, Unreachable
from accord.replicas import wire
from accord.replicas.ssh_launch import BOOT, SSHProcess, boot_command

__all__ = [
    "BOOT",
    "AgentLink",
    "AgentUnavailable",
    "SSHProcess",
    "agent_bundle",
    "agent_digest",
    "start_agent",
]

_START_TIMEOUT = 30.0

# accord/__init__.py inside the zip: only what the agent needs, and
# enum.StrEnum for Pythons before 3.11
_PACKAGE_INIT = b'''"""accord's agent (a subset of accord, run on a server)."""
import enum

if not hasattr(enum, "StrEnum"):

    class StrEnum(str, enum.Enum):
        def __str__(self):
            return str(self.value)

    enum.StrEnum = StrEnum
'''
_AGENT_MODULES = (
    "capabilities.py",
    "errors.py",
    "keys.py",
    "model.py",
    "replica.py",
    "replicas/__init__.py",
    "replicas/local.py",
    "replicas/local_at.py",
    "replicas/local_case.py",
    "replicas/local_copy.py",
    "replicas/local_entries.py",
    "replicas/local_errors.py",
    "replicas/local_folders.py",
    "replicas/local_meta.py",
    "replicas/local_probe.py",
    "replicas/local_read.py",
    "replicas/local_trash.py",
    "replicas/local_tree.py",
    "replicas/lockfile.py",
    "replicas/where.py",
    "replicas/wire.py",
    "replicas/agent.py",
    "replicas/agent_listing.py",
    "tuples.py",
)
_files_cache: tuple[str, list[tuple[str, bytes]]] | None = None
_bundle_cache: tuple[str, bytes] | None = None


def _agent_files() -> tuple[str, list[tuple[str, bytes]]]:
    """The agent's files (accord's needed modules and pathspec's), by name,
    and their digest: that of the MANIFEST the server writes when it
    unpacks them (each file's sha256 and name, by name). pathspec is found,
    not imported: a run without ignore rules never needs it (its import
    costs the client 30-45 ms)."""
    global _files_cache
    if _files_cache is None:
        from importlib.util import find_spec

        found = find_spec("pathspec")
        if found is None or not found.submodule_search_locations:
            raise ImportError("the agent needs the pathspec package")
        here = Path(__file__).resolve().parent.parent
        files = [("accord/__init__.py", _PACKAGE_INIT)]
        files += [
            (f"accord/{name}", (here / name).read_bytes()) for name in _AGENT_MODULES
        ]
        spec = Path(next(iter(found.submodule_search_locations))).resolve()
        files += [
            (f"pathspec/{path.relative_to(spec).as_posix()}", path.read_bytes())
            for path in sorted(spec.rglob("*.py"))
        ]
        files.sort()
        manifest = "".join(
            f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in files
        )
        _files_cache = (hashlib.sha256(manifest.encode()).hexdigest(), files)
    return _files_cache


def agent_digest() -> str:
    """The digest of the agent's files, which each start sends the server
    (the zip is made only when the server does not have them)."""
    return _agent_files()[0]


def agent_bundle() -> tuple[str, bytes]:
    """The agent's zip (accord's needed modules and pathspec), and its
    digest (:func:`agent_digest`)."""
    global _bundle_cache
    if _bundle_cache is None:
        import zipfile

        digest, files = _agent_files()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in files:
                archive.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)
        _bundle_cache = (digest, buffer.getvalue())
    return _bundle_cache


class AgentUnavailable(Exception):
    """The agent could not start; the reason, for the notice.

    ``connection``: ssh itself failed (host key, keys, network), so another
    SSH client may still get through; else the server lacks a usable Python.
    """

    def __init__(self, reason: str, *, connection: bool = False) -> None:
        super().__init__(reason)
        self.connection = connection


# -- the link -------------------------------------------------------------------
class _Pending:
    __slots__ = ("credit", "done", "error", "inbox", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: AccordError | None = None
        self.inbox: wire.Inbox | None = None
        self.credit: wire.Credit | None = None


class AgentLink:
    """Calls to the agent over one channel; many in flight from many threads."""

    def __init__(self, channel: Any, where: str) -> None:
        self.channel = channel
        self._where = where
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()
        self._broken: AccordError | None = None
        #: calls sent before they were asked for (:meth:`ahead`), by their
        #: frame's payload, and the calls that may come meanwhile
        self._ahead: dict[bytes, tuple[int, _Pending]] = {}
        self._ahead_keep: frozenset[str] = frozenset()
        # started once the first calls are sent (``_listen``): starting a
        # thread waits for it to run, which the agent's start need not
        self._reader = threading.Thread(
            target=self._read_loop, name="accord-agent", daemon=True
        )
        self._listening = False

    # -- sending ------------------------------------------------------------
    def send(self, data: bytes) -> None:
        self._write(self.channel.sendall, data)

    def send_parts(self, parts: list[bytes]) -> None:
        """Send ``parts`` one after another, without joining them where the
        channel can write several buffers at once (the system's ``ssh``)."""
        write = getattr(self.channel, "send_parts", None)
        if write is None:
            self.send(b"".join(parts))
            return
        self._write(write, parts)

    def _write(self, write: Callable[[Any], object], what: Any) -> None:
        """``write(what)`` to the channel, one writer at a time; the reader
        of the agent's answers starts once the first calls have left."""
        with self._send_lock:
            try:
                write(what)
            except Exception as exc:  # OSError, EOFError, paramiko.SSHException
                raise self._lost(exc) from None
            finally:
                if not self._listening:
                    self._listen()

    def _listen(self) -> None:
        """Start reading the agent's answers (after the first calls left)."""
        self._listening = True
        self._reader.start()

    def _lost(self, exc: BaseException | str | None = None) -> Unreachable:
        detail = f" ({exc})" if exc else ""
        return Unreachable(
            f"the connection to the server was lost{detail}",
            where=self._where,
            hint="run again when the server is reachable; nothing is half-written",
        )

    def start(
        self, method: str, *args: Any, stream: bool = False, upload: bool = False
    ) -> tuple[int, _Pending]:
        """Register a call and send it; wait with :meth:`wait`. A call sent
        ahead with exactly these arguments (:meth:`ahead`) is not sent
        again: its answer is this call's."""
        call = b"" if upload else wire.dumps([method, list(args)])
        if self._ahead:
            found = self._take_ahead(method, call, stream or upload)
            if found is not None:
                return found
        ident, pending = self._register(stream=stream, upload=upload)
        if not upload:
            self.send(wire.frame(wire.CALL, ident, call))
        return ident, pending

    def _register(
        self, *, stream: bool = False, upload: bool = False
    ) -> tuple[int, _Pending]:
        ident = next(self._ids)
        pending = _Pending()
        if stream:
            pending.inbox = wire.Inbox(wire.Acker(self.send, ident))
        if upload:
            pending.credit = wire.Credit()
        with self._lock:
            if self._broken is not None:
                raise copy.copy(self._broken)  # a fresh traceback each time
            self._pending[ident] = pending
        return ident, pending

    def ahead(self, calls: list[tuple[Any, ...]], keep: frozenset[str]) -> None:
        """Send ``calls`` (each ``(method, *args)``, answered by a value) in
        one write, before they are asked for: a later :meth:`start` of one
        of them with the same arguments takes its answer, with no round
        trip of its own. The agent runs calls in the order they come, so an
        answer sent ahead is what the call would have answered, as long as
        nothing was asked in between that could change it: any call made
        meanwhile whose method is not in ``keep`` (calls that only read)
        drops what was sent ahead and not yet taken (its answers are let
        go), and each call after it is sent as it comes."""
        out = []
        for method, *args in calls:
            call = wire.dumps([method, args])
            ident, pending = self._register()
            with self._lock:
                self._ahead[call] = (ident, pending)
            out.append(wire.frame(wire.CALL, ident, call))
        self._ahead_keep = keep
        self.send(b"".join(out))

    def _take_ahead(
        self, method: str, call: bytes, streamed: bool
    ) -> tuple[int, _Pending] | None:
        """The call sent ahead as ``call``, taken; else None, and what was
        sent ahead is dropped when ``method`` may change what it answers."""
        with self._lock:
            found = None if streamed else self._ahead.pop(call, None)
            if found is None and method not in self._ahead_keep:
                self._ahead.clear()
        return found

    def call(self, method: str, *args: Any) -> Any:
        return self.wait(self.start(method, *args)[1])

    def wait(self, pending: _Pending) -> Any:
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.value

    def upload(self, method: str, args: list[Any], data: IO[bytes]) -> Any:
        """A call that carries a stream of bytes (a write)."""
        ident, pending = self.start(method, upload=True)
        credit = pending.credit
        assert credit is not None
        out = [wire.frame(wire.CALL, ident, wire.dumps([method, args]))]
        queued = len(out[0])
        try:
            while block := data.read(wire.CHUNK):
                credit.spend(len(block))
                if credit.cancelled:  # the agent answered early (it failed)
                    break
                out.append(wire.frame(wire.DATA, ident, block))
                queued += len(out[-1])
                if queued >= wire.CHUNK:
                    self.send(b"".join(out))
                    out, queued = [], 0
        except BaseException:
            # the source failed or changed: the agent drops the temp file
            out.append(wire.frame(wire.CANCEL, ident))
            with contextlib.suppress(AccordError):
                self.send(b"".join(out))
            with contextlib.suppress(AccordError):
                self.wait(pending)
            raise
        out.append(wire.frame(wire.END, ident))
        self.send(b"".join(out))
        return self.wait(pending)

    def upload_parts(self, method: str, args: list[Any], parts: list[bytes]) -> Any:
        """A call that carries bytes already in memory (a batch of small
        files): sent as they are, in data frames of whole parts (each part
        at most one chunk), without copying them into one buffer first."""
        ident, pending = self.start(method, upload=True)
        credit = pending.credit
        assert credit is not None
        credit.spend(sum(len(part) for part in parts))
        out = [wire.frame(wire.CALL, ident, wire.dumps([method, args]))]
        run: list[bytes] = []
        size = 0
        for part in parts:
            if run and size + len(part) > wire.CHUNK:
                out += [wire.HEADER.pack(size, wire.DATA, ident), *run]
                run, size = [], 0
            run.append(part)
            size += len(part)
        if run:
            out += [wire.HEADER.pack(size, wire.DATA, ident), *run]
        out.append(wire.frame(wire.END, ident))
        self.send_parts(out)
        return self.wait(pending)

    def cancel(self, ident: int) -> None:
        with contextlib.suppress(AccordError):
            self.send(wire.frame(wire.CANCEL, ident))

    # -- receiving ----------------------------------------------------------
    def _read_loop(self) -> None:
        error: BaseException | None = None
        try:
            for kind, ident, payload in wire.frames(self.channel.recv):
                self._dispatch(kind, ident, payload)
        except Exception as exc:
            error = exc
        self._break(self._ended(error))

    def _ended(self, error: BaseException | None) -> AccordError:
        """Why the channel closed: the agent's last words, if it said any."""
        said = _stderr(self.channel)
        if not said:
            return self._lost(error)
        if _ssh_failed(self.channel):
            # ssh's own last words ("Connection to ... closed by remote
            # host", "client_loop: send disconnect: Broken pipe"): the
            # connection broke, the agent did not stop by itself
            return self._lost(said)
        return Unreachable(
            f"accord's agent on the server stopped: {said}",
            where=self._where,
            hint="run again; if it stops again, run with ?agent=off and report "
            "this message",
        )

    def _dispatch(self, kind: int, ident: int, payload: bytes) -> None:
        if kind in (wire.RESULT, wire.ERROR):
            with self._lock:
                pending = self._pending.pop(ident, None)
            if pending is None:
                return
            if kind == wire.RESULT:
                pending.value = wire.loads(payload)
            else:
                pending.error = wire.error_from(wire.loads(payload), self._where)
            if pending.inbox is not None:
                pending.inbox.finish(pending.error)
            if pending.credit is not None:
                pending.credit.cancel()
            pending.done.set()
            return
        with self._lock:
            pending = self._pending.get(ident)
        if pending is None:
            return
        if kind == wire.DATA and pending.inbox is not None:
            pending.inbox.feed(payload)
        elif kind == wire.END and pending.inbox is not None:
            pending.inbox.finish()
        elif kind == wire.ACK and pending.credit is not None:
            pending.credit.grant(wire.ack_count(payload))

    def _break(self, error: AccordError) -> None:
        with self._lock:
            self._broken = self._broken or error
            pending, self._pending = self._pending, {}
        for item in pending.values():
            item.error = item.error or error
            if item.inbox is not None:
                item.inbox.finish(error)
            if item.credit is not None:
                item.credit.cancel(error)
            item.done.set()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.channel.shutdown_write()  # the agent reads EOF and exits
        if self._listening:
            self._reader.join(timeout=10)
        with contextlib.suppress(Exception):
            self.channel.close()
        self._break(Unreachable("the place is closed", where=self._where))


def start_agent(launch: Any, python: str, where: str) -> AgentLink:
    """Start the agent with ``launch(command) -> channel``; AgentUnavailable
    says why it did not start."""
    digest = agent_digest()
    channel = None
    try:
        channel = launch(boot_command(python))
        channel.settimeout(_START_TIMEOUT)
        channel.sendall(digest.encode() + b"\n")
        answer = _line(channel)
        if answer == "need":
            bundle = agent_bundle()[1]
            channel.sendall(f"{len(bundle)}\n".encode() + bundle)
            answer = _line(channel)
    except AgentUnavailable:
        raise
    except Exception as exc:  # OSError, EOFError, paramiko.SSHException and kin
        answer = ""
        if channel is None:
            raise AgentUnavailable(f"could not start it ({exc})") from None
    if answer != "ok":
        reason = answer or _stderr(channel) or "no answer"
        failed = _ssh_failed(channel)
        with contextlib.suppress(Exception):
            channel.close()
        if answer.startswith("old "):
            reason = f"the server's {python} is Python {answer[4:]} (3.8+ needed)"
        raise AgentUnavailable(reason, connection=failed)
    channel.settimeout(None)
    return AgentLink(channel, where)


def _ssh_failed(channel: Any) -> bool:
    """True when ``ssh`` itself failed (exit 255: connect, auth, host key)."""
    code = getattr(channel, "exit_code", None)
    return code() == 255 if callable(code) else False


def _line(channel: Any) -> str:
    """One line the bootstrap printed (it prints nothing more until asked)."""
    data = b""
    while not data.endswith(b"\n"):
        block = channel.recv(1)
        if not block:
            break
        data += block
        if len(data) > 200:
            break
    return data.decode("utf-8", "replace").strip()


def _stderr(channel: Any) -> str:
    """The last line the remote command wrote to stderr, if any."""
    text = b""
    with contextlib.suppress(Exception):
        while channel.recv_stderr_ready():
            block = channel.recv_stderr(1 << 16)
            if not block:
                break
            text = (text + block)[-4096:]
    lines = text.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else ""
