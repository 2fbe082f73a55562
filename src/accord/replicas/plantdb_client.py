"""HTTP talk with plantdb's REST server (``fsdb_rest_api``, plantdb 0.17).

One :class:`PlantdbClient` per place: it logs in (``POST /auth/login``)
when a password is known, sends the Bearer token with every request and
refreshes it before it expires (``POST /auth/token/refresh``), waits and
tries again when the server answers 429 (it rate-limits each client per
route and method in 60-second windows and sends no ``Retry-After``; one
is honoured when present), and translates what goes wrong into
:mod:`accord.errors`. It counts its requests (``requests``) so a run can
say how many it needed.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx

from accord.errors import (
    AccordError,
    NotFound,
    PermissionDenied,
    ProtocolError,
    TransientError,
    Unreachable,
)

__all__ = ["API", "PASSWORD_ENV", "PlantdbClient"]

API = "/api/v1"
#: the environment variable that holds a user's password
PASSWORD_ENV = "PLANTDB_PASSWORD"
_TIMEOUT = httpx.Timeout(300.0, connect=10.0)
_MAX_WAIT = 75.0  # one rate-limit window (60 s) and a margin
_TRIES_429 = 12
_EARLY = 120.0  # refresh a token this many seconds before it expires


def _expiry(token: str) -> float:
    """When a JWT expires (its ``exp``), read without checking its signature
    (the server checks it); far in the future when it says nothing."""
    try:
        payload = token.split(".")[1]
        padded = payload + "=" * (-len(payload) % 4)
        return float(json.loads(base64.urlsafe_b64decode(padded))["exp"])
    except (IndexError, KeyError, ValueError, TypeError):
        return time.time() + 3600.0


class PlantdbClient:
    """Requests to one plantdb REST server, as one user (or as guest)."""

    def __init__(
        self, base: str, *, where: str, user: str | None, password: str | None
    ) -> None:
        self.base = base.rstrip("/")
        self.where = where
        self.user = user
        self._password = password
        self._http = httpx.Client(timeout=_TIMEOUT, follow_redirects=False)
        self._access: str | None = None
        self._refresh: str | None = None
        self._expires = 0.0
        #: requests sent (each try of a request counts)
        self.requests = 0
        #: 429 answers met, and seconds spent waiting on them
        self.throttled = 0
        self.waited = 0.0

    def close(self) -> None:
        self._http.close()

    # -- auth ---------------------------------------------------------------
    @property
    def logged_in(self) -> bool:
        return self._access is not None

    def login(self) -> None:
        """Log in as ``user``; PermissionDenied when the server says no."""
        if self.user is None or self._password is None:
            return
        answer = self.send(
            "POST",
            "/auth/login",
            json={"username": self.user, "password": self._password},
            auth=False,
            ok=(200, 401, 403),
        )
        if answer.status_code != 200:
            raise PermissionDenied(
                f"the server refused the login of {self.user!r} "
                f"({_error_text(answer)})",
                where=self.where,
                hint="check the user name and PLANTDB_PASSWORD (or the password "
                "in the config file)",
            )
        self._take_tokens(answer.json())

    def _take_tokens(self, found: dict[str, Any]) -> None:
        self._access = found.get("access_token")
        self._refresh = found.get("refresh_token") or self._refresh
        if not self._access:
            raise ProtocolError("the login answer holds no token", where=self.where)
        self._expires = _expiry(self._access)

    def _fresh_token(self) -> str | None:
        if self._access is None:
            return None
        if time.time() < self._expires - _EARLY:
            return self._access
        answer = None
        if self._refresh:
            answer = self.send(
                "POST",
                "/auth/token/refresh",
                json={"refresh_token": self._refresh},
                auth=False,
                ok=(200, 401, 403),
            )
        if answer is not None and answer.status_code == 200:
            self._take_tokens(answer.json())
        else:
            self.login()
        return self._access

    # -- requests -----------------------------------------------------------
    def send(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        ok: tuple[int, ...] = (200, 201),
        **kw: Any,
    ) -> httpx.Response:
        """One request to ``API + path``; waits out 429 answers; raises on a
        status not in ``ok``."""
        token = self._fresh_token() if auth else None
        headers = dict(kw.pop("headers", None) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for attempt in range(_TRIES_429):
            answer = self._once(method, path, headers, kw)
            if answer.status_code != 429:
                break
            self._wait(answer, attempt)
        else:
            raise TransientError(
                f"the server kept answering 429 (too many requests) to {method} "
                f"{path}; left for the next run",
                where=self.where,
            )
        if answer.status_code not in ok:
            raise self._error(method, path, answer)
        return answer

    def _once(
        self, method: str, path: str, headers: dict[str, str], kw: dict[str, Any]
    ) -> httpx.Response:
        self.requests += 1
        try:
            return self._http.request(
                method, self.base + API + path, headers=headers, **kw
            )
        except httpx.ConnectError as exc:
            raise Unreachable(
                f"cannot connect to the plantdb server at {self.base}: {exc}",
                where=self.where,
                hint="is fsdb_rest_api running there, on this host and port?",
            ) from exc
        except httpx.TimeoutException as exc:
            raise TransientError(
                f"the plantdb server did not answer in time ({exc})", where=self.where
            ) from exc
        except httpx.HTTPError as exc:
            raise TransientError(
                f"the connection to the plantdb server failed: {exc}",
                where=self.where,
            ) from exc

    def _wait(self, answer: httpx.Response, attempt: int) -> None:
        """Sleep before trying again after a 429: the server's Retry-After
        when it gives one, else a growing pause up to one window."""
        self.throttled += 1
        given = answer.headers.get("Retry-After", "")
        pause = float(given) if given.isdigit() else min(2.0 * 2**attempt, 30.0)
        pause = min(pause, _MAX_WAIT)
        self.waited += pause
        time.sleep(pause)

    def _error(self, method: str, path: str, answer: httpx.Response) -> AccordError:
        text = _error_text(answer)
        status = answer.status_code
        what = f"{method} {path}: {status} {text}"
        if status == 404:
            return NotFound(f"not on the server ({what})", where=self.where)
        if status in (401, 403):
            return PermissionDenied(
                f"the server refused {what}",
                where=self.where,
                hint="log in as a user who may write: --user NAME with "
                "PLANTDB_PASSWORD set",
            )
        if status >= 500:
            return TransientError(f"the server failed: {what}", where=self.where)
        return ProtocolError(f"the server refused {what}", where=self.where)

    def json(self, method: str, path: str, **kw: Any) -> Any:
        answer = self.send(method, path, **kw)
        try:
            return answer.json()
        except ValueError as exc:
            raise ProtocolError(
                f"{method} {path} did not answer JSON", where=self.where
            ) from exc


def _error_text(answer: httpx.Response) -> str:
    try:
        found = answer.json()
    except ValueError:
        return answer.text[:200]
    if isinstance(found, dict):
        return str(found.get("error") or found.get("message") or found)[:300]
    return str(found)[:300]
