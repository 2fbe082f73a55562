"""Every place passes the same conformance suite (accord.testing.contract)."""

from __future__ import annotations

import pytest

from accord.testing.contract import ReplicaContract


class TestLocal(ReplicaContract):
    @pytest.fixture
    def place_url(self, tmp_path):
        return str(tmp_path / "place")


class TestLocalCaseInsensitive(ReplicaContract):
    @pytest.fixture
    def place_url(self, tmp_path):
        return f"file://{tmp_path / 'place'}?case_sensitive=false"


class TestSFTP(ReplicaContract):
    @pytest.fixture
    def place_url(self, sshd):
        return sshd.url()


class TestS3(ReplicaContract):
    @pytest.fixture
    def place_url(self, s3_server):
        return s3_server.url()


class TestFsspecMemory(ReplicaContract):
    """A generic fsspec filesystem (in this process's memory)."""

    @pytest.fixture
    def place_url(self, tmp_path):
        return f"memory://accord-{tmp_path.name}/place"


class TestHub(ReplicaContract):
    """A collection of a real `accord hub serve` process on loopback."""

    @pytest.fixture
    def place_url(self, hub_server):
        return hub_server.place()
