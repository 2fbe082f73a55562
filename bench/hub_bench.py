"""accord through a hub against rclone to `rclone serve webdav`, on loopback.

    python bench/hub_bench.py                          # 20,000 files, 10 clients
    python bench/hub_bench.py --files 2000 --repeat 1  # a quick check
    python bench/hub_bench.py --only concurrent --clients 10 --client-files 500

``upload``: the same generated tree (bench/gen_dataset.py) goes to a fresh
`accord hub serve` store (SQLite and a blob folder, on the same disk as
the sources) with ``accord mirror SRC hub://127.0.0.1:PORT/bench``, then
the same command again (a no-op); and to a fresh folder served by
``rclone serve webdav`` with ``rclone sync SRC :webdav,url=...,vendor=rclone:
--webdav-pacer-min-sleep 0`` (vendor rclone keeps mtimes, so its no-op
compares size and mtime like accord's; without the pacer flag rclone waits
10 ms between requests, which made it 15x slower here). Each first copy
and no-op runs ``--repeat`` times with fresh servers; the table shows
medians, and the ratios (rclone time / accord time: above 1, accord is
faster) come from the last run.

``concurrent``: ``--clients`` processes, each with its own tree of
``--client-files`` files, write through the hub's place API at once
(``write_batch``, as the engine does for small files): into a collection
each, then all into one shared collection (each under its own folder).
The clients start together once all are connected; it prints files per
second (from that start to the last client's end), the hub's p50/p99
request latency over that time (from its access log), and checks that
every file is on the hub with its sha256.
Whole `accord sync` runs into one collection take turns (a run locks the
collection), which is why the shared case drives the place API directly.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen_dataset import small_files  # noqa: E402
from run import find_rclone, measure  # noqa: E402

#: rclone's WebDAV client waits 10 ms between requests by default (a pacer
#: meant for remote servers): 30 ms a file here. Without it, it is 15x faster.
RCLONE_FLAGS = ["--webdav-pacer-min-sleep", "0"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


class Hub:
    """A fresh hub store served on a free port, with an admin node."""

    def __init__(self, work: Path) -> None:
        from accord.hub import init_hub
        from accord.replicas.hub_client import login

        self.folder = Path(tempfile.mkdtemp(prefix="hub-", dir=work))
        self.credentials = self.folder / "admin.json"
        os.environ["ACCORD_HUB_CREDENTIALS"] = str(self.credentials)
        _, token = init_hub(self.folder)
        self.port = free_port()
        self.log = self.folder / "serve.log"
        with open(self.log, "wb") as sink:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "accord", "hub", "serve", str(self.folder),
                    "--port", str(self.port), "--log-level", "info",
                ],
                stdout=sink,
                stderr=sink,
            )  # fmt: skip
        wait_port(self.port)
        self.base = f"http://127.0.0.1:{self.port}"
        login(self.base, "admin", token, node_name="bench")

    def place(self, name: str) -> str:
        return f"hub://127.0.0.1:{self.port}/{name}"

    def latencies(self, since: float, until: float) -> list[float]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if data.get("message") == "request" and since <= data["time"] <= until:
                found.append(float(data["ms"]))
        return found

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        shutil.rmtree(self.folder, ignore_errors=True)


class WebDAV:
    """``rclone serve webdav`` of a fresh folder."""

    def __init__(self, rclone: str, work: Path) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="webdav-", dir=work))
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                rclone,
                "serve",
                "webdav",
                str(self.folder),
                "--addr",
                f"127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)
        self.remote = f":webdav,url='http://127.0.0.1:{self.port}',vendor=rclone:"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        shutil.rmtree(self.folder, ignore_errors=True)


def upload(args: argparse.Namespace, work: Path, source: Path) -> None:
    rclone = find_rclone()
    env = {"ACCORD_STATE_DIR": str(work / "state"), "HOME": str(work)}
    times: dict[str, list[float]] = {}
    memory: dict[str, list[int]] = {}

    def note(name: str, got) -> None:  # type: ignore[no-untyped-def]
        if got.code != 0:
            print(f"  ! {name} exited {got.code}: {got.errors[-500:]}")
        times.setdefault(name, []).append(got.seconds)
        memory.setdefault(name, []).append(got.peak_kib or 0)
        print(
            f"  {name:<24} {got.seconds:7.2f} s  {(got.peak_kib or 0) / 1024:6.1f} MiB"
        )

    for run in range(args.repeat):
        print(f"run {run + 1} of {args.repeat}")
        shutil.rmtree(work / "state", ignore_errors=True)
        hub = Hub(work)
        try:
            command = [
                *(sys.executable, "-m", "accord", "mirror"),
                *(str(source), hub.place("bench"), "--yes", "-q"),
            ]
            hub_env = {**env, "ACCORD_HUB_CREDENTIALS": str(hub.credentials)}
            note("accord first", measure(command, {**os.environ, **hub_env}))
            note("accord noop", measure(command, {**os.environ, **hub_env}))
        finally:
            hub.stop()
        if rclone is None:
            print("  (rclone not found: bash bench/setup.sh installs it)")
            continue
        dav = WebDAV(rclone, work)
        try:
            command = [rclone, "sync", str(source), dav.remote, *RCLONE_FLAGS]
            note("rclone first", measure(command, {**os.environ, **env}))
            note("rclone noop", measure(command, {**os.environ, **env}))
        finally:
            dav.stop()
    print("\nmedians (peak RSS of the client):")
    for name, values in times.items():
        print(
            f"  {name:<24} {statistics.median(values):7.2f} s  "
            f"{statistics.median(memory[name]) / 1024:6.1f} MiB"
        )
    if "rclone first" in times:
        for phase in ("first", "noop"):
            ratio = times[f"rclone {phase}"][-1] / times[f"accord {phase}"][-1]
            print(f"  ratio rclone/accord, {phase} (last run): {ratio:.2f}")


def _client(job: tuple[str, str, str, str, float]) -> tuple[int, float, list[str]]:
    """One client process: at ``start`` (all clients started and connected),
    write every file of ``root`` through the place API in batches of 64;
    (files written, when it finished, errors)."""
    credentials, url, root, prefix, start = job
    os.environ["ACCORD_HUB_CREDENTIALS"] = credentials
    from accord.model import FILE, Entry
    from accord.registry import open_replica
    from accord.replica import WriteItem

    place = open_replica(url)
    place.open(create=True)
    time.sleep(max(0.0, start - time.time()))
    errors: list[str] = []
    batch: list[WriteItem] = []
    written = 0

    def flush() -> None:
        nonlocal written
        for item, result in zip(batch, place.write_batch(batch), strict=True):
            if isinstance(result, Exception):
                errors.append(f"{item.key}: {result}")
            else:
                written += 1
        batch.clear()

    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            data = Path(path).read_bytes()
            key = prefix + os.path.relpath(path, root)
            like = Entry(key, FILE, len(data), os.stat(path).st_mtime_ns, 0o644)
            batch.append(WriteItem(key, data, like, None))
            if len(batch) >= 64:
                flush()
    if batch:
        flush()
    place.close()
    return written, time.time(), errors


def expected(roots: list[Path], prefixes: list[str]) -> dict[str, str]:
    found = {}
    for root, prefix in zip(roots, prefixes, strict=True):
        for folder, _, names in os.walk(root):
            for name in names:
                path = os.path.join(folder, name)
                digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                found[prefix + os.path.relpath(path, root)] = "sha256:" + digest
    return found


def listed(hub: Hub, names: list[str]) -> dict[str, str | None]:
    from accord.registry import open_replica

    found = {}
    for name in set(names):
        place = open_replica(hub.place(name))
        place.open()
        for entry in place.entries():
            if entry.kind == "file":
                found[entry.key] = entry.digest
        place.close()
    return found


def concurrent(args: argparse.Namespace, work: Path) -> None:
    roots = []
    for number in range(args.clients):
        root = work / "clients" / f"c{number}"
        if not root.exists():
            small_files(root, args.client_files, seed=1000 + number)
        roots.append(root)
    for shared in (False, True):
        hub = Hub(work)
        try:
            names = (
                ["shared"] * len(roots)
                if shared
                else [f"own{i}" for i in range(len(roots))]
            )
            prefixes = [f"c{i}/" if shared else "" for i in range(len(roots))]
            start = time.time() + 15  # every client imported and connected by then
            jobs = [
                (str(hub.credentials), hub.place(n), str(r), p, start)
                for n, r, p in zip(names, roots, prefixes, strict=True)
            ]
            if shared:  # the collection exists before the clients race
                _client(
                    (
                        str(hub.credentials),
                        hub.place("shared"),
                        str(work / "empty"),
                        "",
                        0.0,
                    )
                )
            with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
                results = pool.map(_client, jobs)
            ended_at = max(r[1] for r in results)
            seconds = ended_at - start
            latencies = sorted(hub.latencies(start, ended_at))
            files = sum(r[0] for r in results)
            errors = [e for r in results for e in r[2]]
            want = {}
            for name, root, prefix in zip(names, roots, prefixes, strict=True):
                for key, digest in expected([root], [prefix]).items():
                    want[(name, key)] = digest
            have = {}
            for name in set(names):
                for key, digest in listed(hub, [name]).items():
                    have[(name, key)] = digest
            lost = [k for k, v in want.items() if have.get(k) != v]
            label = "one shared collection" if shared else "a collection each"
            print(f"{args.clients} clients, {label}:")
            print(
                f"  {files} files in {seconds:.2f} s: {files / seconds:.0f} files/s; "
                f"requests: {len(latencies)}, p50 {percentile(latencies, 50):.1f} ms, "
                f"p99 {percentile(latencies, 99):.1f} ms"
            )
            print(f"  errors: {len(errors)}; lost or wrong: {len(lost)} of {len(want)}")
            for line in (errors + [str(k) for k in lost])[:5]:
                print(f"    {line}")
        finally:
            hub.stop()


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    index = min(len(values) - 1, round(share / 100 * (len(values) - 1)))
    return values[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--client-files", type=int, default=500)
    parser.add_argument("--only", default="upload,concurrent")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="accord-hub-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "empty").mkdir(exist_ok=True)
    only = set(args.only.split(","))
    try:
        if "upload" in only:
            source = work / "source"
            if not source.exists():
                size = small_files(source, args.files)
                print(
                    f"data: {args.files} files, {size / (1 << 20):.0f} MiB in {source}"
                )
            upload(args, work, source)
        if "concurrent" in only:
            concurrent(args, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
