"""The digests a run must read (same-size files whose version moved): on
threads where that pays (a place with round trips, or much to hash on a
local disk), on the run's own thread for a few changed local files,
where starting threads cost more than they saved."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from accord.capabilities import Capabilities
from accord.engine import detect
from accord.model import Entry
from accord.replicas.local import LocalReplica


class Traced(LocalReplica):
    """A local folder that notes the thread each digest is read on."""

    threads: list[int]

    def digest(self, entry: Entry) -> Entry:
        self.threads.append(threading.get_ident())
        return super().digest(entry)


class Remote(Traced):
    """The same folder, declared as a place that gains from parallel reads."""

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        return Capabilities(parallel_transfers=True)


def _listed(root: Path, place: Traced) -> list[Entry]:
    for i in range(20):
        (root / f"f{i}.txt").write_bytes(b"x" * 1000)
    place.open()
    place.threads = []
    found = [e for e in place.scan() if isinstance(e, Entry)]
    return [e for e in found if e.kind == "file"]


def test_a_few_changed_local_files_are_hashed_on_the_runs_thread(
    tmp_path: Path,
) -> None:
    place = Traced(str(tmp_path))
    entries = _listed(tmp_path, place)
    done = detect.fill_digests(place, entries, workers=4)
    assert all(isinstance(e, Entry) and e.digest for e in done)
    assert set(place.threads) == {threading.get_ident()}


def test_much_to_hash_on_a_local_disk_goes_to_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(detect, "_THREADS_FROM", 10_000)  # 20 files of 1,000 B
    place = Traced(str(tmp_path))
    entries = _listed(tmp_path, place)
    serial = [e.digest for e in detect.fill_digests(place, entries[:9], workers=4)]
    assert set(place.threads) == {threading.get_ident()}  # 9,000 B: here
    place.threads = []
    done = detect.fill_digests(place, entries, workers=4)
    assert threading.get_ident() not in place.threads
    assert [e.digest for e in done[:9]] == serial


def test_a_place_with_round_trips_reads_digests_on_threads(tmp_path: Path) -> None:
    place = Remote(str(tmp_path))
    entries = _listed(tmp_path, place)
    detect.fill_digests(place, entries, workers=4)
    assert threading.get_ident() not in place.threads
