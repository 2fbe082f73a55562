"""The agent's kept listings: a no-op over SSH sends runs, not items.

Against the real OpenSSH sshd of the ``sshd`` fixture. The agent keeps, in
the server's cache folder, what it expects a client's archive to hold for
the tree; a listing then sends a run of items as kept as one digest, which
the client checks against its own archive rows. Whatever the kept listing
holds (stale, damaged, another client's), no change may go unseen.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

import accord
from accord.engine.detect import KnownInOrder
from accord.errors import LockHeld
from accord.replicas import agent_listing, ssh, wire
from accord.replicas.local import LocalReplica
from accord.replicas.ssh import AgentReplica
from accord.state import lock
from accord.state.store import ABSENT

FILES = 30


@pytest.fixture
def agents(monkeypatch) -> list[AgentReplica]:
    """Every agent place the test opens, in order (their listing counts)."""
    found: list[AgentReplica] = []
    use = ssh.SSHReplica._use_agent

    def noted(self: ssh.SSHReplica, link: Any) -> None:
        use(self, link)
        assert isinstance(self.via, AgentReplica)
        found.append(self.via)

    monkeypatch.setattr(ssh.SSHReplica, "_use_agent", noted)
    return found


def _listings(sshd) -> Path:
    return sshd.root.parent / "cache" / "accord" / "listings"


def _kept(sshd) -> set[Path]:
    folder = _listings(sshd)
    return set(folder.iterdir()) if folder.exists() else set()


def _tree(root: Path) -> dict[bytes, bytes | None]:
    top = os.fsencode(root)
    found: dict[bytes, bytes | None] = {}
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d != b".accord"]
        rel = os.path.relpath(folder, top)
        for name in dirs:
            found[os.path.normpath(os.path.join(rel, name))] = None
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                found[os.path.normpath(os.path.join(rel, name))] = handle.read()
    return found


def _fill(local: Path) -> None:
    for index in range(FILES):
        folder = local / f"d{index % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{index:03}.txt").write_text(f"file {index}\n")


def _sync(left: Path, url: str, **options: Any) -> dict[str, Any]:
    report = accord.sync(str(left), url, **options)
    assert report.ok, report.summary()
    return report.summary()


def _first_copy(sshd: Any, tmp_path: Path) -> tuple[Path, str, Path, Path]:
    """A tree synced to the server once: the local folder, the URL, the
    server's folder, and the listing the agent kept for it."""
    local, url = tmp_path / "local", sshd.url()
    _fill(local)
    before = _kept(sshd)
    _sync(local, url)  # the first copy: listed in full, then kept
    (kept,) = _kept(sshd) - before
    return local, url, sshd.path(url), kept


def test_a_no_op_sends_runs_and_changes_behind_its_back_are_seen(
    sshd, tmp_path: Path, agents: list[AgentReplica]
) -> None:
    local, url, remote, kept = _first_copy(sshd, tmp_path)
    assert agents[-1].runs_listed == 0

    _sync(local, url)  # a no-op: runs only
    assert agents[-1].runs_listed >= 1
    assert agents[-1].items_listed == 0
    assert agents[-1].listed_again == 0

    target = remote / "d0" / "f000.txt"
    stamp = target.stat().st_mtime_ns

    def changed(step: str) -> None:
        assert _sync(local, url)["changed"] >= 1, step
        assert agents[-1].listed_again == 0, step
        assert agents[-1].runs_listed >= 1, step  # the rest still as runs
        assert _tree(local) == _tree(remote), step
        assert _sync(local, url)["changed"] == 0, step  # and kept again
        assert agents[-1].items_listed == 0, step

    # same size, another time
    os.utime(target, ns=(stamp, stamp + 1_000_000_000))
    target.write_text("file X\n")
    changed("same size")
    # another size, the same time
    target.write_text("file 0, longer now\n")
    os.utime(target, ns=(stamp, stamp))
    changed("same time")
    # another file renamed over it: same size and time, another inode
    swap = remote / "d0" / "swap.tmp"
    swap.write_text("file 0, longer NOW\n")
    os.utime(swap, ns=(stamp, stamp))
    os.rename(swap, target)
    changed("renamed over")
    assert (local / "d0" / "f000.txt").read_text() == "file 0, longer NOW\n"
    # a new file, a deleted one, a name that is not UTF-8
    (remote / "d1" / "new.txt").write_text("new\n")
    changed("new")
    (remote / "d2" / "f002.txt").unlink()
    changed("deleted")
    assert not (local / "d2" / "f002.txt").exists()
    with open(os.path.join(os.fsencode(remote / "d1"), b"caf\xe9.txt"), "wb") as f:
        f.write(b"latin-1\n")
    changed("not UTF-8")
    assert (local / "d1" / os.fsdecode(b"caf\xe9.txt")).read_bytes() == b"latin-1\n"
    assert kept.exists()


def test_a_damaged_or_wrong_kept_listing_is_never_believed(
    sshd, tmp_path: Path, agents: list[AgentReplica]
) -> None:
    local, url, remote, kept = _first_copy(sshd, tmp_path)

    # damaged: a byte changed, or cut short: listed in full
    data = bytearray(kept.read_bytes())
    data[-3] ^= 1
    kept.write_bytes(bytes(data))
    assert _sync(local, url)["changed"] == 0
    assert agents[-1].runs_listed == 0 and agents[-1].items_listed > FILES
    kept.write_bytes(kept.read_bytes()[:-10])
    assert _sync(local, url)["changed"] == 0
    assert agents[-1].runs_listed == 0

    # whole, but wrong: it says a file changed behind our back is as the
    # archive holds it. The run's digest tells, and the rest comes in full.
    target = remote / "d1" / "f001.txt"
    target.write_text("changed behind\n")
    place = LocalReplica(str(remote))
    pairs = [(e.key, e.version) for e in place.scan() if not isinstance(e, str)]
    agent_listing.write_kept(str(kept.parent), kept.name, pairs)
    assert _sync(local, url)["changed"] == 1
    assert agents[-1].listed_again == 1
    assert (local / "d1" / "f001.txt").read_text() == "changed behind\n"
    assert _sync(local, url)["changed"] == 0
    assert agents[-1].runs_listed >= 1 and agents[-1].items_listed == 0

    # gone: listed in full, and kept again
    kept.unlink()
    assert _sync(local, url)["changed"] == 0
    assert agents[-1].runs_listed == 0
    assert kept.exists()


def test_two_clients_with_their_own_archives_on_one_tree(
    sshd, tmp_path: Path, agents: list[AgentReplica]
) -> None:
    url = sshd.url()
    remote = sshd.path(url)
    first, second = tmp_path / "a", tmp_path / "b"
    states = {first: tmp_path / "state-a", second: tmp_path / "state-b"}
    _fill(first)
    second.mkdir()
    (second / "only-b.txt").write_text("b\n")

    def sync(local: Path) -> dict[str, Any]:
        return _sync(local, url, state_dir=states[local])

    sync(first)
    sync(second)
    sync(first)
    assert _tree(first) == _tree(second) == _tree(remote)
    for local in (first, second):
        assert sync(local)["changed"] == 0
        assert agents[-1].runs_listed >= 1 and agents[-1].items_listed == 0
    (first / "d0" / "f003.txt").write_text("edited by a\n")
    (second / "d1" / "f004.txt").unlink()
    sync(first)  # a's kept listing follows its own writes, b's does not
    sync(second)
    assert agents[-1].listed_again == 0
    sync(first)
    assert agents[-1].listed_again == 0
    assert _tree(first) == _tree(second) == _tree(remote)
    assert (second / "d0" / "f003.txt").read_text() == "edited by a\n"
    for local in (second, first):
        assert sync(local)["changed"] == 0
        assert agents[-1].items_listed == 0


def test_a_mirror_and_ignore_rules_go_by_runs_too(
    sshd, tmp_path: Path, agents: list[AgentReplica]
) -> None:
    local, url = tmp_path / "local", sshd.url()
    remote = sshd.path(url)
    _fill(local)
    (local / "skip.log").write_text("ignored\n")
    for _ in range(2):
        report = accord.mirror(str(local), url, delete=True, exclude=["*.log"])
        assert report.ok, report.summary()
    assert agents[-1].runs_listed >= 1 and agents[-1].items_listed == 0
    (remote / "extra.txt").write_text("not in the source\n")
    report = accord.mirror(str(local), url, delete=True, exclude=["*.log"])
    assert report.ok, report.summary()
    assert not (remote / "extra.txt").exists()
    assert not (remote / "skip.log").exists()


# -- the parts --------------------------------------------------------------
def test_kept_pairs_round_trip_and_damage_is_refused(tmp_path: Path) -> None:
    pairs = [("a", "1:2"), ("caf\udce9.txt", "3:4"), ("z/\u00e9", "d755")]
    agent_listing.write_kept(str(tmp_path), "name", pairs)
    assert agent_listing.read_kept(str(tmp_path), "name") == pairs
    agent_listing.write_kept(str(tmp_path), "empty", [])
    assert agent_listing.read_kept(str(tmp_path), "empty") == []
    data = (tmp_path / "name").read_bytes()
    (tmp_path / "name").write_bytes(data.replace(b"1:2", b"1:3"))
    assert agent_listing.read_kept(str(tmp_path), "name") is None
    assert agent_listing.read_kept(str(tmp_path), "absent") is None
    assert not list(tmp_path.glob("*.tmp"))


def test_keeping_on_a_full_or_unwritable_disk_fails_quietly(tmp_path: Path) -> None:
    folder = tmp_path / "listings"
    folder.write_text("a file where the folder would be")
    agent_listing.write_kept(str(folder), "name", [("a", "1")])  # no error
    assert agent_listing.read_kept(str(folder), "name") is None
    shutil.rmtree(tmp_path / "nothing", ignore_errors=True)


def _check(digest: str) -> Any:
    return lambda rows: wire.run_digest(rows) == digest


def test_a_run_passes_only_rows_it_is_exactly() -> None:
    rows = [("a", "1"), ("b", "2"), ("c", ABSENT), ("d", "4"), ("e", "5")]
    known = KnownInOrder(rows)
    run = [("b", "2"), ("d", "4")]
    assert not known.same_run("b", 2, _check(wire.run_digest([("b", "2"), ("d", "5")])))
    assert known.same_run("b", 2, _check(wire.run_digest(run)))
    assert known.unseen == ["a", "c"]  # before the run, and held by the other side
    assert known.get("e") == "5"
    assert known.finish() == ["a", "c"]
    # a run beyond the archive's end, or not starting at an archived key
    assert not KnownInOrder(rows).same_run("f", 1, _check(wire.run_digest([])))
    assert not KnownInOrder(rows).same_run("bb", 1, lambda rows: True)


def test_a_long_run_reads_the_archive_as_it_needs() -> None:
    rows = [(f"k{index:06}", str(index)) for index in range(10_000)]
    known = KnownInOrder(iter(rows))
    assert known.same_run("k000000", 5000, _check(wire.run_digest(rows[:5000])))
    assert known.same_run("k005001", 4999, _check(wire.run_digest(rows[5001:])))
    assert known.finish() == ["k005000"]


def test_a_lock_held_by_another_run_stops_the_run_before_any_listing(
    sshd, tmp_path: Path, agents: list[AgentReplica]
) -> None:
    local, url, remote, kept = _first_copy(sshd, tmp_path)
    kept_before = kept.read_bytes()
    # another run's lock, alive (pid 1 always runs), and a change a
    # listing would bring
    held = lock.LockInfo("someone@else", os.uname().nodename, 1, 0.0, "another")
    lock_file = remote / ".accord" / lock.LOCK_NAME
    lock_file.write_bytes(json.dumps(held._asdict()).encode())
    (remote / "d0" / "new.txt").write_text("new\n")
    with pytest.raises(LockHeld, match=r"is busy: locked by someone@else \(pid 1 "):
        accord.sync(str(local), url)
    assert agents[-1].runs_listed == agents[-1].items_listed == 0  # nothing listed
    assert lock_file.read_bytes() == json.dumps(held._asdict()).encode()
    assert kept.read_bytes() == kept_before
    assert not (local / "d0" / "new.txt").exists()
