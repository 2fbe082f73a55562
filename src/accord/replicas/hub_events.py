"""A hub collection's changes as the hub pushes them: its server-sent
events (``GET /api/v1/events?collection=NAME``), signed like every other
request.

A thread reads the stream and tells each ``change`` event, with the
number of items it changed, as settled (a committed transaction: nothing
to wait for). The changes this machine's node made are not told: they
are its own runs' writes (a watcher that runs two pairs over one
collection tells the other pair itself, see ``accord.watch.loop``). When
the connection breaks or the hub cannot be reached, it connects again
after a growing pause (at most a minute), from the last event it saw
(``since``). Each time it connects, and when a connection breaks, it
tells one change of unknown place: what happened before it listened (or
while it could not) is then looked at by a run, and a run says whether
the hub can be reached.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from typing import Any

from accord.replica import Touched
from accord.replicas import hub_protocol as wire
from accord.replicas.hub_client import HubClient

__all__ = ["EventFeed", "parse_events"]

_LONGEST_PAUSE = 60.0


def parse_events(lines: list[str]) -> tuple[str | None, str | None, str]:
    """One server-sent event's ``(id, event, data)`` from its lines."""
    ident: str | None = None
    kind: str | None = None
    data: list[str] = []
    for line in lines:
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            ident = value
        elif name == "event":
            kind = value
        elif name == "data":
            data.append(value)
    return ident, kind, "\n".join(data)


def _count(event: dict[str, Any]) -> int:
    changes = event.get("changes")
    return len(changes) if isinstance(changes, list) and changes else 1


def _decoded(data: str) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


class EventFeed:
    """A thread following one collection's events until ``stop()``."""

    def __init__(
        self,
        url: str,
        collection: str,
        touched: Callable[[Touched], None],
        *,
        ca: str | None = None,
    ) -> None:
        self._url = url
        self._collection = collection
        self._touched = touched
        self._ca = ca
        self._since: str | None = None
        self._node: str | None = None  # this machine's node on the hub
        self._connected = False
        self._stopped = threading.Event()
        self._client: HubClient | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._follow, name=f"hub events {collection}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()  # breaks the read the thread is blocked in
        self._thread.join(5)

    def _follow(self) -> None:
        pause = 0.5
        while not self._stopped.is_set():
            try:
                self._read()
                pause = 0.5
            except Exception:  # any failure: connect again later
                if self._stopped.is_set():
                    return
            if self._connected and not self._stopped.is_set():
                # the feed broke: a run tells whether the hub is reachable
                self._connected = False
                self._touched(Touched(None, settled=True))
            if self._stopped.wait(pause):
                return
            pause = min(pause * 2, _LONGEST_PAUSE)

    def _read(self) -> None:
        client = HubClient(self._url, ca=self._ca)
        client.where = self._url
        with self._lock:
            if self._stopped.is_set():
                client.close()
                return
            self._client = client
        self._node = (client.node or {}).get("node")
        try:
            params: dict[str, Any] = {"collection": self._collection}
            if self._since is not None:
                params["since"] = self._since
            answer = client.send(
                "GET", wire.API + "/events", params=params, stream=True, retry=False
            )
            # what happened before this connection (or while away), if anything
            self._connected = True
            self._touched(Touched(None, settled=True))
            self._lines(answer)
        finally:
            with self._lock:
                self._client = None
            client.close()

    def _lines(self, answer: Any) -> None:
        block: list[str] = []
        for line in answer.iter_lines():
            if self._stopped.is_set():
                return
            if line:
                block.append(line)
                continue
            ident, kind, data = parse_events(block)
            block = []
            if ident is not None:
                self._since = ident
            if kind != "change":
                continue
            event = _decoded(data)
            if self._node is not None and event.get("node") == self._node:
                continue  # this machine's own writes (its runs)
            self._touched(Touched(None, count=_count(event), settled=True))
