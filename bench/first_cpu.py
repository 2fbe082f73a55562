"""CPU seconds of a first copy: accord builds side by side, and cp -a.

    python bench/first_cpu.py --repeat 5 --build main=/tmp/main/src --build work=src

Each round runs every build's ``accord sync SRC DST --yes -q`` (and with
``--verbs sync,mirror`` its ``accord mirror SRC DST --delete -q``; a build is a
``src`` folder put first on PYTHONPATH, e.g. from ``git archive main src``)
and ``cp -a``, interleaved, each into a new folder, with a trailing
``sync`` in the wall time. CPU is the process tree's (``getrusage`` of the
children: accord's copier processes are included; ``cp``'s excludes the
trailing ``sync``, accord's includes its own flush). On a shared machine
read the user and CPU columns: wall times swing with the others' load.
Every run writes into a new folder; all are deleted at the end, none
between runs (on ext4 without a journal, files made within minutes of a
big deletion cost several times the system time: bench/recent_deletes.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from gen_dataset import small_files
from recent_deletes import file_system_of, timed_run

_MAIN = (
    "import sys; from accord.cli import main; sys.argv[0] = 'accord'; sys.exit(main())"
)

_FLAGS = {"sync": ["--yes", "-q"], "mirror": ["--delete", "-q"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--build", action="append", default=[], help="NAME=SRC_FOLDER (repeatable)"
    )
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument(
        "--verbs",
        default="sync",
        help="accord commands to run per build, comma-separated: sync, mirror",
    )
    args = parser.parse_args()
    verbs = args.verbs.split(",")
    builds = dict(item.split("=", 1) for item in args.build) or {"here": "src"}
    work = Path(tempfile.mkdtemp(prefix="accord-first-cpu-", dir=args.work))
    source = work / "src"
    small_files(source, args.files, seed=args.seed)
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    seen: dict[str, list[tuple[float, float, float]]] = {}
    runs_made = 0
    print(f"{work}: {file_system_of(work)}", flush=True)
    try:
        for _ in range(args.repeat):
            runs = [
                (name if verbs == ["sync"] else f"{name} {verb}", src, verb)
                for name, src in builds.items()
                for verb in verbs
            ]
            for name, src, verb in [*runs, ("cp -a", "", "")]:
                # a new target and state each run, all deleted at the end:
                # on ext4 without a journal, files made within minutes of
                # deleting a tree cost far more (bench/recent_deletes.py)
                runs_made += 1
                target, state = work / f"dst-{runs_made}", work / f"state-{runs_made}"
                for folder in (target, state):
                    folder.mkdir()
                os.sync()
                if src:
                    env = {**base, "PYTHONPATH": os.path.abspath(src)}
                    env["ACCORD_STATE_DIR"] = str(state)
                    cmd = [sys.executable, "-c", _MAIN, verb, str(source), str(target)]
                    cmd += _FLAGS[verb]
                else:
                    env, cmd = base, ["cp", "-a", f"{source}/.", f"{target}/"]
                got = timed_run(cmd, env)
                seen.setdefault(name, []).append(got)
                wall, user, system = got
                print(
                    f"{name:10} wall+sync {wall:5.2f}  user {user:5.2f}  "
                    f"sys {system:5.2f}  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("medians:")
    for name, rows in seen.items():
        wall, user, system = (statistics.median(r[i] for r in rows) for i in range(3))
        cpu = statistics.median(r[1] + r[2] for r in rows)
        print(
            f"{name:10} wall+sync {wall:5.2f}  user {user:5.2f}  sys {system:5.2f}  "
            f"cpu {cpu:5.2f}"
        )


if __name__ == "__main__":
    main()
