"""A batch of small-file copies reports the bytes it wrote as one event
(``engine/transfer.py: _settled``): a progress display adds up the same
total, without an event object and a call for every file."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from accord import api
from accord.engine.report import Event
from accord.replicas.local import LocalReplica


class Batching(LocalReplica):
    """A local folder that takes small files in batches, as a place across
    a network does."""

    def open(self, create: bool = False) -> None:
        super().open(create)
        self.capabilities = self.capabilities._replace(
            parallel_transfers=True, batch_writes=True
        )


def test_a_batch_reports_its_bytes_once(tmp_path: Path) -> None:
    left, right = tmp_path / "l", tmp_path / "r"
    left.mkdir()
    right.mkdir()
    sizes = [100 + index for index in range(150)]
    for index, size in enumerate(sizes):
        (left / f"f{index:03}.txt").write_bytes(b"x" * size)
    events: list[Event] = []
    report = api.mirror(
        str(left),
        Batching(str(right)),
        state_dir=tmp_path / "s",
        on_event=events.append,
    )
    assert report.ok and len(report.done) == 150
    written = [event.size for event in events if event.kind == "bytes"]
    assert sum(written) == sum(sizes)
    assert len(written) <= 3  # batches of 64 files: one event each
    assert sum(event.kind == "done" for event in events) == 150
    for index, size in enumerate(sizes):
        assert (right / f"f{index:03}.txt").read_bytes() == b"x" * size


class Reading(LocalReplica):
    """A local source that notes the thread of each batch it reads;
    ``network`` makes it a place across a network."""

    def __init__(self, root: str, network: bool) -> None:
        super().__init__(root)
        self.network = network
        self.threads: set[str] = set()

    def open(self, create: bool = False) -> None:
        super().open(create)
        if self.network:
            self.capabilities = self.capabilities._replace(parallel_transfers=True)

    def read_small(self, entries):
        self.threads.add(threading.current_thread().name)
        return super().read_small(entries)


@pytest.mark.parametrize("network", [False, True], ids=["local", "network"])
def test_local_sources_of_batches_are_read_in_one_thread(
    tmp_path: Path, network: bool
) -> None:
    # four threads reading small local files pass the GIL back and forth at
    # each system call: the batches' local sources are read by the thread
    # that makes the tasks, a network's by the workers, several at once
    left, right = tmp_path / "l", tmp_path / "r"
    left.mkdir()
    right.mkdir()
    for index in range(300):
        (left / f"f{index:04}.txt").write_bytes(b"y" * index)
    source = Reading(str(left), network)
    report = api.mirror(source, Batching(str(right)), state_dir=tmp_path / "s")
    assert report.ok and len(report.done) == 300
    if network:
        assert threading.current_thread().name not in source.threads
    else:
        assert source.threads == {threading.current_thread().name}
    for index in range(300):
        assert (right / f"f{index:04}.txt").read_bytes() == b"y" * index
