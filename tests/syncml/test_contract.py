"""The conformance suite every place passes, on the SyncML place (its
shadow, kept in step with accord's server in the same process)."""

from __future__ import annotations

import pytest

from accord.testing.contract import ReplicaContract
from syncml.conftest import Pair


class TestSyncMLPlace(ReplicaContract):
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
