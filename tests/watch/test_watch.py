"""``accord watch`` as a real process: folders, a hub, S3; signals, failures.

Nothing here measures time: each test polls for the state it expects,
with generous timeouts (speed is in bench/watch_bench.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from _watcher import WatchProcess, converge, tree

from accord.replica import Touched


def accord(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "accord", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def seed(
    root: Path, count: int, size: int = 64, folder: str = "seed"
) -> dict[str, bytes]:
    made = {}
    (root / folder).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        data = f"{folder} {i}\n".encode() * max(1, size // 8)
        (root / folder / f"f{i:05}.txt").write_bytes(data)
        made[f"{folder}/f{i:05}.txt"] = data
    return made


# -- local folders -------------------------------------------------------------


def test_changes_made_during_a_run_arrive_in_the_next(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    seed(a, 3000)  # a first run long enough to change things during it
    (a / "keep.txt").write_text("one\n")
    (a / "edit.txt").write_text("before\n")
    (a / "old-name.txt").write_text("renamed\n")
    (a / "gone.txt").write_text("deleted\n")
    with WatchProcess(str(a), str(b)) as watcher:
        watcher.wait_event("run", n=1)
        (a / "new.txt").write_text("created during the run\n")
        (a / "edit.txt").write_text("after\n")
        (a / "old-name.txt").rename(a / "new-name.txt")
        (a / "gone.txt").unlink()
        (b / "from-b.txt").write_text("made on the other side\n")
        during = not watcher.of("done")
        expect = tree(a)
        assert "from-b.txt" not in expect
        expect["from-b.txt"] = b"made on the other side\n"
        found = converge(watcher, a, b, expect=expect)
        assert found["edit.txt"] == b"after\n"
        assert "old-name.txt" not in found and "gone.txt" not in found
        assert len(watcher.of("run")) >= 2
        assert watcher.stop() == 0
    assert during, "the first run ended before the changes were made"
    assert watcher.of("stopped")
    assert (
        not (a / ".accord" / "lock").exists() and not (b / ".accord" / "lock").exists()
    )


def test_a_burst_of_ten_thousand_files_takes_a_few_runs(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    with WatchProcess(str(a), str(b)) as watcher:
        watcher.wait_event("done")
        before = len(watcher.of("run"))
        made = {}
        for part in range(10):
            made.update(seed(a, 1000, size=16, folder=f"burst{part}"))
        converge(watcher, a, b, expect=made)
        runs = len(watcher.of("run")) - before
        assert runs < 20, f"{runs} runs for one burst"
        assert watcher.stop() == 0


def test_a_file_being_written_is_not_copied_half_way(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    args = (str(a), str(b), "--delay", "0.2s", "--max-delay", "5m")
    with WatchProcess(*args) as watcher:
        watcher.wait_event("done")
        runs = len(watcher.of("run"))
        with (a / "slow.bin").open("wb") as handle:
            for _ in range(5):
                handle.write(b"x" * 4096)
                handle.flush()
                time.sleep(0.5)  # longer than --delay: only the open file holds it
            assert len(watcher.of("run")) == runs
            assert not (b / "slow.bin").exists()
        converge(watcher, a, b, expect={"slow.bin": b"x" * 4096 * 5})
        assert watcher.stop() == 0


def test_a_folder_made_by_the_first_run_is_then_watched(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"  # b: made by the first run
    a.mkdir()
    (a / "x.txt").write_text("x\n")
    # -y, as typed for sync and mirror, is taken (a watcher asks nothing)
    with WatchProcess(str(a), str(b), "--poll", "1h", "-y") as watcher:
        converge(watcher, a, b, expect={"x.txt": b"x\n"})
        watcher.wait_event("watching", side="right", how="notified")
        hows = [e["how"] for e in watcher.of("watching") if e["side"] == "right"]
        assert hows[0].startswith("polled every 1h")
        (b / "y.txt").write_text("y\n")  # noticed at once, not in an hour
        converge(watcher, a, b, expect={"x.txt": b"x\n", "y.txt": b"y\n"})
        assert watcher.stop() == 0


def test_every_pair_of_a_profile_group(tmp_path: Path) -> None:
    places = {name: tmp_path / name for name in ("a1", "b1", "a2", "b2")}
    for path in places.values():
        path.mkdir()
    config = tmp_path / "accord.toml"
    config.write_text(
        f'[pairs.work.one]\nleft = "{places["a1"]}"\nright = "{places["b1"]}"\n'
        f'[pairs.work.two]\nleft = "{places["a2"]}"\nright = "{places["b2"]}"\n'
        'exclude = ["*.tmp"]\n'
    )
    env = {"ACCORD_CONFIG": str(config)}
    with WatchProcess("--profile", "work", env=env) as watcher:
        watcher.wait(lambda: len(watcher.of("done")) >= 2, why="both first runs")
        (places["a1"] / "one.txt").write_text("1\n")
        (places["b2"] / "two.txt").write_text("2\n")
        (places["b2"] / "skip.tmp").write_text("ignored\n")
        converge(watcher, places["a1"], places["b1"], expect={"one.txt": b"1\n"})
        watcher.wait(lambda: (places["a2"] / "two.txt").exists(), why="pair two")
        watcher.wait(watcher.idle, why="rest")
        assert not (places["a2"] / "skip.tmp").exists()
        assert {e["pair"] for e in watcher.of("run")} == {"work.one", "work.two"}
        assert watcher.stop() == 0


def test_sigterm_during_a_run_leaves_nothing_half_written(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    made = {}
    for i in range(40):
        data = os.urandom(1 << 16) * 48  # 3 MiB each
        (a / f"big{i:02}.bin").write_bytes(data)
        made[f"big{i:02}.bin"] = data
    with WatchProcess(str(a), str(b)) as watcher:
        watcher.wait_event("run", n=1)
        watcher.wait(lambda: any(b.glob("big*.bin")), why="a first file copied")
        assert watcher.stop(signal.SIGTERM) == 0
        assert not watcher.of("done"), "the run ended before the signal"
        stopped = watcher.of("stopped")
        assert stopped and stopped[-1].get("interrupted") is True
        assert "Traceback" not in watcher.stderr
    copied = tree(b)
    assert copied, "nothing was copied before the signal"
    for name, data in copied.items():
        assert data == made[name], f"{name} is half-written"
    assert not (b / ".accord" / "lock").exists()
    again = accord("sync", str(a), str(b), "--yes", "-q")
    assert again.returncode == 0, again.stderr
    assert tree(b) == made


def test_a_vanished_folder_stops_the_pair_and_deletes_nothing(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    made = seed(a, 20)
    with WatchProcess(str(a), str(b), "--delay", "0.1s") as watcher:
        converge(watcher, a, b, expect=made)
        b.rename(tmp_path / "b-unmounted")
        b.mkdir()  # the mount point, empty
        (a / "seed" / "f00000.txt").write_text("changed while away\n")
        failed = watcher.wait_event("failed")
        assert "empt" in failed["error"] or "not found" in failed["error"]
        assert failed["retry_in"] > 0
        assert tree(a).keys() == made.keys()  # nothing deleted
        later = watcher.wait_event("failed", after=watcher.events.index(failed) + 1)
        assert later["failures"] > failed["failures"]
        assert later["retry_in"] >= failed["retry_in"]
        b.rmdir()
        (tmp_path / "b-unmounted").rename(b)  # mounted again
        made["seed/f00000.txt"] = b"changed while away\n"
        converge(watcher, a, b, expect=made)
        assert watcher.stop() == 0


# -- a hub between two machines ---------------------------------------------------


def _machine(hub, folder: Path, collection: str) -> Path:
    """A new user with a write grant, logged in on a machine of its own."""
    from accord.replicas.hub_client import HubClient, login

    name = "w" + uuid.uuid4().hex[:8]
    with HubClient(hub.base, ca=hub.ca, admin=True) as client:
        code = client.add_user(name)["code"]
        client.grant(name, collection, "write")
    credentials = folder / f"{name}.json"
    before = os.environ["ACCORD_HUB_CREDENTIALS"]
    os.environ["ACCORD_HUB_CREDENTIALS"] = str(credentials)
    try:
        login(hub.base, name, code, node_name=name, ca=hub.ca)
    finally:
        os.environ["ACCORD_HUB_CREDENTIALS"] = before
    return credentials


def _collection(hub) -> str:
    from accord.replicas.hub import HubReplica

    url = hub.place()
    replica = HubReplica(url)
    replica.open(create=True)
    replica.close()
    return url


def test_a_round_trip_between_two_machines_through_a_hub(
    hub_server, tmp_path: Path
) -> None:
    url = _collection(hub_server)
    name = url.rsplit("/", 1)[1]
    machines = []
    for side in ("one", "two"):
        folder = tmp_path / side
        folder.mkdir()
        env = {
            "ACCORD_HUB_CREDENTIALS": str(_machine(hub_server, tmp_path, name)),
            "ACCORD_STATE_DIR": str(tmp_path / f"state-{side}"),
        }
        machines.append((folder, env))
    (one, env_one), (two, env_two) = machines
    (one / "paper.txt").write_text("draft 1\n")
    with (
        WatchProcess(str(one), url, "--poll", "1h", env=env_one) as first,
        WatchProcess(str(two), url, "--poll", "1h", env=env_two) as second,
    ):
        for watcher in (first, second):
            watcher.wait(lambda w=watcher: len(w.of("watching")) >= 2, why="watches")
        hows = {e["side"]: e["how"] for e in second.of("watching")}
        assert hows == {"left": "notified", "right": "notified"}
        second.wait(lambda: (two / "paper.txt").exists(), why="one -> two")
        assert (two / "paper.txt").read_text() == "draft 1\n"
        (two / "paper.txt").write_text("draft 2, from two\n")
        (two / "notes").mkdir()
        (two / "notes" / "n.txt").write_text("note\n")
        first.wait(
            lambda: (
                (one / "notes" / "n.txt").exists()
                and (one / "paper.txt").read_text() == "draft 2, from two\n"
            ),
            why="two -> one",
        )
        (one / "notes" / "n.txt").unlink()
        second.wait(lambda: not (two / "notes" / "n.txt").exists(), why="a delete")
        assert tree(one) == tree(two) == {"paper.txt": b"draft 2, from two\n"}
        assert first.stop() == 0 and second.stop() == 0


def test_two_pairs_of_one_watcher_over_one_collection(
    hub_server, tmp_path: Path
) -> None:
    """The hub does not tell a machine of its own writes: the watcher tells
    the other pair that shares the collection itself."""
    url = _collection(hub_server)
    x, y = tmp_path / "x", tmp_path / "y"
    x.mkdir(), y.mkdir()
    config = tmp_path / "accord.toml"
    config.write_text(
        f'[pairs.both.x]\nleft = "{x}"\nright = "{url}"\n'
        f'[pairs.both.y]\nleft = "{y}"\nright = "{url}"\n'
    )
    with WatchProcess("-p", "both", env={"ACCORD_CONFIG": str(config)}) as watcher:
        watcher.wait(lambda: len(watcher.of("done")) >= 2, why="both first runs")
        (x / "shared.txt").write_text("from x\n")
        watcher.wait(lambda: (y / "shared.txt").exists(), why="x -> hub -> y")
        assert (y / "shared.txt").read_text() == "from x\n"
        assert watcher.stop() == 0


def test_an_unreachable_hub_is_retried_and_recovers(tmp_path: Path) -> None:
    from accord.hub import init_hub
    from fixtures.hub import HubProcess, login_admin

    folder = tmp_path / "hub"
    folder.mkdir()
    _, token = init_hub(folder)
    hub = HubProcess(folder).start()
    try:
        login_admin(hub, token)
        url = _collection(hub)
        a = tmp_path / "a"
        a.mkdir()
        (a / "first.txt").write_text("1\n")
        with WatchProcess(str(a), url, "--delay", "0.1s") as watcher:
            watcher.wait_event("done", changed=1)
            hub.stop()
            failed = watcher.wait_event("failed")  # said while idle: the feed broke
            (a / "second.txt").write_text("2\n")
            assert "hub" in failed["error"] and failed["retry_in"] > 0
            after = watcher.events.index(failed) + 1
            watcher.wait_event("failed", after=after)  # tried again
            hub.start()
            watcher.wait_event("done", after=after, changed=1)
            assert watcher.stop() == 0
        check = tmp_path / "check"
        done = accord("mirror", url, str(check), "--yes", "-q")
        assert done.returncode == 0, done.stderr
        assert tree(check) == {"first.txt": b"1\n", "second.txt": b"2\n"}
    finally:
        hub.stop()


# -- a polled place ---------------------------------------------------------------


def test_an_s3_prefix_is_polled(s3_server, tmp_path: Path) -> None:
    url = s3_server.url()
    a = tmp_path / "a"
    a.mkdir()
    (a / "up.txt").write_text("up\n")
    with WatchProcess(str(a), url, "--poll", "0.5s") as watcher:
        hows = watcher.wait(lambda: watcher.of("watching")[1:], why="watches")
        assert hows[0]["how"].startswith("polled every 0.5s")
        watcher.wait(lambda: "up.txt" in s3_server.objects(url), why="a -> s3")
        prefix = url.split(s3_server.bucket + "/", 1)[1].split("?", 1)[0]
        s3_server.client().put_object(
            Bucket=s3_server.bucket, Key=f"{prefix}/down.txt", Body=b"down\n"
        )
        watcher.wait(lambda: (a / "down.txt").exists(), why="s3 -> a")
        assert (a / "down.txt").read_bytes() == b"down\n"
        assert watcher.stop() == 0


# -- the library's side ------------------------------------------------------------


def test_the_library_tells_changes_and_stops(tmp_path: Path) -> None:
    import threading

    from accord.watch import Pair, Watcher

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "x.txt").write_text("x\n")
    events = []

    def seen(event) -> None:
        events.append(event)
        if event.kind == "done" and (b / "x.txt").exists():
            watcher.stop()

    watcher = Watcher([Pair(str(a), str(b))], quiet=0.05, on_event=seen)
    thread = threading.Thread(target=watcher.run)
    thread.start()
    thread.join(120)
    assert not thread.is_alive()
    assert [e.kind for e in events][-1] == "stopped"
    assert (b / "x.txt").read_text() == "x\n"
    assert watcher.status()[0].runs >= 1


def test_a_place_that_cannot_tell_is_none(tmp_path: Path) -> None:
    from accord.registry import open_replica

    assert open_replica("memory://somewhere").watch(lambda t: None) is None
    watching = open_replica(str(tmp_path)).watch(lambda t: None)
    assert watching is not None
    watching.stop()
    assert Touched().key is None


def test_usage_errors(tmp_path: Path) -> None:
    done = accord("watch", str(tmp_path))
    assert done.returncode == 2 and "two places" in done.stderr
    done = accord("watch", str(tmp_path), str(tmp_path / "b"), "--poll", "soon")
    assert done.returncode == 2 and "not a duration" in done.stderr
    config = tmp_path / "accord.toml"
    config.write_text(
        f'[pairs.p]\nleft = "{tmp_path}/x"\nright = "{tmp_path}/y"\nconflict = "ask"\n'
    )
    done = accord("watch", "-p", "p", env={"ACCORD_CONFIG": str(config)})
    assert done.returncode == 2 and "asks nothing" in done.stderr
    done = accord("watch", str(tmp_path), "nosuch://x")
    assert done.returncode == 1 and "unknown place type" in done.stderr
    (tmp_path / "inner").mkdir()
    done = accord("watch", str(tmp_path), str(tmp_path / "inner"), "--json")
    assert done.returncode == 2 and "inside" in done.stderr
    assert "Traceback" not in done.stderr
