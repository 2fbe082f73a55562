"""What a no-op over SSH does to cost less, without changing what it sees.

The agent pauses Python's cycle collector while it makes a listing (the
scan's tuples hold no cycles), and the client reads the archive rows a
batch of the agent's is checked against while it waits for that batch.
"""

from __future__ import annotations

import gc
import os

import pytest

from accord.engine.detect import KnownInOrder
from accord.replicas import agent, agent_listing


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


class _Watched(list):
    """Kept pairs that note being compared whole or freed."""

    events: list[str]

    def __eq__(self, other: object) -> bool:
        self.events.append("compared")
        return list.__eq__(self, other)  # type: ignore[arg-type]

    __hash__ = None  # type: ignore[assignment]

    def __del__(self) -> None:
        self.events.append("freed")


def _listing(root, listings, monkeypatch, events: list[str]) -> agent.Agent:
    """An agent (over no channel: its frames go to /dev/null) that listed
    ``root`` for one client's token, its kept pairs watched."""
    read = agent_listing.read_kept

    def watched(folder: str, name: str):
        found = read(folder, name)
        if found is None:
            return None
        pairs = _Watched(found)
        pairs.events = events
        return pairs

    monkeypatch.setattr(agent, "read_kept", watched)
    out = os.open(os.devnull, os.O_WRONLY)
    served = agent.Agent(-1, out, str(listings))
    served.hello(str(root), None)
    served.call(1, "open", [False], None)
    served.stream(2, "scan", [[], {"token": "client"}])
    return served


def test_a_listing_as_kept_is_neither_compared_nor_freed_on_the_run_s_path(
    tmp_path, monkeypatch
) -> None:
    """At a listing's end and at ``close`` the client waits for the agent:
    the kept pairs are not compared pair by pair with the listing (that it
    went all as kept, as many as were kept, says they are equal) nor freed
    there (the agent's process ends without freeing them); a listing that
    differs from them is still kept anew."""
    root, listings = tmp_path / "tree", tmp_path / "listings"
    for index in range(40):
        (root / f"d{index % 4}").mkdir(parents=True, exist_ok=True)
        (root / f"d{index % 4}" / f"f{index:02}").write_text(str(index))
    events: list[str] = []
    _listing(root, listings, monkeypatch, events).call(3, "close", [], None)
    (kept,) = listings.iterdir()  # the first listing, kept
    made = kept.stat()

    served = _listing(root, listings, monkeypatch, events)  # as kept
    assert served._listed is not None and served._listed[2] is True
    served.call(3, "close", [], None)
    assert events == []  # neither compared nor freed
    assert (kept.stat().st_ino, kept.stat().st_mtime_ns) == (
        made.st_ino,
        made.st_mtime_ns,
    )  # not written again
    del served
    gc.collect()
    assert events == ["freed"]  # held by the agent, not leaked

    (root / "d1" / "f13").unlink()  # one fewer: every other item as kept
    served = _listing(root, listings, monkeypatch, events)
    assert served._listed is not None and served._listed[2] is False
    served.call(3, "close", [], None)
    keys = [key for key, _ in agent_listing.read_kept(str(listings), kept.name)]
    assert len(keys) == 43 and "d1/f13" not in keys  # 4 folders, 39 files
