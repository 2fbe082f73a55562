"""How long a change takes to arrive: ``accord watch`` against unison.

    python bench/watch_bench.py                 # 50 samples per case
    python bench/watch_bench.py --samples 10    # a quick check

Each sample writes one new small file on one side and times its arrival,
complete, on the other (looked at every 2 ms), then rests 1 to 1.5 s
(seeded jitter, so a tool that looks at a fixed interval is met at every
phase of it) before the next. Cases:

- ``accord local``: ``accord watch A B`` (defaults: ``--delay 0.5s``), and
  with ``--delay 0.1s``;
- ``accord hub``: (defaults, and with ``--delay 0.1s``) two machines,
  ``accord watch A hub://.../c`` and
  ``accord watch B hub://.../c`` (each its own state and its own user's
  login), through a fresh
  ``accord hub serve`` on loopback: A's change goes up, the hub pushes an
  event, B's watcher fetches it;
- ``unison``: Debian's unison 2.52 has no ``unison-fsmonitor`` (the package
  ships only ``/usr/bin/unison-2.52``), so ``-repeat watch`` stops with
  "No file monitoring helper program found" (the script runs it and shows
  its message); it is compared with ``unison A B -batch -repeat 1`` (a
  full scan every second), its nearest setting.

Prints p50, p99, min and max per case, and unison's p50 over accord's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from hub_bench import Hub  # noqa: E402


class Watcher:
    """A background syncing process, its output kept."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._sink = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            command,
            stdout=self._sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        self._sink.close()


def arrival(path: Path, data: bytes, timeout: float = 120.0) -> float:
    """Seconds until ``path`` holds ``data`` (looked at every 2 ms)."""
    start = time.perf_counter()
    deadline = start + timeout
    while time.perf_counter() < deadline:
        try:
            if path.read_bytes() == data:
                return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.002)
    raise TimeoutError(f"{path} did not arrive in {timeout:.0f}s")


def samples(source: Path, target: Path, count: int, seed: int) -> list[float]:
    """Write ``count`` new files in ``source``; their arrival times in ``target``."""
    jitter = random.Random(seed)
    warm = _write(source, "warm-up")
    arrival(target / warm.name, warm.read_bytes(), 300)
    found = []
    for i in range(count):
        time.sleep(1.0 + jitter.random() * 0.5)
        path = _write(source, f"sample-{i:03}")
        found.append(arrival(target / path.name, path.read_bytes()))
    return found


def _write(folder: Path, name: str) -> Path:
    path = folder / f"{name}.txt"
    data = f"{name} {time.time_ns()}\n".encode()
    temp = folder / f".{name}.part"  # a new file appears whole
    temp.write_bytes(data)
    temp.rename(path)
    return path


def _pair(work: Path, name: str) -> tuple[Path, Path]:
    base = work / name
    a, b = base / "a", base / "b"
    a.mkdir(parents=True), b.mkdir(parents=True)
    return a, b


def accord_local(work: Path, count: int, delay: str | None) -> list[float]:
    a, b = _pair(work, f"local-{delay or 'default'}")
    command = [sys.executable, "-m", "accord", "watch", str(a), str(b), "--json"]
    if delay:
        command += ["--delay", delay]
    env = {"ACCORD_STATE_DIR": str(a.parent / "state")}
    watcher = Watcher(command, env, a.parent / "watch.log")
    try:
        return samples(a, b, count, seed=1)
    finally:
        watcher.stop()


def second_machine(hub: Hub, url: str, folder: Path) -> Path:
    """A user of its own with a write grant, logged in: its credentials."""
    from accord.replicas.hub import HubReplica
    from accord.replicas.hub_client import HubClient, login

    replica = HubReplica(url)
    replica.open(create=True)
    replica.close()
    with HubClient(hub.base, admin=True) as client:
        code = client.add_user("two")["code"]
        client.grant("two", "watch", "write")
    credentials = folder / "two.json"
    admin = os.environ["ACCORD_HUB_CREDENTIALS"]
    os.environ["ACCORD_HUB_CREDENTIALS"] = str(credentials)
    try:
        login(hub.base, "two", code, node_name="two")
    finally:
        os.environ["ACCORD_HUB_CREDENTIALS"] = admin
    return credentials


def accord_hub(work: Path, count: int, delay: str | None = None) -> list[float]:
    hub = Hub(work)
    a, b = _pair(work, f"hub-{delay or 'default'}")
    url = hub.place("watch")
    logins = [hub.credentials, second_machine(hub, url, a.parent)]
    watchers = []
    try:
        for side, credentials in zip((a, b), logins, strict=True):
            command = [sys.executable, "-m", "accord", "watch", str(side), url]
            command += ["--delay", delay] if delay else []
            env = {
                "ACCORD_STATE_DIR": str(side.parent / f"state-{side.name}"),
                "ACCORD_HUB_CREDENTIALS": str(credentials),
            }
            log = side.parent / f"{side.name}.log"
            watchers.append(Watcher([*command, "--json"], env, log))
        return samples(a, b, count, seed=2)
    finally:
        for watcher in watchers:
            watcher.stop()
        hub.stop()


def unison_watch(work: Path) -> str:
    """What ``unison -repeat watch`` says with Debian's package."""
    a, b = _pair(work, "unison-watch")
    home = a.parent / "home"
    home.mkdir()
    done = subprocess.run(
        ["unison", str(a), str(b), "-batch", "-repeat", "watch"],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(home)},
        timeout=60,
    )
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[-1] if lines else f"exit {done.returncode}"


def unison_repeat(work: Path, count: int) -> list[float]:
    a, b = _pair(work, "unison-repeat")
    home = a.parent / "home"
    home.mkdir()
    command = ["unison", str(a), str(b), "-batch", "-repeat", "1", "-times"]
    watcher = Watcher(command, {"HOME": str(home)}, a.parent / "unison.log")
    try:
        return samples(a, b, count, seed=3)
    finally:
        watcher.stop()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--json", action="store_true", help="print the raw times")
    parser.add_argument(
        "--only", default="local,hub,unison", help="cases: local, hub, unison"
    )
    args = parser.parse_args()
    if shutil.which("unison") is None:
        sys.exit("unison is not installed: bash bench/setup.sh")
    work = Path(tempfile.mkdtemp(prefix="watch-bench-", dir=args.work))
    results: dict[str, list[float]] = {}
    try:
        cases = {
            "accord watch, local -> local": lambda: accord_local(
                work, args.samples, None
            ),
            "accord watch --delay 0.1s, local -> local": lambda: accord_local(
                work, args.samples, "0.1s"
            ),
            "accord watch, A -> hub -> B": lambda: accord_hub(work, args.samples),
            "accord watch --delay 0.1s, A -> hub -> B": lambda: accord_hub(
                work, args.samples, "0.1s"
            ),
            "unison -repeat 1, local -> local": lambda: unison_repeat(
                work, args.samples
            ),
        }
        wanted = set(args.only.split(","))
        cases = {
            name: case
            for name, case in cases.items()
            if any(word in name for word in wanted)
        }
        if "unison" in wanted:
            print(f"unison -repeat watch: {unison_watch(work)}")
        for name, case in cases.items():
            results[name] = case()
            print(_row(name, results[name]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print("| case | samples | p50 ms | p99 ms | min ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, times in results.items():
        print(_row(name, times))
    unison = results.get("unison -repeat 1, local -> local")
    for name, times in results.items():
        if name.startswith("accord") and unison:
            ratio = statistics.median(unison) / statistics.median(times)
            print(f"unison p50 / {name} p50: {ratio:.2f}")
    if args.json:
        print(json.dumps(results))


def _row(name: str, times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    return (
        f"| {name} | {len(ms)} | {percentile(ms, 0.5):.0f} | {percentile(ms, 0.99):.0f}"
        f" | {min(ms):.0f} | {max(ms):.0f} |"
    )


if __name__ == "__main__":
    main()
