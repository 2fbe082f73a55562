"""A notes store on a SyncML server: ``syncml+https://host/path?store=notes``.

The place is the server's store as accord's client last agreed with it,
kept in a local *shadow* (``syncml_shadow.py``), and two SyncML sessions
per run keep the shadow and the server in step:

* ``scan()`` runs the first session: the changes still queued from an
  earlier run go up, the server's changes since our anchor come down into
  the shadow (a slow sync when there is no anchor yet or the server asks
  with 508); the engine then compares the shadow with the archive as it
  would any place, and its policy settles conflicts between local edits
  and the server's.
* the engine's writes and deletes land in the shadow (each one checks the
  version it expects) and are queued; ``flush()`` makes them durable there
  before the archive records them; ``finish()`` sends them in a second
  session, as one Sync package split to the server's MaxMsgSize.

Options in the URL: ``store`` (the server's name of the store, required),
``device`` (this client's id; made once and kept if not given), ``auth``
(``md5``, the default, or ``basic``), ``type`` (``text`` or ``sif``;
default: SIF when the server takes it), ``encoding`` (``xml`` or
``wbxml``), ``max_msg_size``. The user and password are given as options
(``--user``, ``--password-env``/``--password-file``), never in the URL.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import IO, Any, ClassVar
from urllib.parse import parse_qs, urlsplit, urlunsplit

from accord.capabilities import Capabilities
from accord.config import default_state_dir
from accord.errors import (
    AlreadyExists,
    ConfigError,
    PermissionDenied,
    ProtocolError,
    TransientError,
    Unreachable,
)
from accord.keys import IgnoreRules
from accord.model import FILE, Entry, Problem
from accord.registry import url_host, url_port
from accord.replica import (
    Replica,
    TrashItem,
    check_digest,
    check_key,
    check_run,
    hash_stream,
)
from accord.replicas.syncml_shadow import Shadow
from accord.syncml import client as sc
from accord.syncml import message as m
from accord.syncml.notes import SIF, TEXT
from accord.syncml.tree import CT_WBXML, CT_XML, Malformed

__all__ = ["SyncMLReplica"]

_SENDS_NO_SESSION_A = (sc.ONE_WAY_FROM_CLIENT, sc.REFRESH_FROM_CLIENT)
_SENDS_NO_SESSION_B = (sc.ONE_WAY_FROM_SERVER, sc.REFRESH_FROM_SERVER)
_TIMEOUT = 120.0
_MAX_MESSAGES = 10_000


class SyncMLReplica(Replica):
    """A notes store of a SyncML server, seen through its shadow."""

    scheme = "syncml"
    #: options this place takes besides its URL (the CLI offers them)
    takes: ClassVar[frozenset[str]] = frozenset({"user", "password", "sync_mode"})

    def __init__(
        self,
        server: str,
        store: str,
        *,
        user: str | None = None,
        password: str | None = None,
        sync_mode: str = "two-way",
        device: str | None = None,
        auth: str = "md5",
        content_type: str | None = None,
        wbxml: bool = False,
        max_msg_size: int = 150_000,
        state_dir: str | None = None,
        http_client: Any = None,
    ) -> None:
        if sync_mode not in sc.MODES:
            raise ConfigError(
                f"unknown SyncML mode {sync_mode!r}",
                hint="use one of: " + ", ".join(sc.MODES),
            )
        self.server = server
        self.store = store
        self.user = user
        self.password = password
        self.mode = sc.MODES[sync_mode]
        self.device = device
        self.auth = auth
        self.content_type = content_type
        self.wbxml = wbxml
        self.max_msg_size = max_msg_size
        self.url = f"syncml+{server}?store={store}"
        self.identity = f"syncml+{server}?store={store}&user={user or ''}"
        self.capabilities = Capabilities(
            digest=True,
            mtime_precision_ns=None,
            modes=False,
            empty_dirs=False,
            symlinks=False,
            server_side_move=True,
            trash=True,
            parallel_transfers=False,
            derived_names=True,
            utf8_names=True,  # names travel in XML and live in SQL text
        )
        self._state_dir = state_dir
        self._shadow: Shadow | None = None
        self._http: Any = http_client
        self._own_http = http_client is None
        self.report: list[str] = []
        self._synced = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SyncMLReplica:
        scheme, _, rest = url.partition("+")
        parts = urlsplit(rest)
        if (
            scheme != "syncml"
            or parts.scheme not in ("http", "https")
            or not parts.netloc
        ):
            raise ConfigError(
                f"not a SyncML URL: {url!r}",
                hint="write syncml+https://host/path?store=notes",
            )
        if parts.password is not None:
            raise ConfigError(
                "a password in the URL would end up in shell history and logs",
                hint="give it with --password-env VAR or --password-file FILE",
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        store = query.pop("store", None)
        if not store:
            raise ConfigError(
                f"{url!r} names no store",
                hint="add ?store=NAME (the server's name of the notes store)",
            )
        if parts.username and not options.get("user"):
            options["user"] = parts.username
        # the user went to the options above: the server's URL has none (it
        # names the shadow); an IPv6 address goes back into its brackets
        host = url_host(parts.hostname or "")
        port = url_port(parts, url)
        netloc = host + (f":{port}" if port else "")
        server = urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))
        _url_options(query, options)
        return cls(server, store, **options)

    # -- lifetime --------------------------------------------------------------
    def open(self, create: bool = False) -> None:
        if self.user and self.password is None:
            raise ConfigError(
                f"no password for {self.user} at {self.server}",
                hint="give it with --password-env VAR or --password-file FILE",
            )
        folder = default_state_dir() if self._state_dir is None else None
        base = folder / "syncml" if folder is not None else _path(self._state_dir)
        name = hashlib.sha256(self.identity.encode()).hexdigest()[:24]
        self._shadow = Shadow(base / f"{name}.db", self.url)
        if self.device is None:
            self.device = self._shadow.device_id()
        if self._own_http:
            import httpx

            self._http = httpx.Client(timeout=_TIMEOUT, follow_redirects=False)

    def close(self) -> None:
        if self._http is not None and self._own_http:
            self._http.close()
            self._http = None
        if self._shadow is not None:
            self._shadow.close()
            self._shadow = None

    @property
    def shadow(self) -> Shadow:
        if self._shadow is None:
            raise ConfigError(f"{self.url} is not open")
        return self._shadow

    # -- sessions --------------------------------------------------------------
    def _config(self) -> sc.ClientConfig:
        assert self.device is not None
        return sc.ClientConfig(
            url=self.server,
            device_id=self.device,
            remote_store=self.store,
            user=self.user,
            password=self.password,
            auth=self.auth,
            content_type=self.content_type,
            max_msg_size=self.max_msg_size,
            wbxml=self.wbxml,
        )

    def _session(self, mode: int) -> sc.Result:
        """One complete SyncML session; the shadow keeps what it brought."""
        shadow = self.shadow
        config = self._config()
        state = shadow.state()
        for attempt in range(3):
            shadow.session_begin()
            session = sc.ClientSession(config, state, shadow, mode)
            shadow.content_type = session.content_type()
            try:
                self._drive(session)
            except sc.AuthRetry as retry:
                shadow.session_end(None, nonce=retry.nonce)
                if config.user is None or attempt == 2:
                    break
                state = state._replace(nonce=retry.nonce, session=state.session + 1)
                if retry.kind == "syncml:auth-basic":
                    config = config._replace(auth="basic")
                continue
            except BaseException:
                shadow.session_end(None, nonce=session.nonce)
                raise
            assert session.result is not None
            shadow.session_end(session.result.state)
            self.report += session.result.problems
            if (
                mode == sc.TWO_WAY
                and session.result.mode == sc.SLOW
                and state.last_local
            ):
                self.report.append(
                    "it had lost track of this client (508), so every note was "
                    "compared again (a slow sync); none is duplicated"
                )
            return session.result
        raise PermissionDenied(
            f"the server refused the user name or password of {self.user or '(none)'}",
            where=self.server,
            hint="check --user and the password; a server that counts failures "
            "may lock the account",
        )

    def _drive(self, session: sc.ClientSession) -> None:
        outgoing: m.Message | None = session.first()
        for _ in range(_MAX_MESSAGES):
            if outgoing is None:
                return
            reply = self._post(
                session.url, m.render(outgoing, wbxml_encoding=self.wbxml)
            )
            try:
                incoming = m.parse(reply)
            except Malformed as exc:
                raise ProtocolError(
                    f"the server's answer is not a SyncML message: {exc}",
                    where=self.server,
                ) from None
            outgoing = session.receive(incoming)
        raise ProtocolError("the session did not end", where=self.server)

    def _post(self, url: str, body: bytes) -> bytes:
        import httpx

        kind = CT_WBXML if self.wbxml else CT_XML
        try:
            response = self._http.post(
                url, content=body, headers={"Content-Type": kind}
            )
        except httpx.TimeoutException as exc:
            raise TransientError(
                "the SyncML server did not answer in time", where=self.server
            ) from exc
        except httpx.HTTPError as exc:
            raise Unreachable(
                f"cannot reach the SyncML server: {exc}",
                where=self.server,
                hint="check the URL and the network",
            ) from exc
        if response.status_code in (401, 403):
            raise PermissionDenied(
                f"the server refused access (HTTP {response.status_code})",
                where=self.server,
            )
        if response.status_code != 200:
            raise ProtocolError(
                f"the server answered HTTP {response.status_code}",
                status=response.status_code,
                where=self.server,
                hint="check the URL's path and ?store=",
            )
        return bytes(response.content)

    # -- reading ---------------------------------------------------------------
    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str]:
        if self.mode not in _SENDS_NO_SESSION_A and not self._synced:
            self._synced = True
            self._session(self.mode)
        for entry in self.shadow.entries():
            if ignore is not None and ignore.matches(entry.key, entry.kind != FILE):
                continue
            if known is not None and known.get(entry.key) == entry.version:
                yield entry.key
                continue
            yield entry

    def is_empty_root(self) -> bool:
        """The shadow's view: asking the server would open a session."""
        return next(iter(self.shadow.entries()), None) is None

    def stat(self, key: str) -> Entry | None:
        return self.shadow.stat(check_key(key, self.url))

    def digest(self, entry: Entry) -> Entry:
        found = self.shadow.stat(check_key(entry.key, self.url))
        if found is None or found.digest is None:
            return entry
        return entry._replace(digest=found.digest)

    def open_read(self, key: str) -> AbstractContextManager[IO[bytes]]:
        return io.BytesIO(self.shadow.read(check_key(key, self.url)))

    # -- writing ---------------------------------------------------------------
    def write(
        self,
        key: str,
        data: IO[bytes],
        *,
        like: Entry,
        expect: Entry | None,
        trash: str | None = None,
    ) -> Entry:
        check_key(key, self.url)
        if trash is not None:
            check_run(trash, self.url)
        body = b"".join(iter(lambda: data.read(1 << 20), b""))
        digest, _ = hash_stream(io.BytesIO(body))
        check_digest(like, digest, self.url, key)
        return self.shadow.put(key, body, like, expect, trash)

    def make_dir(self, key: str, *, like: Entry, expect: Entry | None) -> Entry:
        return self.shadow.make_dir(check_key(key, self.url), expect)

    def set_meta(self, key: str, *, like: Entry, expect: Entry) -> Entry:
        return self.shadow.touch(check_key(key, self.url), like, expect)

    def delete(self, key: str, *, expect: Entry, trash: str | None = None) -> None:
        if trash is not None:
            check_run(trash, self.url)
        self.shadow.remove(check_key(key, self.url), expect, trash)

    def move(self, key: str, new_key: str, *, expect: Entry) -> Entry:
        check_key(key, self.url)
        return self.shadow.rename(key, check_key(new_key, self.url), expect)

    def flush(self) -> None:
        self.shadow.commit()

    def finish(self) -> list[str]:
        """Send what the run queued (the second session); notices."""
        self.shadow.commit()
        notices = [f"the SyncML server said: {p}" for p in self.report]
        self.report = []
        pending = list(self.shadow.outgoing(self.mode == sc.REFRESH_FROM_CLIENT))
        if self.mode in _SENDS_NO_SESSION_B or not pending:
            return notices
        mode = self.mode if self.mode in _SENDS_NO_SESSION_A else sc.TWO_WAY
        result = self._session(mode)
        notices += [f"the SyncML server said: {p}" for p in self.report]
        self.report = []
        got = sum(result.received.values())
        if got:
            notices.append(
                f"the SyncML server sent {got} more changes during this run; "
                "the next run brings them"
            )
        return notices

    # -- accord's own files ----------------------------------------------------
    def meta_create(self, name: str, data: bytes) -> bool:
        return self.shadow.own_create(name, data)

    def meta_read(self, name: str) -> bytes | None:
        return self.shadow.own_read(name)

    def meta_delete(self, name: str) -> None:
        self.shadow.own_delete(name)

    def meta_list(self, prefix: str) -> list[str]:
        return self.shadow.own_list(prefix)

    # -- trash -----------------------------------------------------------------
    def trash_list(self) -> Iterator[TrashItem]:
        for ident, run, key, size, mtime_ns in self.shadow.trash_rows():
            yield TrashItem(
                run, key, Entry(key, FILE, size, mtime_ns, 0o644, str(ident))
            )

    def trash_restore(self, item: TrashItem, key: str) -> Entry:
        check_run(item.run, self.url)
        check_key(item.key, self.url)
        if self.shadow.stat(check_key(key, self.url)) is not None:
            raise AlreadyExists("something is there already", where=self.url, key=key)
        body = self.shadow.trash_data(int(item.entry.version))
        entry = self.shadow.put(key, body, item.entry, None)
        self.shadow.trash_drop(ident=int(item.entry.version))
        return entry

    def trash_purge(self, run: str) -> int:
        return self.shadow.trash_drop(check_run(run, self.url))

    def forget_meta(self) -> None:
        self.shadow.forget_anchors()


def _path(folder: str | None) -> Any:
    from pathlib import Path

    return Path(folder or ".").expanduser()


def _url_options(query: dict[str, str], options: dict[str, Any]) -> None:
    """Fold ``?device=&auth=&type=&encoding=&max_msg_size=`` into ``options``."""
    for name, value in query.items():
        if name == "device":
            options.setdefault("device", value)
        elif name == "auth":
            if value not in ("md5", "basic"):
                raise ConfigError(f"unknown auth={value!r}", hint="use md5 or basic")
            options.setdefault("auth", value)
        elif name == "type":
            types = {"text": TEXT, "sif": SIF, TEXT: TEXT, SIF: SIF}
            if value not in types:
                raise ConfigError(f"unknown type={value!r}", hint="use text or sif")
            options.setdefault("content_type", types[value])
        elif name == "encoding":
            if value not in ("xml", "wbxml"):
                raise ConfigError(
                    f"unknown encoding={value!r}", hint="use xml or wbxml"
                )
            options.setdefault("wbxml", value == "wbxml")
        elif name == "max_msg_size":
            if not value.isdigit() or int(value) < 2048:
                raise ConfigError(
                    f"max_msg_size={value!r} is not a size",
                    hint="give bytes, 2048 or more",
                )
            options.setdefault("max_msg_size", int(value))
        else:
            raise ConfigError(
                f"unknown SyncML option {name!r}",
                hint="known: store, device, auth, type, encoding, max_msg_size",
            )
