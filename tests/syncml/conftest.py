"""accord's SyncML client and server in one process, for protocol tests.

``pair`` gives a notes folder for the client side (synced with accord's
engine through a ``syncml+http://`` place) and a folder served by accord's
SyncML app, talking HTTP through Starlette's test client: every byte goes
through the codecs, the app and both state machines.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import accord
from accord.replicas.syncml import SyncMLReplica
from accord.syncml.app import syncml_app
from accord.syncml.store import FolderStore, SingleUser

URL = "http://testserver/syncml"


class Response:
    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content


class AsgiClient:
    """Just enough of httpx.Client for the place: ``post`` into an ASGI app."""

    def __init__(self, app) -> None:
        self.app = app

    def post(self, url: str, *, content: bytes, headers: dict[str, str]) -> Response:
        return asyncio.run(self._post(url, content, headers))

    async def _post(
        self, url: str, content: bytes, headers: dict[str, str]
    ) -> Response:
        parts = urlsplit(url)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": parts.scheme,
            "server": (parts.hostname, parts.port or 80),
            "path": parts.path,
            "raw_path": parts.path.encode(),
            "root_path": "",
            "query_string": parts.query.encode(),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
            + [(b"host", (parts.netloc or "testserver").encode())],
        }
        sent = False
        out: dict = {"body": b""}

        async def receive():
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": content, "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
            elif message["type"] == "http.response.body":
                out["body"] += message.get("body", b"")

        await self.app(scope, receive, send)
        return Response(out["status"], out["body"])


class Pair:
    def __init__(self, tmp: Path, policy: str = "keep-both", **app_options) -> None:
        self.local = tmp / "local"
        self.served = tmp / "served"
        self.local.mkdir()
        self.served.mkdir()
        self.tmp = tmp
        self.store = FolderStore(
            str(self.served), "notes", state_dir=tmp / "server-state"
        )
        self.app = syncml_app(
            self.store,
            SingleUser("me", "pw"),
            self.store.state,
            policy=policy,
            **app_options,
        )
        self.http = AsgiClient(self.app)
        self.posts: list[bytes] = []
        self.replies: list[bytes] = []
        original = self.http.post

        def post(url, **kwargs):
            self.posts.append(kwargs.get("content", b""))
            response = original(url, **kwargs)
            self.replies.append(response.content)
            return response

        self.http.post = post  # type: ignore[method-assign]

    def place(self, mode: str = "two-way", **options) -> SyncMLReplica:
        options.setdefault("device", "accord-test-device")
        options.setdefault("user", "me")
        options.setdefault("password", "pw")
        return SyncMLReplica(
            URL,
            "notes",
            sync_mode=mode,
            http_client=self.http,
            state_dir=str(self.tmp / "client-state"),
            **options,
        )

    def sync(self, mode: str = "two-way", **options):
        policy = options.pop("policy", {})
        place = self.place(mode, **options)
        if mode == "refresh-from-server":
            return accord.mirror(
                place,
                str(self.local),
                delete=True,
                max_delete=10**6,
                max_delete_percent=100,
                **policy,
            )
        if mode == "refresh-from-client":
            return accord.mirror(
                str(self.local),
                place,
                delete=True,
                max_delete=10**6,
                max_delete_percent=100,
                **policy,
            )
        if mode == "one-way-from-client":
            return accord.sync(str(self.local), place, one_way="left", **policy)
        if mode == "one-way-from-server":
            return accord.sync(str(self.local), place, one_way="right", **policy)
        return accord.sync(str(self.local), place, **policy)

    def close(self) -> None:
        self.store.close()


def notes_in(folder: Path) -> dict[str, str]:
    """name -> text of the notes in ``folder`` (accord's own folder left out)."""
    return {
        p.name: p.read_text()
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".")
    }


def texts(folder: Path) -> list[str]:
    """The note bodies, as peers compare them (line ends, trailing blanks)."""
    return sorted(t.replace("\r\n", "\n").rstrip() for t in notes_in(folder).values())


@pytest.fixture
def pair(tmp_path):
    made = Pair(tmp_path)
    yield made
    made.close()


@pytest.fixture
def make_pair(tmp_path):
    made: list[Pair] = []

    def make(name: str = "p", **options) -> Pair:
        folder = tmp_path / name
        folder.mkdir()
        p = Pair(folder, **options)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
