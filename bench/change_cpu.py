"""CPU seconds and wall time of 300-change runs, two or more builds in turn.

    python bench/change_cpu.py LEFT RIGHT --program new=.venv/bin/accord \\
        --program main=/tmp/accord-main --rounds 11

LEFT is synced to RIGHT once (untimed, by the first program, into a new
state folder). Then each round, for each program in turn, mutate.py makes
its 100 edits, 100 creations and 100 deletions in LEFT (a new seed each
time) and the program syncs the pair: every run carries 300 fresh
changes, and all programs share the pair and its archive, so each starts
where the last left it. CPU is user + system of the process and of the
children it waited for, from wait4. LEFT must be a tree made for this
(gen_dataset.py): it is changed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from mutate import mutate
from noop_cpu import once


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("left", type=Path)
    parser.add_argument("right", type=Path)
    parser.add_argument(
        "--program", action="append", required=True, metavar="LABEL=PATH"
    )
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    state = Path(tempfile.mkdtemp(prefix="accord-change-cpu-"))
    env = {**base, "ACCORD_STATE_DIR": str(state)}
    programs = []
    for spec in args.program:
        label, _, path = spec.partition("=")
        argv = [path, "sync", str(args.left), str(args.right), "--yes", "-q"]
        programs.append((label, argv, [], []))
    subprocess.run(programs[0][1], env=env, check=True)  # the pair's first run
    seed = 1000
    for _ in range(args.rounds):
        for _, argv, walls, cpus in programs:
            seed += 1
            mutate(args.left, 100, 100, 100, seed)
            wall, cpu = once(argv, env)
            walls.append(wall)
            cpus.append(cpu)
    print(f"{args.rounds} rounds, load average {os.getloadavg()[0]:.2f}")
    for label, _, walls, cpus in programs:
        print(
            f"{label:12} wall median {statistics.median(walls) * 1000:6.1f} ms"
            f" (min {min(walls) * 1000:6.1f})   CPU median"
            f" {statistics.median(cpus) * 1000:6.1f} ms (min {min(cpus) * 1000:6.1f})"
        )
        print(f"{'':12} wall ms {' '.join(f'{w * 1000:.0f}' for w in walls)}")
        print(f"{'':12} CPU ms  {' '.join(f'{c * 1000:.0f}' for c in cpus)}")


if __name__ == "__main__":
    main()
