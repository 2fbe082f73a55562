"""The conformance suite every place passes, on the SyncML place (its
shadow, kept in step with accord's server in the same process)."""

from __future__ import annotations

import pytest

from accord.testing.contract import ReplicaContract, Surroundings, disk_snapshot
from syncml.conftest import Pair


class TestSyncMLPlace(ReplicaContract):
    @pytest.fixture
    def surroundings(self, tmp_path):
        # the shadow and the served folder both live below tmp_path
        return Surroundings(lambda: disk_snapshot(tmp_path), str(tmp_path / "x.txt"))

    @pytest.fixture
    def place(self, tmp_path):
        pair = Pair(tmp_path)
        replica = pair.place()
        replica.open(create=True)
        try:
            yield replica
        finally:
            replica.close()
            pair.close()
