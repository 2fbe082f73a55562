"""Memory per file of a no-op two-way sync: accord against rsync and unison.

    python bench/noop_memory.py --files 100000,1000000 --repeat 3
    python bench/noop_memory.py --files 20000 --tools accord,rsync --repeat 5

For each size N: a tree of N files in bench/gen_dataset.py's layout (its
folders and names) but every file empty (a no-op's memory does not depend
on contents, and 1,000,000 files of 10 KiB would need 10 GiB), copied with
`cp -a` for each tool, synced once, then the no-op timed --repeat times.
Peak RSS is GNU time's (the largest single process of the tool, as in
run.py); the same tool's no-op on a tree of one file is its baseline, and

    bytes per file = (peak RSS at N - peak RSS at 1) / N

Times are wall-clock with a trailing `sync` (run.py's `measure`); medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import gen_dataset
from run import Place, find_accord, measure

SEED = 42


def empty_tree(root: Path, files: int) -> None:
    """gen_dataset's tree of ``files`` files, every one of them empty."""
    sized = gen_dataset.file_size
    gen_dataset.file_size = lambda rng: 0
    try:
        gen_dataset.small_files(root, files, SEED)
    finally:
        gen_dataset.file_size = sized


ACCORD = [find_accord() or "accord"]


def commands(tool: str, place: Place) -> list[str]:
    src, dst = str(place.src), str(place.dst)
    if tool == "accord":
        return [*ACCORD, "sync", src, dst, "--yes", "-q"]
    if tool == "rsync":
        return ["rsync", "-a", "--delete", f"{src}/", f"{dst}/"]
    if tool == "unison":
        return ["unison", src, dst, "-batch", "-auto", "-silent", "-times"]
    raise SystemExit(f"unknown tool {tool}")


def noop(tool: str, source: Path, work: Path, repeat: int) -> tuple[float, int]:
    """The tool's first sync of a copy of ``source``, then its no-op
    ``repeat`` times: the median seconds and the highest peak RSS (KiB)."""
    place = Place(work / f"{tool}-src", work / f"{tool}-dst", work / f"{tool}-state")
    place.src.mkdir(parents=True)
    subprocess.run(["cp", "-a", f"{source}/.", f"{place.src}/"], check=True)
    place.make()
    env = place.env()
    first = measure(commands(tool, place), env)
    if first.code != 0:
        raise SystemExit(f"{tool} first sync failed: {first.errors[-2000:]}")
    seconds, peaks = [], []
    for _ in range(repeat):
        got = measure(commands(tool, place), env)
        if got.code != 0:
            raise SystemExit(f"{tool} no-op failed: {got.errors[-2000:]}")
        seconds.append(got.seconds)
        peaks.append(got.peak_kib or 0)
    return statistics.median(seconds), max(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", default="100000", help="sizes, comma-separated")
    parser.add_argument("--tools", default="accord,rsync,unison")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--keep", action="store_true", help="keep the trees")
    parser.add_argument(
        "--accord", help="the accord command to run (default: this Python's)"
    )
    args = parser.parse_args()
    if args.accord:
        ACCORD[:] = [args.accord]
    tools = [t for t in args.tools.split(",") if t == "accord" or shutil.which(t)]
    work = Path(tempfile.mkdtemp(prefix="accord-noop-mem-", dir=args.work))
    print(f"load {os.getloadavg()[0]:.1f}; trees in {work}", flush=True)
    try:
        base = {}
        (work / "one").mkdir()
        (work / "one" / "file").write_bytes(b"")
        for tool in tools:
            base[tool] = noop(tool, work / "one", work / "base", args.repeat)[1]
        print(
            "baseline peak RSS (1 file): "
            + ", ".join(f"{t} {base[t] / 1024:.1f} MiB" for t in tools)
        )
        for files in (int(n) for n in args.files.split(",")):
            source = work / f"tree-{files}"
            empty_tree(source, files)
            print(f"\n{files:,} files (empty), load {os.getloadavg()[0]:.1f}")
            print("| tool | no-op seconds | peak RSS | bytes per file |")
            print("|---|---|---|---|")
            times = {}
            for tool in tools:
                seconds, peak = noop(tool, source, work / f"run-{files}", args.repeat)
                times[tool] = seconds
                per_file = (peak - base[tool]) * 1024 / files
                row = f"| {tool} | {seconds:.2f} | {peak / 1024:.1f} MiB "
                print(f"{row}| {per_file:.0f} |", flush=True)
            if "accord" in times:
                print(
                    "ratios tool/accord: "
                    + ", ".join(
                        f"{t} {times[t] / times['accord']:.2f}"
                        for t in tools
                        if t != "accord"
                    )
                )
            shutil.rmtree(work / f"run-{files}", ignore_errors=True)
            shutil.rmtree(source, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    sys.exit(main())
