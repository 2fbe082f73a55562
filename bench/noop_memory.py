"""A no-op two-way sync: time, CPU and memory per file, accord against rsync
and unison, the tools' runs interleaved.

    python bench/noop_memory.py --files 100000,1000000 --repeat 3
    python bench/noop_memory.py --files 20000 --contents --repeat 7 \\
        --tools accord,before=/path/to/other/accord,rsync

For each size N: a tree of N files in bench/gen_dataset.py's layout (its
folders, names and, with --contents, sizes: 20,000 files make 200 MiB);
without --contents every file is empty (a no-op reads no contents, and
1,000,000 files of 10 KiB would need 10 GiB). Each tool gets a `cp -a` of
it, syncs once, then its no-op runs --repeat times, the tools taking turns
(one run of each, then the next round: a load that changes during the
benchmark weighs on all of them alike). `NAME=PROGRAM` in --tools is
another accord command (an older build, say) run as `PROGRAM sync ...`.

Measured by GNU time: wall seconds (with a trailing `sync`), CPU seconds
(user + system, of the tool's processes waited for), and peak RSS (the
largest single process). The same tool's no-op on a tree of one file is
its baseline, and

    bytes per file = (peak RSS at N - peak RSS at 1) / N

Medians of the runs; ratios are tool / accord (above 1: accord is faster).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gen_dataset
from run import GNU_TIME, Place, find_accord

SEED = 42


def tree(root: Path, files: int, contents: bool) -> None:
    """gen_dataset's tree of ``files`` files; every one empty unless
    ``contents``."""
    sized = gen_dataset.file_size
    if not contents:
        gen_dataset.file_size = lambda rng: 0
    try:
        gen_dataset.small_files(root, files, SEED)
    finally:
        gen_dataset.file_size = sized


def command(tool: str, place: Place) -> list[str]:
    src, dst = str(place.src), str(place.dst)
    name, _, program = tool.partition("=")
    if program or name == "accord":
        return [program or find_accord() or "accord", "sync", src, dst, "--yes", "-q"]
    if name == "rsync":
        return ["rsync", "-a", "--delete", f"{src}/", f"{dst}/"]
    if name == "unison":
        return ["unison", src, dst, "-batch", "-auto", "-silent", "-times"]
    raise SystemExit(f"unknown tool {tool}")


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds with a trailing sync, CPU seconds, peak RSS KiB)."""
    with tempfile.NamedTemporaryFile("r") as report:
        started = time.perf_counter()
        done = subprocess.run(
            [GNU_TIME, "-f", "%U %S %M", "-o", report.name, *cmd],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        os.sync()
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr[-2000:]!r}")
        user, system, peak = report.read().split()[-3:]
    return seconds, float(user) + float(system), int(peak)


def noops(
    tools: list[str], source: Path, work: Path, repeat: int
) -> dict[str, list[tuple[float, float, int]]]:
    """Each tool's first sync of a copy of ``source``, then ``repeat``
    rounds of one no-op of each tool."""
    places = {}
    for index, tool in enumerate(tools):
        place = Place(
            work / f"{index}-src", work / f"{index}-dst", work / f"{index}-st"
        )
        place.src.mkdir(parents=True)
        subprocess.run(["cp", "-a", f"{source}/.", f"{place.src}/"], check=True)
        place.make()
        timed(command(tool, place), place.env())
        places[tool] = place
    runs: dict[str, list[tuple[float, float, int]]] = {tool: [] for tool in tools}
    for _ in range(repeat):
        for tool, place in places.items():
            runs[tool].append(timed(command(tool, place), place.env()))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", default="100000", help="sizes, comma-separated")
    parser.add_argument("--tools", default="accord,rsync,unison")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--contents", action="store_true", help="files of ~10 KiB")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--keep", action="store_true", help="keep the trees")
    args = parser.parse_args()
    tools = [
        t for t in args.tools.split(",") if "=" in t or t == "accord" or shutil.which(t)
    ]
    work = Path(tempfile.mkdtemp(prefix="accord-noop-", dir=args.work))
    print(f"load {os.getloadavg()[0]:.1f}; trees in {work}", flush=True)
    try:
        (work / "one").mkdir()
        (work / "one" / "file").write_bytes(b"")
        base = noops(tools, work / "one", work / "base", 1)
        baseline = {tool: runs[0][2] for tool, runs in base.items()}
        shown = ", ".join(
            f"{t.partition('=')[0]} {baseline[t] / 1024:.1f} MiB" for t in tools
        )
        print(f"baseline peak RSS (1 file): {shown}")
        for files in (int(n) for n in args.files.split(",")):
            source = work / f"tree-{files}"
            tree(source, files, args.contents)
            kind = "with contents" if args.contents else "empty"
            print(f"\n{files:,} files ({kind}), load {os.getloadavg()[0]:.1f}")
            runs = noops(tools, source, work / f"run-{files}", args.repeat)
            print("| tool | no-op seconds | CPU seconds | peak RSS | bytes per file |")
            print("|---|---|---|---|---|")
            wall, cpu = {}, {}
            for tool in tools:
                wall[tool] = statistics.median(r[0] for r in runs[tool])
                cpu[tool] = statistics.median(r[1] for r in runs[tool])
                peak = max(r[2] for r in runs[tool])
                per_file = (peak - baseline[tool]) * 1024 / files
                print(
                    f"| {tool.partition('=')[0]} | {wall[tool]:.2f} | {cpu[tool]:.2f} "
                    f"| {peak / 1024:.1f} MiB | {per_file:.0f} |"
                )
            for tool in tools:
                times = " ".join(f"{r[0]:.2f}" for r in runs[tool])
                print(f"  {tool.partition('=')[0]} runs: {times}")
            if "accord" in tools:
                print(
                    "ratios tool/accord (wall, CPU): "
                    + ", ".join(
                        f"{t.partition('=')[0]} {wall[t] / wall['accord']:.2f} "
                        f"{cpu[t] / cpu['accord']:.2f}"
                        for t in tools
                        if t != "accord"
                    ),
                    flush=True,
                )
            shutil.rmtree(work / f"run-{files}", ignore_errors=True)
            shutil.rmtree(source, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    sys.exit(main())
