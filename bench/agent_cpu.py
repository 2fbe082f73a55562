"""The SSH agent's side of a first copy, without ssh: CPU seconds.

    python bench/agent_cpu.py --rounds 5
    PYTHONPATH=/tmp/old/src python bench/agent_cpu.py --rounds 5

Lists a generated tree (``gen_dataset.small_files``), records the frames a
client sends the agent for a first copy of it (the folders in one
``make_dirs`` call, the files in batches of 64 or 4 MiB as
``write_batch`` calls, their bytes in data frames of whole files), then
replays them, ``--rounds`` times, into ``Agent.serve`` in this process
through a pipe (``cat`` writes them), into a new folder under
``--target`` (tmpfs by default), and prints the CPU seconds (user and
system) and wall time of each round and their medians. The machine's
other work moves wall times; the CPU moves far less. Run two builds in
turn (``PYTHONPATH``) to compare them.
"""

from __future__ import annotations

import argparse
import fcntl
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
sys.path.insert(0, str(HERE))

from gen_dataset import small_files  # noqa: E402

from accord.model import DIR, FILE, Entry  # noqa: E402
from accord.replicas import agent, wire  # noqa: E402
from accord.replicas.local import LocalReplica  # noqa: E402

_BATCH_FILE = 256 << 10
_BATCH_FILES = 64
_BATCH_BYTES = 4 << 20


def record(data: Path, target: str, out: Path) -> None:
    """The frames of a first copy of ``data`` into ``target``, in ``out``."""
    source = LocalReplica(str(data))
    source.open(False)
    entries = [item for item in source.scan() if isinstance(item, Entry)]
    ident = 0
    with open(out, "wb") as stream:

        def call(method: str, args: list[object]) -> int:
            nonlocal ident
            ident += 1
            stream.write(wire.frame(wire.CALL, ident, wire.dumps([method, args])))
            return ident

        def batch(files: list[Entry]) -> None:
            header = [[e.key, list(e), None, None, e.size] for e in files]
            at = call("write_batch", [header])
            run: list[bytes] = []
            size = 0
            for entry in files:
                part = (data / entry.key).read_bytes()
                if run and size + len(part) > wire.CHUNK:
                    stream.write(wire.HEADER.pack(size, wire.DATA, at) + b"".join(run))
                    run, size = [], 0
                run.append(part)
                size += len(part)
            if run:
                stream.write(wire.HEADER.pack(size, wire.DATA, at) + b"".join(run))
            stream.write(wire.frame(wire.END, at))

        call("hello", [target, None])
        call("open", [True])
        call("make_dirs", [[[e.key, list(e)] for e in entries if e.kind == DIR]])
        files: list[Entry] = []
        size = 0
        for entry in entries:
            if entry.kind != FILE or entry.size > _BATCH_FILE:
                continue
            files.append(entry)
            size += entry.size
            if len(files) >= _BATCH_FILES or size >= _BATCH_BYTES:
                batch(files)
                files, size = [], 0
        if files:
            batch(files)
        call("close", [])


def replay(stream: Path) -> tuple[float, float, float]:
    """One replay into ``Agent.serve``: (user, system, wall) seconds."""
    feeder = subprocess.Popen(["cat", str(stream)], stdout=subprocess.PIPE)
    assert feeder.stdout is not None
    fd = feeder.stdout.fileno()
    fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), wire.PIPE_SIZE)
    null = os.open(os.devnull, os.O_WRONLY)
    before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    try:
        agent.Agent(fd, null).serve()
    finally:
        wall = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_SELF)
        os.close(null)
        feeder.wait()
        feeder.stdout.close()
    return after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--target", type=Path, default=Path("/dev/shm"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="accord-agent-cpu-"))
    target = Path(tempfile.mkdtemp(prefix="accord-agent-cpu-", dir=args.target))
    try:
        total = small_files(work / "data", args.files, seed=42)
        print(f"{args.files:,} files, {total / 2**20:,.0f} MiB")
        root = target / "root"
        record(work / "data", str(root), work / "frames")
        found = []
        for turn in range(args.rounds):
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            user, system, wall = replay(work / "frames")
            found.append((user + system, user, system, wall))
            print(
                f"  round {turn + 1}: cpu {user + system:5.2f} s (user {user:4.2f}, "
                f"system {system:4.2f})  wall {wall:5.2f} s  "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        cpu, user, system, wall = (
            statistics.median(row[i] for row in found) for i in range(4)
        )
        print(
            f"  median: cpu {cpu:5.2f} s (user {user:4.2f}, system {system:4.2f})"
            f"  wall {wall:5.2f} s"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)


if __name__ == "__main__":
    main()
