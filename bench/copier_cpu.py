"""CPU of a copier's per-file work alone: ``LocalReplica.copy_new`` over a tree.

    python bench/copier_cpu.py --rounds 10 --build main=/tmp/main/src --build work=src
    python bench/copier_cpu.py --work /tmp      # the file system to copy on

A first copy's copier processes (``engine/forked.py``) spend most of the
run's CPU, one ``copy_new`` per file. This times exactly that, in one
process without the engine, the plan or the other copier: the source tree
is listed, the target's folders made, both places made copiers
(``forked()``), then every file is copied and the process's own CPU
(``getrusage``) around that loop is printed per file. Builds (a ``src``
folder put first on PYTHONPATH, e.g. from ``git archive main src``) take
turns round by round. User time is the steadier column on a shared machine;
system time follows the file system's work and everyone else's.
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

sys.path.insert(0, str(Path(__file__).parent))
from gen_dataset import small_files

_COPY = """
import os, resource, sys
from accord.model import DIR, FILE
from accord.replicas.local import LocalReplica
source = LocalReplica(sys.argv[1])
target = LocalReplica(sys.argv[2])
source.open()
target.open(create=True)
listed = [e for e in source.scan() if hasattr(e, "kind")]
for entry in listed:
    if entry.kind == DIR:
        os.makedirs(os.path.join(sys.argv[2], entry.key), exist_ok=True)
files = [e for e in listed if e.kind == FILE]
source.forked()
target.forked()
before = resource.getrusage(resource.RUSAGE_SELF)
for entry in files:
    if target.copy_new(source, entry.key, entry) is None:
        sys.exit(f"not copied by copy_new: {entry.key}")
after = resource.getrusage(resource.RUSAGE_SELF)
user = (after.ru_utime - before.ru_utime) / len(files) * 1e6
system = (after.ru_stime - before.ru_stime) / len(files) * 1e6
print(user, system)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--build", action="append", default=[], help="NAME=SRC_FOLDER (repeatable)"
    )
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    builds = dict(item.split("=", 1) for item in args.build) or {"here": "src"}
    work = Path(tempfile.mkdtemp(prefix="accord-copier-cpu-", dir=args.work))
    source = work / "src"
    small_files(source, args.files, seed=args.seed)
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    seen: dict[str, list[tuple[float, float]]] = {}
    try:
        for round_ in range(args.rounds):
            for name, src in builds.items():
                # a new target each run, all deleted at the end: on ext4
                # without a journal, files made within minutes of deleting
                # a tree cost far more (bench/recent_deletes.py)
                target = work / f"dst-{round_}-{name}"
                env = {**base, "PYTHONPATH": os.path.abspath(src)}
                cmd = [sys.executable, "-c", _COPY, str(source), str(target)]
                done = subprocess.run(
                    cmd, env=env, check=True, capture_output=True, text=True
                )
                user, system = (float(x) for x in done.stdout.split())
                seen.setdefault(name, []).append((user, system))
                print(
                    f"{name:10} user {user:5.1f}  sys {system:5.1f} us a file  "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("medians (us a file):")
    for name, rows in seen.items():
        user, system = (statistics.median(r[i] for r in rows) for i in range(2))
        cpu = statistics.median(r[0] + r[1] for r in rows)
        print(f"{name:10} user {user:5.1f}  sys {system:5.1f}  cpu {cpu:5.1f}")


if __name__ == "__main__":
    main()
