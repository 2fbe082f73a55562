"""The agent's start on a server: CPU and wall, builds in turn.

    python bench/agent_start.py --rounds 30 --base-src /tmp/before/src

For this build (and ``--base-src``, an older checkout's ``src``), unpacks
the agent's bundle as the bootstrap does (into a private cache folder),
then, each round, each build in turn, times fresh interpreters: ``python
-S -c pass``; the agent's import (``import os, accord.replicas.agent`` in
the unpacked bundle); and the bootstrap's whole start (``python -S -c
BOOT`` with the bundle's digest on stdin: the bundle's check, the import,
serving until the end of its input). CPU is ``getrusage`` of the
children (user + system). Prints each build's medians. ``--python``
names the interpreter (by default the one ``python3`` leads to, not a
shim).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# run with a build's src first on sys.path: its BOOT, digest and bundle
_FILES = r"""
import json, sys
from accord.replicas import link, ssh_launch
digest, bundle = link.agent_bundle()
open(sys.argv[1], "wb").write(bundle)
print(json.dumps({"digest": digest, "boot": ssh_launch.BOOT}))
"""


def _build(src: Path, python: str, work: Path, name: str) -> dict[str, str]:
    """Unpack ``src``'s agent as the bootstrap does; its command and inputs."""
    zipped = work / f"{name}.zip"
    env = {**os.environ, "PYTHONPATH": str(src)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run(
        [sys.executable, "-c", _FILES, str(zipped)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(done.stdout)
    cache = work / f"cache-{name}"
    server = {
        "PATH": os.environ["PATH"],
        "HOME": str(work),
        "XDG_CACHE_HOME": str(cache),
    }
    boot = subprocess.Popen(
        [python, "-S", "-c", found["boot"]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=server,
    )
    assert boot.stdin is not None and boot.stdout is not None
    boot.stdin.write(found["digest"].encode() + b"\n")
    boot.stdin.flush()
    if boot.stdout.readline().strip() == b"need":
        data = zipped.read_bytes()
        boot.stdin.write(f"{len(data)}\n".encode() + data)
        boot.stdin.flush()
        assert boot.stdout.readline().strip() == b"ok"
    boot.stdin.close()
    boot.wait()
    home = next((cache / "accord").glob("agent-*"))
    digest = work / f"{name}.digest"
    digest.write_text(found["digest"] + "\n")
    return {
        "boot": found["boot"],
        "home": str(home),
        "digest": str(digest),
        "env": json.dumps(server),
    }


def _timed(argv: list[str], **options: object) -> tuple[float, float]:
    """CPU and wall milliseconds of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True, **options)  # type: ignore[call-overload]
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return cpu * 1e3, wall * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--base-src", type=Path, help="an older accord's src/")
    parser.add_argument("--python", help="the server's interpreter")
    args = parser.parse_args()
    python = (
        args.python
        or subprocess.run(
            ["python3", "-c", "import sys; print(sys.executable)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    work = Path(tempfile.mkdtemp(prefix="accord-agent-start-"))
    builds = {"after": HERE.parent / "src"}
    if args.base_src:
        builds["before"] = args.base_src
    try:
        made = {name: _build(src, python, work, name) for name, src in builds.items()}
        found: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _ in range(args.rounds):
            for name, build in made.items():
                server = json.loads(build["env"])
                runs = {
                    "pass": ([python, "-S", "-c", "pass"], {"env": server}),
                    "import": (
                        [
                            python,
                            "-S",
                            "-c",
                            "import gc; gc.disable(); import os, accord.replicas.agent",
                        ],
                        {"env": server, "cwd": build["home"]},
                    ),
                }
                for kind, (argv, options) in runs.items():
                    found.setdefault((name, kind), []).append(_timed(argv, **options))
                with open(build["digest"], "rb") as digest:
                    found.setdefault((name, "start"), []).append(
                        _timed(
                            [python, "-S", "-c", build["boot"]],
                            env=server,
                            stdin=digest,
                        )
                    )
        for kind in ("pass", "import", "start"):
            for name in made:
                rows = found[(name, kind)]
                cpu = statistics.median(row[0] for row in rows)
                wall = statistics.median(row[1] for row in rows)
                print(
                    f"  {kind:<6} {name:<6} cpu {cpu:6.1f} ms  wall {wall:6.1f} ms"
                    f"  (medians of {len(rows)}, load {os.getloadavg()[0]:.1f})"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
