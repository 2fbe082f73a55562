"""accord's FSDB mode against plantdb-client's own ``fsdb_sync``, local to local.

    python bench/plantdb_bench.py                     # 20 scans x 3 x 50 x 100 KiB
    python bench/plantdb_bench.py --scans 5 --repeat 1

The database is built with plantdb's own API (plantdb-commons 0.17): 20
scans, each with the filesets images, masks and features of 50 files of
100 KiB random bytes, plus plantdb's per-file and per-fileset metadata.
Each tool copies it into a fresh, empty plantdb database (marker and user
registry made by plantdb), then runs again on the same target (no-op):

- ``fsdb_sync SRC DST`` (plantdb-client; copies scans only, no locks);
- ``accord mirror SRC DST --yes -q`` (the FSDB mode, found by the marker);
- ``rsync -a SRC/ DST/`` (the floor; copies everything).

Every timed span ends with ``sync`` (durable data) and starts after
``sync; sleep 2``; the source is warm in the page cache. Fresh targets are
made before any run (a fresh ``rm -rf`` slows the next creates). Prints
medians, min-max, and the ratios accord / other (below 1: accord is faster).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def build(root: Path, scans: int, files: int, size: int) -> None:
    from plantdb.commons.fsdb.core import FSDB

    root.mkdir(parents=True)
    (root / "romidb").touch()
    db = FSDB(str(root), log_level="ERROR")
    db.connect()
    db.login("admin", "admin")
    try:
        for s in range(scans):
            scan = db.create_scan(f"scan_{s:03d}", metadata={"bench": True})
            for fs_id in ("images", "masks", "features"):
                fileset = scan.create_fileset(fs_id)
                fileset.set_metadata({"kind": fs_id})
                for f in range(files):
                    file = fileset.create_file(f"{fs_id}_{f:03d}")
                    file.write_raw(os.urandom(size), ext="png")
                    file.set_metadata({"index": f})
    finally:
        db.disconnect()


def empty(root: Path) -> None:
    from plantdb.commons.fsdb.core import FSDB

    root.mkdir(parents=True)
    (root / "romidb").touch()
    db = FSDB(str(root), log_level="ERROR")
    db.connect()
    db.disconnect()


def timed(command: list[str], env: dict[str, str]) -> float:
    subprocess.run(["sync"], check=True)
    time.sleep(2)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    subprocess.run(["sync"], check=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds


def commands(tool: str, source: Path, target: Path) -> list[str]:
    if tool == "fsdb_sync":
        return [str(BIN / "fsdb_sync"), str(source), str(target)]
    if tool == "accord mirror":
        return [str(BIN / "accord"), "mirror", str(source), str(target), "--yes", "-q"]
    return ["rsync", "-a", f"{source}/", f"{target}/"]


def files_in(root: Path) -> tuple[int, int]:
    count = size = 0
    for path in root.rglob("*"):
        if path.is_file():
            count += 1
            size += path.stat().st_size
    return count, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scans", type=int, default=20)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--size", type=int, default=100 << 10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="work folder (default: a temp one)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    work = Path(args.dir or tempfile.mkdtemp(prefix="accord-plantdb-bench-"))
    source = work / "source"
    started = time.perf_counter()
    if not source.exists():
        build(source, args.scans, args.files, args.size)
    count, size = files_in(source)
    print(
        f"database: {args.scans} scans x 3 filesets x {args.files} files of "
        f"{args.size >> 10} KiB: {count} files, {size / 1e6:.0f} MB "
        f"(built in {time.perf_counter() - started:.1f} s)"
    )
    template = work / "empty"
    if not template.exists():
        empty(template)
    tools = ("fsdb_sync", "accord mirror", "rsync -a")
    targets = {}
    for rep in range(args.repeat):
        for tool in tools:
            target = work / f"t-{tool.split()[0]}-{rep}-{os.getpid()}"
            shutil.copytree(template, target)
            targets[tool, rep] = target
    env = {**os.environ, "ACCORD_STATE_DIR": str(work / f"state-{os.getpid()}")}
    times: dict[tuple[str, str], list[float]] = {}
    for rep in range(args.repeat):
        for tool in tools:  # alternating: the machine's noise hits all alike
            target = targets[tool, rep]
            first = timed(commands(tool, source, target), env)
            noop = timed(commands(tool, source, target), env)
            times.setdefault(("first copy", tool), []).append(first)
            times.setdefault(("no-op", tool), []).append(noop)
    print("\n| run | tool | seconds (median, min-max) | files in target |")
    print("|---|---|---|---|")
    for (run, tool), values in times.items():
        copied = files_in(targets[tool, 0])[0]
        print(
            f"| {run} | {tool} | {statistics.median(values):.2f} "
            f"({min(values):.2f}-{max(values):.2f}) | {copied} |"
        )
    print()
    for run in ("first copy", "no-op"):
        mine = statistics.median(times[run, "accord mirror"])
        ratios = ", ".join(
            f"{tool} {mine / statistics.median(times[run, tool]):.2f}"
            for tool in tools
            if tool != "accord mirror"
        )
        print(f"{run}: accord / other: {ratios}")
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
