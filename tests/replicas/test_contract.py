"""Every place passes the same conformance suite (accord.testing.contract)."""

from __future__ import annotations

import pytest
from _surroundings import DEPTH, OnServer, bucket, memory, on_disk, planted_on_disk

from accord.testing.contract import ReplicaContract


class _OnDisk(ReplicaContract):
    """A local folder, three folders below the watched ``tmp_path``."""

    @pytest.fixture
    def place_url(self, tmp_path):
        return str(tmp_path / DEPTH)

    @pytest.fixture
    def surroundings(self, tmp_path):
        return on_disk(tmp_path, tmp_path / DEPTH)


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


class TestFsspecMemory(ReplicaContract):
    """A generic fsspec filesystem (in this process's memory)."""

    @pytest.fixture
    def place_url(self, tmp_path):
        return f"memory://accord-{tmp_path.name}/{DEPTH}"

    @pytest.fixture
    def surroundings(self):
        return memory()


class TestFsspecLocalFilesystem(ReplicaContract):
    """fsspec's own local filesystem (``local://``): it follows links, so
    the place must refuse them itself."""

    @pytest.fixture
    def place_url(self, tmp_path):
        return f"local://{tmp_path / DEPTH}"

    @pytest.fixture
    def surroundings(self, tmp_path):
        return planted_on_disk(tmp_path, tmp_path / DEPTH)
