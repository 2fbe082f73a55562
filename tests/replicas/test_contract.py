"""Every place passes the same conformance suite (accord.testing.contract).

Each class names a fresh folder of its place (``place_url``) three folders
below what its ``surroundings`` watch, and, where the test can, how to put
files there behind accord's back (``behind``): on the disk a server serves,
or with the store's own client.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import fsspec
import pytest
from _surroundings import (
    DEPTH,
    OnServer,
    bucket,
    hub_surroundings,
    memory,
    on_disk,
    planted_on_disk,
    put_on_disk,
)

from accord.testing.contract import ReplicaContract


class _OnDisk(ReplicaContract):
    """A local folder, three folders below the watched ``tmp_path``."""

    @pytest.fixture
    def place_url(self, tmp_path):
        return str(tmp_path / DEPTH)

    @pytest.fixture
    def surroundings(self, tmp_path):
        return on_disk(tmp_path, tmp_path / DEPTH)

    @pytest.fixture
    def behind(self, tmp_path):
        return put_on_disk(tmp_path / DEPTH)


class TestLocal(_OnDisk):
    pass


class TestLocalCaseInsensitive(_OnDisk):
    @pytest.fixture
    def place_url(self, tmp_path):
        return f"file://{tmp_path / DEPTH}?case_sensitive=false"


class TestSFTP(OnServer):
    pass


class TestS3(ReplicaContract):
    @pytest.fixture
    def _bucket(self, s3_server):
        return bucket(s3_server)

    @pytest.fixture
    def place_url(self, _bucket):
        return _bucket[0]

    @pytest.fixture
    def surroundings(self, _bucket):
        return _bucket[1]

    @pytest.fixture
    def behind(self, s3_server, _bucket):
        name = urlsplit(_bucket[0]).netloc

        def put_all(files: dict[str, bytes]) -> None:
            client = s3_server.client()
            for key, data in files.items():
                client.put_object(Bucket=name, Key=f"{DEPTH}/{key}", Body=data)

        return put_all


class TestFsspecMemory(ReplicaContract):
    """A generic fsspec filesystem (in this process's memory)."""

    @pytest.fixture
    def place_url(self, tmp_path):
        return f"memory://accord-{tmp_path.name}/{DEPTH}"

    @pytest.fixture
    def surroundings(self):
        return memory()

    @pytest.fixture
    def behind(self, tmp_path):
        def put_all(files: dict[str, bytes]) -> None:
            store = fsspec.filesystem("memory")
            for key, data in files.items():
                store.pipe(f"/accord-{tmp_path.name}/{DEPTH}/{key}", data)

        return put_all


class TestFsspecLocalFilesystem(ReplicaContract):
    """fsspec's own local filesystem (``local://``): it follows links, so
    the place must refuse them itself."""

    @pytest.fixture
    def place_url(self, tmp_path):
        return f"local://{tmp_path / DEPTH}"

    @pytest.fixture
    def surroundings(self, tmp_path):
        return planted_on_disk(tmp_path, tmp_path / DEPTH)

    @pytest.fixture
    def behind(self, tmp_path):
        return put_on_disk(tmp_path / DEPTH)


class TestHub(ReplicaContract):
    """A collection of a real `accord hub serve` process on loopback."""

    @pytest.fixture
    def place_url(self, hub_server):
        return hub_server.place()

    @pytest.fixture
    def surroundings(self, hub_server):
        return hub_surroundings(hub_server)


class _Served(ReplicaContract):
    """A folder a server on 127.0.0.1 serves from this machine's disk,
    three folders below a watched folder of its own (``server``: the name of
    the server's fixture)."""

    server = ""

    @pytest.fixture
    def served(self, request):
        return request.getfixturevalue(self.server)

    @pytest.fixture
    def top(self):
        return uuid.uuid4().hex[:12]

    @pytest.fixture
    def place_url(self, served, top):
        return served.url(f"{top}/{DEPTH}")

    @pytest.fixture
    def surroundings(self, served, top):
        return on_disk(served.path(top), served.path(f"{top}/{DEPTH}"))

    @pytest.fixture
    def behind(self, served, top):
        return put_on_disk(served.path(f"{top}/{DEPTH}"))


class TestFTP(_Served):
    """fsspec's FTP against a real FTP server (pyftpdlib) on loopback."""

    server = "ftp_server"


class TestWebDAV(_Served):
    """webdav4 (fsspec's WebDAV) against a real WebDAV server (WsgiDAV)."""

    server = "webdav_server"


class TestHTTP(_Served):
    """fsspec's HTTP against a plain web server's listing pages: read-only."""

    server = "http_server"

    @pytest.fixture
    def place_url(self, served, top):
        served.path(f"{top}/{DEPTH}").mkdir(parents=True, exist_ok=True)
        return served.url(f"{top}/{DEPTH}")
