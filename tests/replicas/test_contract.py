"""Every place passes the same conformance suite (accord.testing.contract).

Each class names a fresh folder of its place (``place_url``) and, where the
test can, how to put files there behind accord's back (``behind``): on the
disk a server serves, or with the store's own client.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest

from accord.testing.contract import ReplicaContract


def on_disk(root: Path):
    """``behind`` for a place whose files are the folder ``root`` here."""

    def put_all(files: dict[str, bytes]) -> None:
        for key, data in files.items():
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    return put_all


@pytest.fixture
def name() -> str:
    return uuid.uuid4().hex[:12]


class TestLocal(ReplicaContract):
    @pytest.fixture
    def place_url(self, tmp_path):
        return str(tmp_path / "place")

    @pytest.fixture
    def behind(self, tmp_path):
        return on_disk(tmp_path / "place")


class TestLocalCaseInsensitive(ReplicaContract):
    @pytest.fixture
    def place_url(self, tmp_path):
        return f"file://{tmp_path / 'place'}?case_sensitive=false"

    @pytest.fixture
    def behind(self, tmp_path):
        return on_disk(tmp_path / "place")


class TestSFTP(ReplicaContract):
    @pytest.fixture
    def place_url(self, sshd, name):
        return sshd.url(name)

    @pytest.fixture
    def behind(self, sshd, name):
        return on_disk(sshd.root / name)


class TestS3(ReplicaContract):
    @pytest.fixture
    def place_url(self, s3_server, name):
        return s3_server.url(name)

    @pytest.fixture
    def behind(self, s3_server, name):
        def put_all(files: dict[str, bytes]) -> None:
            client = s3_server.client()
            for key, data in files.items():
                client.put_object(
                    Bucket=s3_server.bucket, Key=f"{name}/{key}", Body=data
                )

        return put_all


class TestFsspecMemory(ReplicaContract):
    """A generic fsspec filesystem (in this process's memory)."""

    @pytest.fixture
    def place_url(self, name):
        return f"memory://accord-{name}/place"

    @pytest.fixture
    def behind(self, name):
        def put_all(files: dict[str, bytes]) -> None:
            memory = fsspec.filesystem("memory")
            for key, data in files.items():
                memory.pipe(f"/accord-{name}/place/{key}", data)

        return put_all


class TestFTP(ReplicaContract):
    """fsspec's FTP against a real FTP server (pyftpdlib) on loopback."""

    @pytest.fixture
    def place_url(self, ftp_server, name):
        return ftp_server.url(name)

    @pytest.fixture
    def behind(self, ftp_server, name):
        return on_disk(ftp_server.path(name))


class TestWebDAV(ReplicaContract):
    """webdav4 (fsspec's WebDAV) against a real WebDAV server (WsgiDAV)."""

    @pytest.fixture
    def place_url(self, webdav_server, name):
        return webdav_server.url(name)

    @pytest.fixture
    def behind(self, webdav_server, name):
        return on_disk(webdav_server.path(name))


class TestHTTP(ReplicaContract):
    """fsspec's HTTP against a plain web server's listing pages: read-only."""

    @pytest.fixture
    def place_url(self, http_server, name):
        http_server.path(name).mkdir(parents=True, exist_ok=True)
        return http_server.url(name)

    @pytest.fixture
    def behind(self, http_server, name):
        return on_disk(http_server.path(name))
