"""CPU seconds and wall time of no-op runs, two or more builds interleaved.

    python bench/noop_cpu.py LEFT RIGHT --program new=.venv/bin/accord \\
        --program main=/tmp/accord-main --rounds 15

Each program syncs LEFT and RIGHT once (untimed, to have a pair), then the
rounds run each program's no-op once in turn, so a busy machine slows all
of them alike. CPU is user + system of the process and of the children it
waited for (a forked scan), from wait4: on a shared machine it moves far
less than wall time. Each program gets its own state folder. ``--mirror``
times ``accord mirror --delete`` instead of ``accord sync --yes``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if status:
        raise SystemExit(f"{' '.join(argv)}: exit status {status}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("left")
    parser.add_argument("right")
    parser.add_argument(
        "--program", action="append", required=True, metavar="LABEL=PATH"
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--mirror", action="store_true")
    parser.add_argument(
        "--every", action="store_true", help="also print every run's figures"
    )
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    state = Path(tempfile.mkdtemp(prefix="accord-noop-cpu-"))
    runs = {}
    for spec in args.program:
        label, _, path = spec.partition("=")
        env = {**base, "ACCORD_STATE_DIR": str(state / label)}
        if args.mirror:
            argv = [path, "mirror", args.left, args.right, "--delete", "-q"]
        else:
            argv = [path, "sync", args.left, args.right, "--yes", "-q"]
        once(argv, env)  # the pair's first run
        runs[label] = (argv, env, [], [])
    for _ in range(args.rounds):
        for argv, env, walls, cpus in runs.values():
            wall, cpu = once(argv, env)
            walls.append(wall)
            cpus.append(cpu)
    print(f"{args.rounds} rounds, load average {os.getloadavg()[0]:.2f}")
    for label, (_, _, walls, cpus) in runs.items():
        print(
            f"{label:12} wall median {statistics.median(walls) * 1000:6.1f} ms"
            f" (min {min(walls) * 1000:6.1f})   CPU median"
            f" {statistics.median(cpus) * 1000:6.1f} ms (min {min(cpus) * 1000:6.1f})"
        )
        if args.every:
            print(f"{'':12} wall ms {' '.join(f'{w * 1000:.0f}' for w in walls)}")
            print(f"{'':12} CPU ms  {' '.join(f'{c * 1000:.0f}' for c in cpus)}")


if __name__ == "__main__":
    main()
