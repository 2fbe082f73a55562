"""CPU seconds of a first copy: accord builds side by side, and cp -a.

    python bench/first_cpu.py --repeat 5 --build main=/tmp/main/src --build work=src

Each round runs every build's ``accord sync SRC DST --yes -q`` (and with
``--verbs sync,mirror`` its ``accord mirror SRC DST --delete -q``; a build is a
``src`` folder put first on PYTHONPATH, e.g. from ``git archive main src``)
and ``cp -a`` (and with ``--rsync``, ``rsync -a``), interleaved, each into
a new folder, with a trailing ``sync`` in the wall time. CPU is the
process tree's (``getrusage`` of the children: accord's copier processes
are included; ``cp``'s excludes the trailing ``sync``, accord's includes
its own flush). On a shared machine read the user and CPU columns: wall
times swing with the others' load.
Every run writes into a new folder; all are deleted at the end, none
between runs (on ext4 without a journal, files made within minutes of a
big deletion cost several times the system time: bench/recent_deletes.py).

A file system's state decides much of a first copy's time: how many
inodes it holds already, whether it deleted files lately, and how much
free memory the kernel has for the new files' pages (with the page cache
full, each new page is first taken back from another file). Two options,
for root on Linux, start every run from the same state:

``--fresh-fs SIZE`` puts each run's target on an ext4 file system made
for that run alone (``mkfs.ext4`` with its inode tables written at once,
so no background initialisation runs meanwhile, in a SIZE image file on
a loop device with direct I/O, like a disk), unmounted and deleted after
it; ``--no-journal`` makes it without a journal, as this machine's root
file system is. ``--drop-caches`` empties the page cache before each run
(``sync``, ``/proc/sys/vm/drop_caches``) and reads the source back in,
so every tool starts with the same free memory and a warm source.

    sudo python bench/first_cpu.py --fresh-fs 4G --drop-caches --repeat 7
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from gen_dataset import small_files
from recent_deletes import file_system_of, timed_run

_MAIN = (
    "import sys; from accord.cli import main; sys.argv[0] = 'accord'; sys.exit(main())"
)

_FLAGS = {"sync": ["--yes", "-q"], "mirror": ["--delete", "-q"]}

Timing = tuple[float, float, float]  # wall with a trailing sync, user, sys


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
    parser.add_argument(
        "--fresh-fs",
        metavar="SIZE",
        help="each run's target on a new ext4 of SIZE (e.g. 4G) made for it (root)",
    )
    parser.add_argument(
        "--no-journal",
        action="store_true",
        help="with --fresh-fs: the new ext4 has no journal",
    )
    parser.add_argument(
        "--rsync", action="store_true", help="also time rsync -a each round"
    )
    parser.add_argument(
        "--drop-caches",
        action="store_true",
        help="empty the page cache before each run and read the source back (root)",
    )
    args = parser.parse_args()
    if (args.fresh_fs or args.drop_caches) and os.geteuid() != 0:
        parser.error("--fresh-fs and --drop-caches need root")
    verbs = args.verbs.split(",")
    builds = dict(item.split("=", 1) for item in args.build) or {"here": "src"}
    work = Path(tempfile.mkdtemp(prefix="accord-first-cpu-", dir=args.work))
    source = work / "src"
    small_files(source, args.files, seed=args.seed)
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    seen: dict[str, list[Timing]] = {}
    runs_made = 0
    where = "a new ext4 each run" if args.fresh_fs else file_system_of(work)
    print(f"{work}: {where}", flush=True)
    try:
        for _ in range(args.repeat):
            runs = [
                (name if verbs == ["sync"] else f"{name} {verb}", src, verb)
                for name, src in builds.items()
                for verb in verbs
            ]
            others = [("cp -a", "", "")] + [("rsync", "", "")] * args.rsync
            for name, src, verb in [*runs, *others]:
                # a new target and state each run, all deleted at the end:
                # on ext4 without a journal, files made within minutes of
                # deleting a tree cost far more (bench/recent_deletes.py)
                runs_made += 1
                state = work / f"state-{runs_made}"
                state.mkdir()
                with _target(work, runs_made, args.fresh_fs, args.no_journal) as target:
                    if args.drop_caches:
                        _drop_caches(source)
                    os.sync()
                    got = _run(name, src, verb, source, target, (state, base))
                seen.setdefault(name, []).append(got)
                wall, user, system = got
                print(
                    f"{name:10} wall+sync {wall:5.2f}  user {user:5.2f}  "
                    f"sys {system:5.2f}  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _report(seen)


def _run(
    name: str,
    src: str,
    verb: str,
    source: Path,
    target: Path,
    where: tuple[Path, dict[str, str]],
) -> Timing:
    """One timed run, into ``target``: a build's accord (``src``, its
    folder; ``where``: its state folder and environment), or ``cp -a``,
    or ``rsync -a``."""
    state, base = where
    if src:
        env = {**base, "PYTHONPATH": os.path.abspath(src)}
        env["ACCORD_STATE_DIR"] = str(state)
        cmd = [sys.executable, "-c", _MAIN, verb, str(source), str(target)]
        cmd += _FLAGS[verb]
    elif name == "rsync":
        env, cmd = base, ["rsync", "-a", f"{source}/", f"{target}/"]
    else:
        env, cmd = base, ["cp", "-a", f"{source}/.", f"{target}/"]
    return timed_run(cmd, env)


@contextlib.contextmanager
def _target(work: Path, run: int, size: str | None, no_journal: bool) -> Iterator[Path]:
    """A new, empty target folder for one run: in ``work``, or with
    ``size`` the root of a new ext4 of that size made for this run alone
    (inode tables written at once: no background initialisation during
    the run; on a loop device with direct I/O, as a disk), unmounted and
    its image deleted after the run (one file deleted in ``work``)."""
    if not size:
        target = work / f"dst-{run}"
        target.mkdir()
        yield target
        return
    image, mount = work / f"fs-{run}.img", work / f"fs-{run}"
    mount.mkdir()
    subprocess.run(["truncate", "-s", size, str(image)], check=True)
    mkfs = ["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0"]
    if no_journal:
        mkfs += ["-O", "^has_journal"]
    subprocess.run([*mkfs, str(image)], check=True)
    device = subprocess.run(
        ["losetup", "--find", "--show", "--direct-io=on", str(image)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        subprocess.run(["mount", device, str(mount)], check=True)
        try:
            target = mount / "dst"
            target.mkdir()
            yield target
        finally:
            subprocess.run(["umount", str(mount)], check=True)
    finally:
        subprocess.run(["losetup", "-d", device], check=False)
        image.unlink()
        mount.rmdir()


def _drop_caches(source: Path) -> None:
    """Empty the page cache, then read ``source`` back in: every run starts
    with the same free memory and a warm source."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")
    for folder, _, names in os.walk(source):
        for name in names:
            with open(os.path.join(folder, name), "rb") as handle:
                while handle.read(1 << 20):
                    pass


def _report(seen: dict[str, list[Timing]]) -> None:
    """Each tool's medians; each build's wall time over ``cp -a``'s (and
    ``rsync``'s), from the medians and round by round."""
    print("medians:")
    for name, rows in seen.items():
        wall, user, system = (statistics.median(r[i] for r in rows) for i in range(3))
        cpu = statistics.median(r[1] + r[2] for r in rows)
        print(
            f"{name:10} wall+sync {wall:5.2f}  user {user:5.2f}  sys {system:5.2f}  "
            f"cpu {cpu:5.2f}"
        )
    for other in ("cp -a", "rsync"):
        copies = seen.get(other)
        if not copies:
            continue
        copy_wall = statistics.median(r[0] for r in copies)
        for name, rows in seen.items():
            if name in ("cp -a", "rsync"):
                continue
            rounds = ", ".join(f"{a[0] / b[0]:.2f}" for a, b in zip(rows, copies))  # noqa: B905
            wall = statistics.median(r[0] for r in rows)
            ratio = wall / copy_wall
            print(f"{name} / {other}: {ratio:.2f} (medians); rounds {rounds}")


if __name__ == "__main__":
    main()
