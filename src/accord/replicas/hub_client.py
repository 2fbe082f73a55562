"""Talking to an accord hub over HTTP(S): signed requests, clear errors,
this machine's credentials, and the account commands.

Credentials (what ``accord login`` gets: the node id and its secret; or
the admin token ``accord hub init`` made on this machine) live in
``hubs.json`` in the user's config folder (``$ACCORD_HUB_CREDENTIALS``,
else ``$XDG_CONFIG_HOME/accord/hubs.json``, else
``~/.config/accord/hubs.json``), mode 0600. A bearer token may also be
given with ``ACCORD_HUB_TOKEN``.

Every failure becomes an accord error that says what to do: a hub that
does not answer (``Unreachable``), a URL where no hub answers, a
certificate that does not verify, not logged in, a revoked node, no
grant (``PermissionDenied``), a stale write (``PreconditionFailed``).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from accord.errors import (
    AccordError,
    ConfigError,
    PermissionDenied,
    TransientError,
    Unreachable,
)
from accord.registry import url_host, url_port
from accord.replicas import hub_protocol as wire

__all__ = [
    "HubClient",
    "credentials_path",
    "forget_login",
    "login",
    "save_token",
    "server_url",
]

_RETRIES = 4


def credentials_path() -> Path:
    explicit = os.environ.get("ACCORD_HUB_CREDENTIALS")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    home = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return home / "accord" / "hubs.json"


def _load() -> dict[str, Any]:
    path = credentials_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read the hub credentials in {path}: {exc}",
            hint="fix or remove the file, then log in again",
        ) from exc
    return data if isinstance(data, dict) else {}


def _save(data: dict[str, Any]) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    os.chmod(temp, 0o600)
    os.replace(temp, path)


def server_url(url: str) -> tuple[str, str]:
    """``(http(s)://host:port, rest of the path)`` of a hub or place URL."""
    parts = urlsplit(url)
    scheme = {"hub": "http", "hubs": "https", "http": "http", "https": "https"}.get(
        parts.scheme
    )
    if scheme is None or not parts.hostname:
        raise ConfigError(
            f"not a hub URL: {url!r}",
            hint="write http://HOST:PORT (hub://HOST:PORT/COLLECTION for a place; "
            "https and hubs:// for TLS)",
        )
    port = url_port(parts, url) or (443 if scheme == "https" else 8470)
    return f"{scheme}://{url_host(parts.hostname)}:{port}", parts.path


def _site(base: str) -> str:
    return base.split("://", 1)[1]


def save_token(hub_id: str, token: str) -> None:
    """Keep an admin token for the hub ``hub_id`` on this machine (0600)."""
    data = _load()
    data.setdefault("tokens", {})[hub_id] = token
    _save(data)


def forget_login(url: str) -> bool:
    data = _load()
    found = data.get("nodes", {}).pop(_site(server_url(url)[0]), None)
    _save(data)
    return found is not None


class HubClient:
    """A connection to one hub, signing as this machine's node (or with a
    token)."""

    def __init__(
        self,
        url: str,
        *,
        ca: str | None = None,
        token: str | None = None,
        admin: bool = False,
        timeout: float = 60.0,
    ) -> None:
        self.base, _ = server_url(url)
        self.where = self.base
        verify: Any = True
        ca = ca or os.environ.get("ACCORD_HUB_CA")
        if ca:
            if not Path(ca).is_file():
                raise ConfigError(
                    f"no CA file {ca}", hint="give the path of a PEM file"
                )
            verify = ssl.create_default_context(cafile=ca)
        self.http = httpx.Client(
            base_url=self.base,
            verify=verify,
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
            headers={"user-agent": "accord"},
        )
        self.token = token or os.environ.get("ACCORD_HUB_TOKEN")
        self.node: dict[str, Any] | None = None
        self._admin = admin
        if not self.token:
            saved = _load()
            self.node = saved.get("nodes", {}).get(_site(self.base))
            if admin or self.node is None:
                self.token = self._saved_token(saved)

    def _saved_token(self, saved: dict[str, Any]) -> str | None:
        tokens = saved.get("tokens", {})
        if not tokens:
            return None
        hub_id = self.health().get("hub")
        return tokens.get(hub_id) if hub_id else None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests --------------------------------------------------------------
    def _headers(self, request: httpx.Request, body: bytes) -> None:
        if self.token and (self._admin or self.node is None):
            request.headers["authorization"] = f"Bearer {self.token}"
            return
        if self.node is None:
            return
        digest = hashlib.sha256(body).hexdigest() if body else wire.EMPTY_SHA256
        stamp = str(int(time.time()))
        nonce = secrets.token_hex(16)
        raw = request.url.raw_path.decode("latin-1")
        path, _, query = raw.partition("?")
        text = wire.canonical(request.method, path, query, digest, stamp, nonce)
        request.headers[wire.HEADER_NODE] = self.node["node"]
        request.headers[wire.HEADER_TIME] = stamp
        request.headers[wire.HEADER_NONCE] = nonce
        request.headers[wire.HEADER_SHA256] = digest
        request.headers["authorization"] = (
            f"{wire.SCHEME} {wire.sign(self.node['secret'], text)}"
        )

    def build(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: bytes = b"",
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Request:
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            headers = {**(headers or {}), "content-type": "application/json"}
        request = self.http.build_request(
            method, path, params=params, content=body or None, headers=headers
        )
        self._headers(request, body)
        return request

    def send(
        self,
        method: str,
        path: str,
        *,
        stream: bool = False,
        retry: bool | None = None,
        **kw: Any,
    ) -> httpx.Response:
        """Send a (signed) request; errors as accord errors. GETs are
        retried on passing failures (a restarting hub)."""
        retry = method == "GET" if retry is None else retry
        for attempt in range(_RETRIES if retry else 1):
            request = self.build(method, path, **kw)  # a fresh nonce each try
            try:
                with self._errors(path):
                    answer = self.http.send(request, stream=stream)
                    if answer.status_code >= 400:
                        if stream:
                            answer.read()
                        raise self._error(answer, path)
                    return answer
            except TransientError:
                if attempt + 1 >= (_RETRIES if retry else 1):
                    raise
                time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, **kw: Any) -> Any:
        answer = self.send(method, path, **kw)
        try:
            return answer.json()
        except ValueError:
            raise self._not_a_hub() from None

    @contextmanager
    def _errors(self, path: str) -> Iterator[None]:
        try:
            yield
        except AccordError:
            raise
        except httpx.ConnectError as exc:
            if (
                isinstance(exc.__context__, ssl.SSLError)
                or "SSL" in str(exc)
                or "CERTIFICATE" in str(exc)
            ):
                raise PermissionDenied(
                    f"the hub's TLS certificate could not be verified: {exc}",
                    where=self.where,
                    hint="give its CA with ?ca=/path/ca.pem or ACCORD_HUB_CA",
                ) from exc
            raise Unreachable(
                f"cannot reach the hub: {_reason(exc)}",
                where=self.where,
                hint="is `accord hub serve` running there? check the host and port",
            ) from exc
        except (
            httpx.TimeoutException,
            httpx.NetworkError,
            httpx.RemoteProtocolError,
        ) as exc:
            raise TransientError(
                f"the connection to the hub broke: {_reason(exc)}",
                where=self.where,
                hint="run again: nothing is half-written",
            ) from exc
        except httpx.HTTPError as exc:
            raise TransientError(f"HTTP error: {exc}", where=self.where) from exc

    def _not_a_hub(self) -> AccordError:
        return Unreachable(
            "no accord hub answers at this address",
            where=self.where,
            hint="check the URL (hub://HOST:PORT/COLLECTION; hubs:// for TLS)",
        )

    def _error(self, answer: httpx.Response, path: str) -> AccordError:
        try:
            body = answer.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "error" not in body:
            if answer.status_code in (502, 503, 504):
                return TransientError(
                    f"the hub is unavailable (HTTP {answer.status_code})",
                    where=self.where,
                )
            return self._not_a_hub()
        code = body["error"].get("code")
        hint = None
        if code == "not_authenticated":
            hint = (
                "log in on this machine: accord login "
                f"{self.base} --user NAME --code CODE"
            )
        elif code == "revoked":
            hint = (
                "this machine's node was revoked; ask the admin for a new code and "
                f"log in again: accord login {self.base} --user NAME --code CODE"
            )
        elif code in ("bad_signature",):
            hint = "log in again on this machine (its node is not known to this hub)"
        elif code == "stale_request":
            hint = "set this machine's clock right (NTP)"
        elif code == "forbidden" and "admins" in str(body["error"].get("message")):
            hint = (
                "run it where `accord hub init` made the hub (its admin token is "
                "kept there), or log in as a user added with `accord hub user add "
                "NAME --admin`"
            )
        return wire.error_from_body(answer.status_code, body, self.where, hint)

    def health(self) -> dict[str, Any]:
        """``/healthz``; a clear error when no hub answers."""
        answer = self.send("GET", "/healthz")
        try:
            data = answer.json()
        except ValueError:
            raise self._not_a_hub() from None
        if not isinstance(data, dict) or "hub" not in data:
            raise self._not_a_hub()
        return data

    def api(self, method: str, path: str, **kw: Any) -> Any:
        return self.json(method, wire.API + path, **kw)

    # -- account commands -------------------------------------------------------
    def add_user(self, name: str, admin: bool = False) -> dict[str, Any]:
        return dict(
            self.api("POST", "/users", json_body={"name": name, "admin": admin})
        )

    def new_code(self, name: str) -> dict[str, Any]:
        return dict(self.api("POST", f"/users/{name}/code", json_body={}))

    def set_password(self, name: str, password: str, syncml_md5: bool = False) -> None:
        body = {"password": password, "syncml_md5": syncml_md5}
        self.api("PUT", f"/users/{name}/password", json_body=body)

    def grant(self, user: str, collection: str, access: str) -> dict[str, Any]:
        body = {"user": user, "collection": collection, "access": access}
        return dict(self.api("PUT", "/grants", json_body=body))

    def revoke_node(self, node: str) -> None:
        self.api("POST", f"/nodes/{node}/revoke", json_body={})

    def status(self) -> dict[str, Any]:
        return dict(self.api("GET", "/status"))

    def users(self) -> list[dict[str, Any]]:
        return list(self.api("GET", "/users")["users"])


def login(
    url: str,
    user: str,
    code: str,
    *,
    node_name: str | None = None,
    ca: str | None = None,
) -> dict[str, Any]:
    """Register this machine as a node of ``user`` with an enrolment code;
    its secret is saved in the credentials file (0600). What was saved,
    without the secret."""
    client = HubClient(url, ca=ca, token="-")  # no credentials are sent
    client.token = None
    try:
        client.health()
        found = client.api(
            "POST",
            "/enrol",
            json_body={
                "user": user,
                "code": code,
                "node_name": node_name or socket.gethostname(),
            },
        )
    finally:
        client.close()
    data = _load()
    site = _site(client.base)
    data.setdefault("nodes", {})[site] = {
        "url": client.base,
        "user": found["user"],
        "node": found["node"],
        "secret": found["secret"],
        "hub": found["hub"],
    }
    _save(data)
    return {
        "url": client.base,
        "user": found["user"],
        "node": found["node"],
        "path": str(credentials_path()),
    }


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
