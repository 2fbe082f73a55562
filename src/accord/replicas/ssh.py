"""``sftp://`` places: accord's agent over SSH, or plain SFTP.

An ``sftp://`` place starts accord's agent on the server (``agent.py``)
through the system's ``ssh``, with the URL's settings as options, or,
where there is no ``ssh`` or it cannot connect, through paramiko's own
connection (``sftp.py`` connects; ``link.py`` starts the agent and carries
the calls). The agent serves the Replica contract with the local place on
the server's disk: :class:`AgentReplica` is its client side. Scans,
digests and installs run where the data is, many transfers are in flight
at once, and the server needs nothing installed but Python 3.8 or later.

When the server has no suitable Python (or allows SFTP only), the place
falls back to plain SFTP (``sftp.py``), with a notice. The URL option
``?agent=off`` asks for plain SFTP, ``?agent=on`` refuses to fall back;
``?python=PATH`` names the server's interpreter. :class:`SSHReplica` is
the ``sftp://`` place: it chooses at ``open()`` and forwards every call.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Generator, Iterator
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from accord.capabilities import Capabilities
from accord.errors import (
    AccordError,
    ConfigError,
    MissingDependency,
    ReplicaError,
    Unreachable,
)
from accord.keys import IgnoreRules, shown
from accord.model import DIR, Entry, Problem, Spot
from accord.replica import Replica, TrashItem, WriteItem, check_key, check_run
from accord.replicas import agent_listing, wire
from accord.replicas.link import AgentLink, AgentUnavailable, agent_bundle, start_agent
from accord.replicas.local_entries import local_persistent_id
from accord.replicas.sftp import SFTPReplica
from accord.replicas.ssh_launch import (
    SSHProcess,
    claim,
    recalled_python,
    remember_python,
    ssh_argv,
)

__all__ = ["AgentReplica", "SSHProcess", "SSHReplica", "agent_bundle", "ssh_command"]

_MODES = ("auto", "on", "off")
#: archive rows a listing reads ahead, at most, while it waits for the
#: agent's next batch: the agent's runs hold up to 4096 items
_READ_AHEAD = 8192
#: what a run asks a place first, before its lock (opening it, whether it
#: holds the FSDB marker, which the command's run hook looks for, its
#: ``.accordignore``, whether its root is empty): calls that only read,
#: sent with hello in one write (``AgentLink.ahead``)
_FIRST_CALLS: tuple[tuple[Any, ...], ...] = (
    ("exists",),
    ("open", False),
    ("stat", "romidb"),
    ("stat", ".accordignore"),
    ("is_empty_root",),
)
#: calls that only read: made meanwhile, they leave those answers good
_READING = frozenset(
    ("exists", "stat", "is_empty_root", "meta_read", "meta_list", "open_read",
     "root_file_exists", "digest", "trash_runs", "trash_list")
)  # fmt: skip


def ssh_command(sftp: SFTPReplica) -> list[str] | None:
    """The ``ssh`` command line to the place's server with the place's
    settings as its URL gives them (the remote command goes last), or None
    when there is no ``ssh`` here."""
    return ssh_argv(
        sftp.alias,
        user=sftp.asked[0],
        port=sftp.asked[1],
        config=sftp.config_path,
        known_hosts=sftp.known_hosts,
        identity=sftp.asked[2],
        accept_new_host_key=sftp.accept_new_host_key,
    )


def _ssh_process(argv: list[str]) -> SSHProcess:
    """The ``ssh`` running ``argv``: the one the command started early, if
    it runs exactly this, else a new one."""
    return claim(argv) or SSHProcess(argv)


def _ignoring(
    items: Iterator[Entry | Problem | str],
    ignore: IgnoreRules,
    known: dict[str, str] | None,
) -> Iterator[Entry | Problem | str]:
    """Scan items minus ignored ones and everything below an ignored folder."""
    skipped: list[str] = []  # ignored folders, as "key/" prefixes
    for item in items:
        assert not isinstance(item, str)
        key = item.key
        if any(key.startswith(prefix) for prefix in skipped):
            continue
        if isinstance(item, Entry):
            if ignore.matches(key, item.kind == DIR):
                if item.kind == DIR:
                    skipped.append(key + "/")
                continue
            if known is not None and known.get(key) == item.version:
                yield key
                continue
        yield item


# -- the place, served by the agent --------------------------------------------
class AgentReplica(Replica):
    """A folder on an SSH server, served by accord's agent there.

    The agent is the local place on the server, with its own checks; this
    side checks too, as it would for any peer: a key that would leave the
    root is never sent, and an answer about another name than the one
    asked for is refused. What the agent lists goes through the engine's
    name gate like any other listing.
    """

    scheme = "sftp"
    #: the agent lists with the local place's scan, in key order
    scan_in_order = True
    #: the agent runs a flush in a thread of its own, beside other calls
    #: (the link carries calls from several threads at once): the archive's
    #: statements run meanwhile, and a flush ahead leaves the copy going
    flush_in_thread = True

    def __init__(
        self, link: AgentLink, root: str, url: str, identity: str, server: str = ""
    ) -> None:
        self.link = link
        self.server = server  # the namespace of the server's paths
        self.root = root
        self.url = url
        self.identity = identity
        self.capabilities = Capabilities()
        self._rules_there = True
        self._listings = False  # the agent keeps listings (agent_listing.py)
        #: what listings brought: runs of unchanged items (a digest each),
        #: items in full, and listings asked for again in full from a run
        #: that was not as the archive holds it (counts, for tests)
        self.runs_listed = 0
        self.items_listed = 0
        self.listed_again = 0
        self._spots: tuple[Spot, ...] = ()
        #: the interpreter the agent runs on, as the server names it
        self.executable = ""

    def start(self) -> None:
        """Greet the agent: it serves ``root`` from now on. The calls a run
        makes first go with the greeting, without waiting for its answer:
        the agent answers them all at once, after its start (the round
        trips they would each cost are the no-op's, after the connection)."""
        self.link.ahead([("hello", self.root, None), *_FIRST_CALLS], _READING)
        hello = self.link.call("hello", self.root, None)
        self._rules_there = bool(hello["ignore_rules"])
        # runs in listings only from an agent that speaks of them as we do
        self._listings = hello.get("listings") == agent_listing.VERSION
        self.executable = str(hello.get("executable") or "")
        self._spots = tuple(
            Spot(f"{self.server}/{space}", tuple(path))
            for space, path in hello.get("spots", ())
        )

    def spots(self) -> tuple[Spot, ...]:
        """The local spots of the root, as the server sees them (devices,
        inodes, mounts), in the server's own namespace."""
        return self._spots

    def persistent_id(self, version: str) -> str | None:
        return local_persistent_id(version)  # the server's local versions

    def open(self, create: bool = False) -> None:
        caps = self.link.call("open", create)
        caps["listed_digests"] = frozenset(caps["listed_digests"])
        # the network gains from transfers in flight at once
        caps["parallel_transfers"] = True
        caps["batch_writes"] = True
        self.capabilities = Capabilities(**caps)

    def close(self) -> None:
        with contextlib.suppress(AccordError):
            self.link.call("close")
        self.link.close()

    def exists(self) -> bool:
        return bool(self.link.call("exists"))

    def missing_parent(self) -> str | None:
        found = self.link.call("missing_parent")
        return None if found is None else str(found)

    def is_empty_root(self) -> bool:
        return bool(self.link.call("is_empty_root"))

    # -- reading ----------------------------------------------------------
    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str | int]:
        if ignore and not self._rules_there:
            # an agent without pathspec lists everything: filter here
            return _ignoring(self._scan(None, None), ignore, known)
        return self._scan(ignore, known)

    def _scan(
        self, ignore: IgnoreRules | None, known: dict[str, str] | None
    ) -> Iterator[Entry | Problem | str | int]:
        patterns = list(ignore.patterns) if ignore else []
        # a known read in key order that names its archive: the agent sends
        # runs of items as it kept them for that archive, each checked here
        token = getattr(known, "token", None)
        same_run = getattr(known, "same_run", None)
        options = {"token": token} if token and same_run and self._listings else {}
        rest = yield from self._listing(patterns, options, known)
        if rest is not None:  # a run was not as the archive holds it
            self.listed_again += 1
            options = {**options, "from": rest}
            if (yield from self._listing(patterns, options, known)) is not None:
                raise ReplicaError(
                    "the agent sent a run in a full listing", where=self.url
                )

    def _listing(
        self, patterns: list[str], options: dict[str, Any], known: Any
    ) -> Generator[Entry | Problem | str | int, None, str | None]:
        """One listing call: its items, merged with ``known``. Returns the
        first key of a run that did not match the archive (the rest of the
        listing is then to be asked for in full), else None."""
        args = (patterns, options) if options else (patterns,)
        ident, pending = self.link.start("scan", *args, stream=True)
        inbox = pending.inbox
        assert inbox is not None
        get = known.get if known is not None else None
        # a known read in key order passes a batch of unchanged items at once
        same = getattr(known, "same", None)
        same_run = getattr(known, "same_run", None)
        read_ahead = getattr(known, "read_ahead", None)
        try:
            while True:
                # while the agent lists, read the archive rows its next
                # batch is compared with (rather than once the batch came)
                while read_ahead and inbox.waiting and read_ahead(_READ_AHEAD):
                    pass
                block = inbox.next_block()
                if not block:
                    break
                batch = wire.loads(block)
                if same is not None:
                    pairs = [(d[0], d[5]) for d in batch if type(d) is list]
                    if len(pairs) == len(batch) and same(pairs):
                        self.items_listed += len(pairs)
                        yield len(pairs)
                        continue
                for data in batch:
                    if type(data) is dict and "r" in data:
                        first, count, digest = data["r"]
                        if same_run is None or not same_run(
                            str(first),
                            int(count),
                            lambda rows, want=digest: wire.run_digest(rows) == want,
                        ):
                            return str(first)
                        self.runs_listed += 1
                        yield int(count)
                        continue
                    self.items_listed += 1
                    item = wire.decode_item(data)
                    if (
                        isinstance(item, Entry)
                        and get
                        and get(item.key) == item.version
                    ):
                        yield item.key
                    else:
                        yield item
            self.link.wait(pending)
        finally:
            if not inbox.ended:
                self.link.cancel(ident)
        return None

    def new_listing(self, token: str | None) -> None:
        if token and self._listings:
            self.link.call("new_listing", token)

    def _key(self, key: str) -> str:
        return check_key(key, self.url)

    def _answer(self, data: Any, key: str) -> Entry:
        """The entry the agent answered with, which must be about ``key``."""
        entry = Entry(*data)
        if entry.key != key:
            raise ReplicaError(
                f"the agent answered for another name ({shown(entry.key)})",
                where=self.url,
                key=key,
            )
        return entry

    def stat(self, key: str) -> Entry | None:
        data = self.link.call("stat", self._key(key))
        return None if data is None else self._answer(data, key)

    def digest(self, entry: Entry) -> Entry:
        self._key(entry.key)
        return self._answer(self.link.call("digest", entry), entry.key)

    def open_read(self, key: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        ident, pending = self.link.start("open_read", self._key(key), stream=True)
        inbox = pending.inbox
        assert inbox is not None

        def closed(ended: bool) -> None:
            if not ended:
                self.link.cancel(ident)

        reader = wire.Reader(inbox, closed)
        reader.prime()  # raises here if the file cannot be opened
        return reader  # type: ignore[return-value]

    # -- writing ----------------------------------------------------------
    def write(
        self,
        key: str,
        data: IO[bytes],
        *,
        like: Entry,
        expect: Entry | None,
        trash: str | None = None,
    ) -> Entry:
        args = [self._key(key), like, expect, self._run(trash)]
        return self._answer(self.link.upload("write", args, data), key)

    def write_batch(self, items: list[WriteItem]) -> list[Entry | AccordError]:
        refused: dict[int, AccordError] = {}
        runs: set[str | None] = set()  # trash runs checked (one per batch)
        for index, item in enumerate(items):
            try:
                self._key(item.key)
                if item.trash not in runs:
                    runs.add(self._run(item.trash))
            except AccordError as exc:
                refused[index] = exc
        sent = [item for index, item in enumerate(items) if index not in refused]
        return _merged(len(items), refused, self._send_batch(sent) if sent else [])

    def _send_batch(self, items: list[WriteItem]) -> list[Entry | AccordError]:
        header = [[i.key, i.like, i.expect, i.trash, len(i.data)] for i in items]
        parts = [item.data for item in items]
        results = self.link.upload_parts("write_batch", [header], parts)
        return self._answers([item.key for item in items], results)

    def make_dirs(self, items: list[tuple[str, Entry]]) -> list[Entry | AccordError]:
        """New folders in one call: the agent makes each in the order
        sent, with the local place's ``make_dir`` (one round trip for a
        first copy's folders, not one each)."""
        refused: dict[int, AccordError] = {}
        for index, (key, _) in enumerate(items):
            try:
                self._key(key)
            except AccordError as exc:
                refused[index] = exc
        sent = [
            [key, like]
            for index, (key, like) in enumerate(items)
            if index not in refused
        ]
        results = self.link.call("make_dirs", sent) if sent else []
        return _merged(
            len(items), refused, self._answers([k for k, _ in sent], results)
        )

    def _answers(self, keys: list[str], results: Any) -> list[Entry | AccordError]:
        """The agent's answer to a call of several items: for each (about
        the key sent), its new entry or the error that stopped it."""
        if not isinstance(results, list) or len(results) != len(keys):
            raise ReplicaError("the agent answered a batch wrongly", where=self.url)
        answers: list[Entry | AccordError] = []
        for key, result in zip(keys, results):  # noqa: B905 (lengths checked)
            if isinstance(result, list):
                try:
                    answers.append(self._answer(result, key))
                except ReplicaError as exc:
                    answers.append(exc)
            else:
                answers.append(wire.error_from(result["error"], self.url))
        return answers

    def _run(self, trash: str | None) -> str | None:
        return None if trash is None else check_run(trash, self.url)

    def make_dir(self, key: str, *, like: Entry, expect: Entry | None) -> Entry:
        return self._answer(
            self.link.call("make_dir", self._key(key), like, expect), key
        )

    def make_link(
        self, key: str, *, like: Entry, expect: Entry | None, trash: str | None = None
    ) -> Entry:
        args = (self._key(key), like, expect, self._run(trash))
        return self._answer(self.link.call("make_link", *args), key)

    def set_meta(self, key: str, *, like: Entry, expect: Entry) -> Entry:
        return self._answer(
            self.link.call("set_meta", self._key(key), like, expect), key
        )

    def delete(self, key: str, *, expect: Entry, trash: str | None = None) -> None:
        self.link.call("delete", self._key(key), expect, self._run(trash))

    def move(self, key: str, new_key: str, *, expect: Entry) -> Entry:
        args = (self._key(key), self._key(new_key), expect)
        return self._answer(self.link.call("move", *args), new_key)

    def clean_temp(self) -> None:
        self.link.call("clean_temp")

    def flush(self) -> None:
        self.link.call("flush")

    # -- accord's own files -------------------------------------------------
    def meta_create(self, name: str, data: bytes) -> bool:
        import base64

        text = base64.b64encode(data).decode()
        return bool(self.link.call("meta_create", name, text))

    def meta_read(self, name: str) -> bytes | None:
        import base64

        data = self.link.call("meta_read", name)
        return None if data is None else base64.b64decode(data)

    def meta_delete(self, name: str) -> None:
        self.link.call("meta_delete", name)

    def meta_list(self, prefix: str) -> list[str]:
        return list(self.link.call("meta_list", prefix))

    def root_file_exists(self, name: str) -> bool:
        return bool(self.link.call("root_file_exists", name))

    # -- trash ------------------------------------------------------------
    def trash_list(self) -> Iterator[TrashItem]:
        for data in self.link.call("trash_list"):
            yield wire.decode_trash(data)

    def trash_runs(self) -> list[str]:
        return list(self.link.call("trash_runs"))

    def trash_restore(self, item: TrashItem, key: str) -> Entry:
        self._key(item.key)
        self._run(item.run)
        return self._answer(self.link.call("trash_restore", item, self._key(key)), key)

    def trash_purge(self, run: str) -> int:
        return int(self.link.call("trash_purge", check_run(run, self.url)))

    def forget_meta(self) -> None:
        self.link.call("forget_meta")

    def leave_as_found(self) -> None:
        self.link.call("leave_as_found")

    # -- another program's lock files: flock on the server -------------------
    def hold_lock(
        self,
        key: str,
        *,
        shared: bool,
        timeout: float,
        note_key: str | None = None,
        note: bytes = b"",
    ) -> str:
        import base64

        if note_key is not None:
            self._key(note_key)
        args = (self._key(key), shared, timeout, note_key)
        text = base64.b64encode(note).decode()
        return str(self.link.call("hold_lock", *args, text))

    def drop_lock(self, token: str) -> None:
        self.link.call("drop_lock", token)


# -- the sftp:// place: the agent when it can start, else plain SFTP ------------
class SSHReplica(Replica):
    """``sftp://`` URLs: served by accord's agent, or by plain SFTP."""

    scheme = "sftp"

    def __init__(
        self, sftp: SFTPReplica, *, agent: str = "auto", python: str = "python3"
    ) -> None:
        if agent not in _MODES:
            raise ConfigError(
                f"agent={agent!r} is not one of {', '.join(_MODES)}",
                hint="agent=auto (the default), on or off",
            )
        self.sftp = sftp
        self.url = sftp.url
        self.identity = sftp.identity
        self.capabilities = sftp.capabilities
        self.mode = agent
        self.python = python
        self.via: Replica = sftp
        self.notices: tuple[str, ...] = ()
        self._connected = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SSHReplica:
        parts = urlsplit(url)
        rest = []
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name in ("agent", "python"):
                options.setdefault(name, value)
            else:
                rest.append((name, value))
        plain = urlunsplit(parts._replace(query=urlencode(rest)))
        agent = str(options.pop("agent", "auto")).lower()
        python = str(options.pop("python", "python3"))
        return cls(SFTPReplica.from_url(plain, **options), agent=agent, python=python)

    def _connect(self) -> None:
        """Choose the transport: the agent through the system's ``ssh``, else
        through paramiko's connection, else plain SFTP."""
        if self._connected:
            return
        self._connected = True
        if self.mode == "off":
            return
        failure: AgentUnavailable | None = None
        argv = ssh_command(self.sftp)
        if argv is not None:
            try:
                link, failed = self._start_over_ssh(argv)
            except AgentUnavailable as exc:
                failure = exc
            else:
                self._use_agent(link)
                assert isinstance(self.via, AgentReplica)
                remember_python(argv, self.python, self.via.executable, failed)
                return
        if failure is None or failure.connection:
            try:
                self.sftp.connect()  # raises the clear errors (host key, keys)
            except MissingDependency:
                if failure is None:
                    raise  # no usable ssh, and no paramiko: that is the error
                raise self._ssh_failed(failure) from None
            try:
                link = start_agent(self._paramiko_channel, self.python, self.url)
            except AgentUnavailable as exc:
                failure = exc
            else:
                return self._use_agent(link)
        self._fall_back(failure)

    def _ssh_failed(self, failure: AgentUnavailable) -> Unreachable:
        """The system's ``ssh`` could not connect and there is no paramiko to
        try with: what ssh said, not that paramiko is missing (installing it
        would meet the same host, port and keys)."""
        place = self.sftp
        return Unreachable(
            f"ssh could not connect: {failure}",
            where=self.url,
            hint="check the host name, the port, the network and your keys "
            f"(try: ssh -p {place.port} {place.user}@{place.host}); with "
            "paramiko installed (pip install 'accord[sftp]') accord also "
            "tries its own SSH client",
        )

    def _start_over_ssh(self, argv: list[str]) -> tuple[AgentLink, str | None]:
        """The agent through the system's ``ssh``: on the interpreter the
        URL's ``python`` led to last time, if that one starts (no shim's
        start to pay: see ``ssh_launch.py``), else on ``python`` as named;
        and the remembered interpreter that failed to start, if one did."""
        recalled = recalled_python(argv, self.python)
        if recalled is not None:
            try:
                word = shlex.quote(recalled)
                return start_agent(
                    lambda cmd: _ssh_process([*argv, cmd]), word, self.url
                ), None
            except AgentUnavailable as exc:
                if exc.connection:
                    raise
        link = start_agent(
            lambda cmd: _ssh_process([*argv, cmd]), self.python, self.url
        )
        return link, recalled

    def _paramiko_channel(self, command: str) -> Any:
        channel = self.sftp.transport().open_session()
        channel.exec_command(command)
        return channel

    def _use_agent(self, link: AgentLink) -> None:
        agent = AgentReplica(
            link, self.sftp.root, self.url, self.identity, self.sftp.server
        )
        try:
            agent.start()
        except BaseException:
            link.close()
            raise
        self.via = agent
        self.scan_in_order = agent.scan_in_order

    def _fall_back(self, failure: AgentUnavailable | None) -> None:
        if self.mode == "on":
            raise Unreachable(
                f"accord's agent did not start on the server: {failure}",
                where=self.url,
                hint="install Python 3.8+ there (or name it with ?python=PATH), "
                "or use plain SFTP with ?agent=off",
            )
        self.notices = (
            f"{self.url}: accord's agent did not start ({failure}); using plain "
            "SFTP, which is slower",
        )

    def open(self, create: bool = False) -> None:
        self._connect()
        self.via.open(create)
        self.capabilities = self.via.capabilities

    def close(self) -> None:
        if self.via is not self.sftp:
            with contextlib.suppress(ReplicaError):
                self.via.close()
            self.via = self.sftp
        self.scan_in_order = self.sftp.scan_in_order
        self.sftp.close()
        self._connected = False

    def exists(self) -> bool:
        self._connect()
        return self.via.exists()

    def missing_parent(self) -> str | None:
        self._connect()
        return self.via.missing_parent()

    def persistent_id(self, version: str) -> str | None:
        return self.via.persistent_id(version)

    def spots(self) -> tuple[Spot, ...]:
        """As written, and once the agent runs, as the server sees them."""
        found = self.sftp.spots()
        if self.via is not self.sftp:
            found += self.via.spots()
        return found

    # everything else: whichever transport serves the place
    def is_empty_root(self) -> bool:
        return self.via.is_empty_root()

    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str | int]:
        return self.via.scan(ignore, known)

    def stat(self, key: str) -> Entry | None:
        return self.via.stat(key)

    def new_listing(self, token: str | None) -> None:
        self.via.new_listing(token)

    def digest(self, entry: Entry) -> Entry:
        return self.via.digest(entry)

    def open_read(self, key: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        return self.via.open_read(key)

    def write(
        self,
        key: str,
        data: IO[bytes],
        *,
        like: Entry,
        expect: Entry | None,
        trash: str | None = None,
    ) -> Entry:
        return self.via.write(key, data, like=like, expect=expect, trash=trash)

    def write_batch(self, items: list[WriteItem]) -> list[Entry | AccordError]:
        return self.via.write_batch(items)

    def make_dirs(
        self, items: list[tuple[str, Entry]]
    ) -> list[Entry | AccordError] | None:
        return self.via.make_dirs(items)

    def make_dir(self, key: str, *, like: Entry, expect: Entry | None) -> Entry:
        return self.via.make_dir(key, like=like, expect=expect)

    def make_link(
        self, key: str, *, like: Entry, expect: Entry | None, trash: str | None = None
    ) -> Entry:
        return self.via.make_link(key, like=like, expect=expect, trash=trash)

    def set_meta(self, key: str, *, like: Entry, expect: Entry) -> Entry:
        return self.via.set_meta(key, like=like, expect=expect)

    def delete(self, key: str, *, expect: Entry, trash: str | None = None) -> None:
        self.via.delete(key, expect=expect, trash=trash)

    def move(self, key: str, new_key: str, *, expect: Entry) -> Entry:
        return self.via.move(key, new_key, expect=expect)

    def clean_temp(self) -> None:
        self.via.clean_temp()

    def flush(self) -> None:
        self.via.flush()

    def finish(self) -> list[str]:
        return self.via.finish()

    @property
    def flush_in_thread(self) -> bool:  # type: ignore[override]
        return self.via.flush_in_thread

    def meta_create(self, name: str, data: bytes) -> bool:
        return self.via.meta_create(name, data)

    def meta_read(self, name: str) -> bytes | None:
        return self.via.meta_read(name)

    def meta_delete(self, name: str) -> None:
        self.via.meta_delete(name)

    def meta_list(self, prefix: str) -> list[str]:
        return self.via.meta_list(prefix)

    def root_file_exists(self, name: str) -> bool:
        return self.via.root_file_exists(name)

    def trash_list(self) -> Iterator[TrashItem]:
        return self.via.trash_list()

    def trash_runs(self) -> list[str]:
        return self.via.trash_runs()

    def trash_restore(self, item: TrashItem, key: str) -> Entry:
        return self.via.trash_restore(item, key)

    def trash_purge(self, run: str) -> int:
        return self.via.trash_purge(run)

    def forget_meta(self) -> None:
        self.via.forget_meta()

    def leave_as_found(self) -> None:
        self.via.leave_as_found()

    def hold_lock(
        self,
        key: str,
        *,
        shared: bool,
        timeout: float,
        note_key: str | None = None,
        note: bytes = b"",
    ) -> str:
        return self.via.hold_lock(
            key, shared=shared, timeout=timeout, note_key=note_key, note=note
        )

    def drop_lock(self, token: str) -> None:
        self.via.drop_lock(token)


def _merged(
    count: int, refused: dict[int, AccordError], answers: list[Entry | AccordError]
) -> list[Entry | AccordError]:
    """The answers of ``count`` items: those refused here (by index) in
    their places, the agent's answers for the others in order."""
    sent = iter(answers)
    return [
        refused[index] if index in refused else next(sent) for index in range(count)
    ]
