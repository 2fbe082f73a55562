"""What a no-op over SSH does to cost less, without changing what it sees.

The agent pauses Python's cycle collector while it makes a listing (the
scan's tuples hold no cycles), and the client reads the archive rows a
batch of the agent's is checked against while it waits for that batch.
"""

from __future__ import annotations

import gc

import pytest

from accord.engine.detect import KnownInOrder
from accord.replicas import agent


def test_the_collector_pauses_for_listings_and_resumes_after_the_last() -> None:
    assert gc.isenabled()
    with agent._no_collection():
        assert not gc.isenabled()
        with agent._no_collection():  # another listing, in another thread
            assert not gc.isenabled()
        assert not gc.isenabled()  # the first is still being made
    assert gc.isenabled()
    with pytest.raises(OSError), agent._no_collection():
        raise OSError("a listing that failed")
    assert gc.isenabled()


def test_a_listing_reads_archive_rows_ahead_while_it_waits() -> None:
    rows = [(f"k{index:06}", str(index)) for index in range(3000)]
    known = KnownInOrder(iter(rows))
    while known.read_ahead(1000):
        pass
    assert 1000 <= known.count < 1000 + 256  # at most one read past the limit
    assert not known.read_ahead(1000)
    assert known.same(rows[:1500])  # what was read ahead serves as before
    while known.read_ahead(5000):
        pass
    assert known.count == 3000
    assert not known.read_ahead(5000)  # the archive is all read
    assert known.get("k002999") == "2999"
    assert known.finish() == [f"k{index:06}" for index in range(1500, 2999)]
