"""How a recent mass deletion slows file creation on ext4 without a journal.

    python bench/recent_deletes.py --work /tmp/recent --wait 400

On ext4 mounted without a journal, the kernel will not reuse an inode
deleted less than 60 s ago (360 s while its inode table block is still
unwritten): ``find_inode_bit`` calls ``recently_deleted()`` on every free
inode it meets and skips those, so each file created after a big
``rm -rf`` walks past thousands of them. A benchmark that creates files
within minutes of deleting a tree then times that walk, not the tool.

This script times ``cp -a`` of the 20,000-file tree (bench/gen_dataset.py)
three times in the same folder: on a file system with no recent deletion,
right after deleting a copy of the tree, and ``--wait`` seconds later.
Each copy is followed by ``sync``; user and system CPU come from
``getrusage`` of the child. It also says whether the folder's file system
has a journal (``/proc/fs/jbd2`` lists the devices that have one); run.py
and first_cpu.py say it too, at their start.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from gen_dataset import small_files


def file_system_of(path: Path) -> str:
    """The file system of ``path`` in a few words, with a caution where
    file creation is slowed by recent deletions (ext4 without a journal;
    ``/proc/fs/jbd2`` lists the devices that have one)."""
    found = subprocess.run(
        ["findmnt", "-n", "-f", "-o", "SOURCE,FSTYPE", "-T", str(path)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if len(found) != 2:
        return "file system unknown"
    source, kind = found
    if kind != "ext4":
        return kind
    device = os.path.basename(source)
    journals = os.listdir("/proc/fs/jbd2") if os.path.isdir("/proc/fs/jbd2") else []
    if any(j.startswith(f"{device}-") for j in journals):
        return "ext4 with a journal"
    return (
        "ext4 without a journal: files made within 6 minutes of deleting a"
        " big tree here cost several times the system time"
        " (bench/recent_deletes.py); time nothing right after one"
    )


def timed_run(
    cmd: list[str], env: dict[str, str] | None = None
) -> tuple[float, float, float]:
    """(wall with a trailing sync, user, sys) of ``cmd``: CPU of the
    process tree (``getrusage`` of the children), the ``sync`` not in it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    subprocess.run(cmd, env=env, check=True)
    os.sync()
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime


def timed_copy(source: Path, target: Path) -> tuple[float, float, float]:
    """``timed_run`` of ``cp -a source target``."""
    return timed_run(["cp", "-a", str(source), str(target)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--wait", type=float, default=400.0)
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=False)
    source = work / "src"
    small_files(source, args.files)
    os.sync()
    print(f"{work}: {file_system_of(work)}", flush=True)

    def say(label: str, got: tuple[float, float, float]) -> None:
        wall, user, system = got
        print(
            f"  {label:<38} wall {wall:6.2f} s  user {user:5.2f} s"
            f"  sys {system:6.2f} s",
            flush=True,
        )

    say("cp -a, no deletion before", timed_copy(source, work / "a"))
    shutil.rmtree(work / "a")
    os.sync()
    say("cp -a, just after deleting a copy", timed_copy(source, work / "b"))
    time.sleep(args.wait)
    say(f"cp -a, {args.wait:.0f} s after that deletion", timed_copy(source, work / "c"))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
