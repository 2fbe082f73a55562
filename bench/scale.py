"""The scaling curve: no-op and 300-change runs at 10k, 100k and 1M files.

    python bench/scale.py                                # 10k, 100k, 1M files
    python bench/scale.py --sizes 10k,100k               # a quicker curve
    python bench/scale.py --sizes 100k --tools accord --label after \\
        --json bench/scaling-after.json --png ''         # accord alone, tagged
    python bench/scale.py --plot bench/scaling.json bench/scaling-after.json
                                                         # table + PNG, no runs

For each size N, one tree is generated (gen_dataset.py, sizes log-normal
around --mean-size, 1 KiB by default so that a million files fit in RAM),
then each tool in turn gets its own source, a tree of hard links to the
generated one (`cp -al`: no data copied, the same files for every tool), an
empty destination and its own state folder (run.py's Place). It runs

  first   into the empty destination (timed, reported, not the point)
  noop    the same command again, nothing changed (median of --repeat)
  change  again after mutate.py's 100 edits, 100 creations and 100
          deletions on the source (edits write new files, so the
          generated tree behind the hard links stays as it was)

and its folders are deleted before the next tool starts. Every tool is
first run on an empty tree (first, then the no-op that is its baseline):
bytes per file = (peak - the same tool's no-op peak on the empty tree) / N.

Commands, timing and memory are run.py's (measure(): wall clock including
a trailing `sync`; peak RSS of the largest process of the tool's tree from
GNU time, `/usr/bin/time -f %M`, and the sampled peak of the whole tree).
After the first run and after the change run, the destination must list
the same files as the source, with the same sizes and mtimes (`--verify
full` compares SHA-1s of the contents too; `none` skips it).

The work folder defaults to /dev/shm (tmpfs, RAM) when it exists: file
creation on this machine's virtio disk swings with the VM's memory
reclaim, and a million files there take longer than every tool's run.
The JSON (--json) keeps every row; --plot redraws the table and the PNG
from one or more such files (a --label'd rerun of one tool beside the
others, for example). --dataset links from a tree another run generated:
that run's own links, made and removed, change the files' ctimes, which
accord looks at, so only tools that do not (rsync, unison, rclone) should
be measured that way while the other run goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from gen_dataset import parse_size, small_files
from mutate import mutate
from run import (
    GNU_TIME,
    Place,
    Tool,
    _accord_sync,
    all_tools,
    difference,
    fingerprint,
    measure,
    versions,
)

HERE = Path(__file__).resolve().parent
DEFAULT_SIZES = "10k,100k,1M"
DEFAULT_TOOLS = "accord sync,rsync,unison,rclone sync"
CHANGES = (100, 100, 100)  # edits, creations, deletions before "change"
SCENARIOS = ("first", "noop", "change")
LABELS = {"first": "first copy", "noop": "no-op", "change": "300 changes"}
REFERENCE = "rsync"
# what one file costs the work folder: a tmpfs page (or two) and its inode
BYTES_PER_FILE = 6 << 10
GOAL = 300  # bytes per file at a million files (issue #10)


def parse_count(text: str) -> int:
    """'10k', '1M', '2500' as a count (decimal units)."""
    text = text.strip().lower().replace("_", "").replace(",", "")
    units = {"k": 1_000, "m": 1_000_000}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def short(count: int) -> str:
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000}M"
    if count >= 1_000 and count % 1_000 == 0:
        return f"{count // 1_000}k"
    return str(count)


def filesystem_of(path: Path) -> str:
    """The type of the file system holding ``path`` (from /proc/mounts)."""
    best, kind = "", "?"
    resolved = str(path.resolve())
    try:
        with open("/proc/mounts") as handle:
            for line in handle:
                words = line.split()
                point = words[1]
                inside = resolved == point or resolved.startswith(
                    point.rstrip("/") + "/"
                )
                if inside and len(point) > len(best):
                    best, kind = point, words[2]
    except OSError:
        pass
    return f"{kind} ({best})" if best else kind


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- checking ----------------------------------------------------------------


def listing(root: Path) -> dict[str, tuple[int, int]]:
    """relative path -> (size, mtime in whole seconds); root's .accord left out."""
    found: dict[str, tuple[int, int]] = {}
    stack = [root]
    cut = len(str(root)) + 1
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if not (folder == root and entry.name == ".accord"):
                        stack.append(Path(entry.path))
                else:
                    st = entry.stat(follow_symlinks=False)
                    found[entry.path[cut:]] = (st.st_size, int(st.st_mtime))
    return found


def same_trees(src: Path, dst: Path, how: str) -> str | None:
    """None when ``dst`` holds what ``src`` does, else what differs."""
    if how == "none":
        return None
    if how == "full":
        return difference(fingerprint(src), fingerprint(dst))
    return difference(listing(src), listing(dst))  # type: ignore[arg-type]


# -- running -----------------------------------------------------------------


class Curve:
    """Runs the tools over the sizes and keeps one row per figure."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.rows: list[dict] = []

    def say(self, text: str) -> None:
        print(text, flush=True)

    def name(self, tool: Tool) -> str:
        """The tool's name in the rows: --label appended, not to --accord's."""
        if not self.args.label or tool.program in self.args.extra:
            return tool.name
        return f"{tool.name} {self.args.label}"

    def place(self, name: str) -> Place:
        base = self.work / name.replace(" ", "-")
        if base.exists():
            shutil.rmtree(base)
        at = Place(base / "src", base / "dst", base / "state")
        at.src.mkdir(parents=True)
        at.make()
        return at

    def run(self, tool: Tool, at: Place, files: int, scenario: str) -> dict:
        """One timed run of ``tool``, recorded as a row (and printed)."""
        cmd = tool.command(at, first=scenario == "first")
        got = measure(cmd, at.env())
        row = {
            "files": files,
            "tool": self.name(tool),
            "scenario": scenario,
            "seconds": got.seconds,
            "peak_kib": got.peak_kib,
            "tree_kib": got.tree_kib,
            "load": load(),
            "ok": got.code == 0,
            "problems": [],
        }
        if got.code != 0:
            text = f"exit code {got.code}: {' '.join(cmd)}: {got.errors[-600:]}"
            row["problems"].append(text)
            self.say(f"  WARNING {row['tool']} {scenario}: {text}")
        peak = (got.peak_kib or 0) / 1024
        self.say(
            f"  {short(files):>5} {row['tool']:<22} {LABELS[scenario]:<12}"
            f" {got.seconds:9.2f} s  peak {peak:7.1f} MiB"
            f"  tree {got.tree_kib / 1024:7.1f} MiB  load {row['load']}"
        )
        return row

    def check(self, row: dict, at: Place) -> None:
        differs = same_trees(at.src, at.dst, self.args.verify)
        if differs:
            row["ok"] = False
            row["problems"].append(f"destination is not the source: {differs}")
            self.say(f"  WARNING {row['tool']} {row['scenario']}: {differs}")

    def baseline(self, tool: Tool) -> None:
        """The tool on an empty tree: the memory every later figure is over."""
        at = self.place(f"empty-{self.name(tool)}")
        self.rows.append(self.run(tool, at, 0, "first"))
        self.rows.append(self.run(tool, at, 0, "noop"))
        shutil.rmtree(at.src.parent)

    def first(self, dataset: Path, files: int, tool: Tool, copy: bool) -> Place:
        """The tool's own source, and its first run.

        The source is a tree of hard links to ``dataset`` (no data copied),
        or with ``copy`` a real copy: a link made or removed changes the
        inode's ctime in every tree that shares it, and accord, which
        looks at ctimes, would hash every file again in a run that
        follows another tool's `cp -al` or clean-up.
        """
        at = self.place(f"{files}-{self.name(tool)}")
        at.src.rmdir()
        flags = "-a" if copy else "-al"
        subprocess.run(["cp", flags, str(dataset), str(at.src)], check=True)
        row = self.run(tool, at, files, "first")
        self.check(row, at)
        self.rows.append(row)
        return at

    def change(self, at: Place, files: int, tool: Tool) -> None:
        """mutate.py's 300 changes on the source, the run, and the clean-up."""
        mutate(at.src, *CHANGES, seed=7, new_inodes=True)
        row = self.run(tool, at, files, "change")
        self.check(row, at)
        self.rows.append(row)
        if not self.args.keep:
            shutil.rmtree(at.src.parent)

    def size(self, dataset: Path, files: int, tools: list[Tool]) -> None:
        """first, noop (x --repeat) and change for each tool on one tree.

        One tool after the other; with --interleave, every tool's first
        run, then the no-ops in rounds (each tool once per round), then the
        changes: tools compared under the same background load.
        """
        if not self.args.interleave:
            for tool in tools:
                at = self.first(dataset, files, tool, copy=False)
                runs = [
                    self.run(tool, at, files, "noop") for _ in range(self.args.repeat)
                ]
                self.rows.append(median_row(runs))
                self.change(at, files, tool)
                self.save()
            return
        places = [self.first(dataset, files, tool, copy=True) for tool in tools]
        noops: list[list[dict]] = [[] for _ in tools]
        for _ in range(self.args.repeat):
            for tool, at, runs in zip(tools, places, noops, strict=True):
                runs.append(self.run(tool, at, files, "noop"))
        self.rows.extend(median_row(runs) for runs in noops)
        for tool, at in zip(tools, places, strict=True):
            self.change(at, files, tool)
        self.save()

    def all(self, tools: list[Tool], sizes: list[int]) -> None:
        for tool in tools:
            self.baseline(tool)
        for files in sizes:
            if self.args.dataset:  # generated by another run: used, kept
                self.size(self.args.dataset, files, tools)
                continue
            dataset = self.work / f"dataset-{short(files)}"
            started = time.perf_counter()
            total = small_files(dataset, files, seed=42, mean_size=self.args.mean_size)
            self.say(
                f"{files:,} files, {total / 2**20:,.0f} MiB, generated in"
                f" {time.perf_counter() - started:.0f} s; load {load()}"
            )
            self.size(dataset, files, tools)
            if not self.args.keep:
                shutil.rmtree(dataset)

    def save(self) -> None:
        """Write the JSON after every tool: a long run keeps what it has."""
        if self.args.json:
            write_json(Path(self.args.json), self.args.meta, self.rows)


def median_row(rows: list[dict]) -> dict:
    """The no-op row of several runs: median time, highest memory."""
    row = dict(rows[0])
    row["runs"] = [r["seconds"] for r in rows]
    row["seconds"] = statistics.median(row["runs"])
    peaks = [r["peak_kib"] for r in rows if r["peak_kib"] is not None]
    row["peak_kib"] = max(peaks) if peaks else None
    row["tree_kib"] = max(r["tree_kib"] for r in rows)
    row["ok"] = all(r["ok"] for r in rows)
    row["problems"] = [p for r in rows for p in r["problems"]]
    return row


def write_json(path: Path, meta: dict, rows: list[dict]) -> None:
    path.write_text(json.dumps({**meta, "rows": rows}, indent=1) + "\n")


# -- reporting ---------------------------------------------------------------


def per_file(rows: list[dict]) -> None:
    """Fill in bytes per file and the ratios to rsync, in place."""
    base = {r["tool"]: r for r in rows if r["files"] == 0 and r["scenario"] == "noop"}
    ref = {
        (r["files"], r["scenario"]): r
        for r in rows
        if r["tool"] == REFERENCE and r["files"]
    }
    for row in rows:
        if not row["files"]:
            continue
        empty = base.get(row["tool"])
        if empty and row["peak_kib"] is not None and empty["peak_kib"] is not None:
            extra = (row["peak_kib"] - empty["peak_kib"]) * 1024
            row["peak_bytes_per_file"] = extra / row["files"]
        if empty:
            # a run on an empty tree can end before the sampler's first look:
            # the whole tree holds at least its largest process
            floor = max(empty["tree_kib"], empty["peak_kib"] or 0)
            row["tree_bytes_per_file"] = (row["tree_kib"] - floor) * 1024 / row["files"]
        other = ref.get((row["files"], row["scenario"]))
        if other:
            row["x_rsync_seconds"] = row["seconds"] / other["seconds"]
            if row["peak_kib"] and other["peak_kib"]:
                row["x_rsync_peak"] = row["peak_kib"] / other["peak_kib"]


def table(rows: list[dict]) -> list[str]:
    head = (
        f"{'files':>6} {'scenario':<12} {'tool':<22} {'seconds':>8}"
        f" {'x rsync':>8} {'peak MiB':>9} {'tree MiB':>9}"
        f" {'B/file':>7} {'B/file tree':>12}  check"
    )
    lines = [head, "-" * len(head)]
    order = {s: i for i, s in enumerate(SCENARIOS)}
    for row in sorted(
        rows, key=lambda r: (r["files"], order[r["scenario"]], r["tool"])
    ):
        peak = row["peak_kib"]

        def number(key: str, fmt: str, width: int, row: dict = row) -> str:
            value = row.get(key)
            return (
                format(value, fmt).rjust(width)
                if value is not None
                else "-".rjust(width)
            )

        lines.append(
            f"{short(row['files']):>6} {LABELS[row['scenario']]:<12}"
            f" {row['tool']:<22} {row['seconds']:8.2f}"
            f" {number('x_rsync_seconds', '.2f', 8)}"
            f" {(f'{peak / 1024:.1f}' if peak is not None else '?'):>9}"
            f" {row['tree_kib'] / 1024:9.1f}"
            f" {number('peak_bytes_per_file', ',.0f', 7)}"
            f" {number('tree_bytes_per_file', ',.0f', 12)}"
            f"  {'ok' if row['ok'] else 'FAILED'}"
        )
    return lines


def markdown(rows: list[dict]) -> list[str]:
    """The table as Markdown, for bench/RESULTS.md (sizes above 0 only)."""
    lines = [
        "| files | scenario | tool | seconds | x rsync | peak RSS MiB"
        " | tree MiB | B/file (peak) | B/file (tree) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    order = {s: i for i, s in enumerate(SCENARIOS)}
    for row in sorted(
        rows, key=lambda r: (r["files"], order[r["scenario"]], r["tool"])
    ):
        if not row["files"]:
            continue
        cells = [
            short(row["files"]),
            LABELS[row["scenario"]],
            row["tool"] + ("" if row["ok"] else " (FAILED)"),
            f"{row['seconds']:.2f}",
            f"{row['x_rsync_seconds']:.2f}" if "x_rsync_seconds" in row else "-",
            f"{row['peak_kib'] / 1024:.1f}" if row["peak_kib"] else "?",
            f"{row['tree_kib'] / 1024:.1f}",
            f"{row.get('peak_bytes_per_file', 0):,.0f}",
            f"{row.get('tree_bytes_per_file', 0):,.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def plot(rows: list[dict], path: Path, title: str) -> None:
    """Two log-log panels: wall time and peak RSS against the file count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if row["files"] and row["scenario"] in ("noop", "change") and row["ok"]:
            curves.setdefault((row["tool"], row["scenario"]), []).append(row)
    tools = sorted({tool for tool, _ in curves})
    colours = plt.get_cmap("tab10")
    styles = {"noop": ("-", "o"), "change": ("--", "s")}
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    for (tool, scenario), points in sorted(curves.items()):
        points.sort(key=lambda r: r["files"])
        xs = [r["files"] for r in points]
        line, marker = styles[scenario]
        style = {
            "color": colours(tools.index(tool) % 10),
            "linestyle": line,
            "marker": marker,
            "label": f"{tool}, {LABELS[scenario]}",
        }
        left.plot(xs, [r["seconds"] for r in points], **style)
        mem = [(r["files"], r["peak_kib"] / 1024) for r in points if r["peak_kib"]]
        if mem:
            right.plot(*zip(*mem, strict=True), **style)
    sizes = sorted({r["files"] for r in rows if r["files"]})
    empty = [
        r["peak_kib"] / 1024
        for r in rows
        if not r["files"] and r["scenario"] == "noop" and r["tool"] == "accord sync"
    ]
    if sizes and empty and empty[0]:
        right.plot(
            sizes,
            [empty[0] + GOAL * n / 2**20 for n in sizes],
            color="grey",
            linestyle=":",
            label=f"goal: accord on an empty tree + {GOAL} B/file",
        )
    for axis, what in ((left, "wall time, s"), (right, "peak RSS, MiB")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("files")
        axis.set_ylabel(what)
        axis.grid(True, which="both", alpha=0.3)
    left.set_title("wall time (with a trailing sync)")
    right.set_title("peak RSS (largest process, GNU time)")
    handles, names = right.get_legend_handles_labels()
    left.legend(handles, names, fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(
    rows: list[dict], metas: Iterable[dict], png: str, markdown_too: bool = False
) -> None:
    per_file(rows)
    print()
    print(
        "seconds: wall clock with a trailing sync (no-op: median of runs);"
        " x rsync = seconds / rsync's; B/file = (peak - the tool's no-op peak"
        " on an empty tree) / files; tree = all the tool's processes at once"
    )
    for line in table(rows):
        print(line)
    if markdown_too:
        print()
        for line in markdown(rows):
            print(line)
    if png:
        metas = list(metas)
        first = metas[0] if metas else {}
        places = sorted({m.get("filesystem", "?").split()[0] for m in metas})
        dates = sorted(m.get("date", "") for m in metas)
        when = f"{dates[0]} to {dates[-1][-9:]}" if len(dates) > 1 else dates[0]
        title = (
            f"{first.get('machine', '')}; trees on {', '.join(places)}; mean file"
            f" {first.get('mean_size', 0) / 1024:.0f} KiB; {when}; shared machine,"
            " load 8-20: read ratios"
        )
        plot(rows, Path(png), title)
        print(f"plot: {png}")


# -- the command -------------------------------------------------------------


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default=DEFAULT_SIZES, help=f"file counts (default {DEFAULT_SIZES})"
    )
    parser.add_argument(
        "--tools",
        default=DEFAULT_TOOLS,
        help=f"run.py tool names or prefixes (default {DEFAULT_TOOLS!r})",
    )
    parser.add_argument(
        "--mean-size",
        type=parse_size,
        default=parse_size("1K"),
        metavar="SIZE",
        help="mean size of the generated files (default 1K)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="no-op runs per figure")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
        help="where the trees go (default /dev/shm, a tmpfs, when there is one)",
    )
    parser.add_argument(
        "--verify",
        choices=("stat", "full", "none"),
        default="stat",
        help="compare the trees after first and change: paths, sizes, mtimes"
        " (stat, default), also contents (full), or not at all",
    )
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="run the no-ops in rounds, each tool once per round (every"
        " tool's trees are kept at once: more room)",
    )
    parser.add_argument("--label", default="", help="appended to the tool names")
    parser.add_argument(
        "--accord",
        action="append",
        default=[],
        metavar="PROGRAM=LABEL",
        help="also run this accord program's sync, named 'accord sync LABEL'"
        " (no --label added; 'PROGRAM=' names it 'accord sync'): another"
        " build, measured beside the first on the same data",
    )
    parser.add_argument(
        "--json", default=str(HERE / "scaling.json"), help="'' for none"
    )
    parser.add_argument("--png", default=str(HERE / "scaling.png"), help="'' for none")
    parser.add_argument(
        "--plot",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="no runs: the table, the PNG and one JSON (--json) from these"
        " result files; a figure in a later file replaces the same one before",
    )
    parser.add_argument("--keep", action="store_true", help="keep the trees")
    parser.add_argument(
        "--markdown", action="store_true", help="with --plot: the table in Markdown too"
    )
    parser.add_argument(
        "--dataset",
        type=Path,
        help="with one size: the tree another run generated for it (same"
        " seed and --mean-size), linked from, never changed; on --work's"
        " file system",
    )
    args = parser.parse_args()
    args.sizes = [parse_count(w) for w in args.sizes.split(",") if w.strip()]
    if any(n < 10 * sum(CHANGES) for n in args.sizes):
        parser.error(f"every size must be at least {10 * sum(CHANGES)} files")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.dataset and len(args.sizes) != 1:
        parser.error("--dataset goes with one size")
    return args


def chosen_tools(wanted_text: str, others: list[str]) -> list[Tool]:
    wanted = [w.strip() for w in wanted_text.split(",") if w.strip()]
    tools = [t for t in all_tools() if any(t.name.startswith(w) for w in wanted)]
    for spec in others:
        program, _, label = spec.partition("=")
        extra = Tool(f"accord sync {label}".strip(), program, _accord_sync)
        tools.insert(1 if tools and tools[0].name == "accord sync" else 0, extra)
    for tool in tools:
        if tool.program is None:
            print(f"skipping {tool.name}: not installed (bench/setup.sh)")
    if not Path(GNU_TIME).exists():
        print(f"no {GNU_TIME}: peak RSS not measured (bench/setup.sh)")
    return [t for t in tools if t.program is not None]


def room_check(work: Path, sizes: list[int], generate: bool = True) -> None:
    """Refuse a run whose largest tree (twice: source, copy) cannot fit.

    Inodes too: a tmpfs counts every hard link against its inode limit
    (/dev/shm allows about 3 million on this machine kind), so the
    generated tree, a tool's source of links to it and the tool's copy
    take three per file.
    """
    trees = 2 if generate else 1  # --dataset: only the tool's copy
    need = trees * max(sizes) * BYTES_PER_FILE
    free = shutil.disk_usage(work).free
    if need > free * 0.9:
        raise SystemExit(
            f"{max(sizes):,} files need about {need / 2**30:.1f} GiB in {work},"
            f" {free / 2**30:.1f} GiB is free: --work elsewhere or smaller --sizes"
        )
    inodes = int((trees + 1.1) * max(sizes))
    stat = os.statvfs(work)
    if stat.f_files and inodes > stat.f_favail:
        raise SystemExit(
            f"{max(sizes):,} files need about {inodes:,} inodes in {work},"
            f" {stat.f_favail:,} are free: a tmpfs of your own with more"
            " (mount -t tmpfs -o size=16G,nr_inodes=4M tmpfs DIR), --work DIR"
        )


def git_commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(HERE), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()


def main() -> None:
    args = arguments()
    if args.plot:
        loaded = [json.loads(p.read_text()) for p in args.plot]
        latest = {  # a figure measured again in a later file replaces the first
            (row["files"], row["tool"], row["scenario"]): row
            for data in loaded
            for row in data["rows"]
        }
        rows = list(latest.values())
        metas = [
            meta
            for data in loaded
            for meta in data.get(
                "runs", [{k: v for k, v in data.items() if k != "rows"}]
            )
        ]
        report(rows, metas, args.png, args.markdown)
        if args.json:
            Path(args.json).write_text(
                json.dumps({"runs": metas, "rows": rows}, indent=1) + "\n"
            )
        return
    tools = chosen_tools(args.tools, args.accord)
    args.extra = {spec.partition("=")[0] for spec in args.accord}
    if not tools:
        raise SystemExit("no tool to run")
    base = args.work or Path(tempfile.gettempdir())
    room_check(base, args.sizes, generate=args.dataset is None)
    work = Path(tempfile.mkdtemp(prefix="accord-scale-", dir=base))
    args.meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": git_commit(),
        "command": " ".join(sys.argv),
        "machine": f"{platform.platform()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "versions": versions(tools),
        "filesystem": filesystem_of(work),
        "mean_size": args.mean_size,
        "sizes": args.sizes,
        "load_at_start": load(),
    }
    print(f"work folder {work}, on {args.meta['filesystem']}; load {load()}")
    for name, version in args.meta["versions"].items():
        print(f"  {name}: {version}")
    curve = Curve(args, work)
    try:
        curve.all(tools, args.sizes)
    finally:
        args.meta["load_at_end"] = load()
        curve.save()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        report(curve.rows, [args.meta], args.png)
    if any(not row["ok"] for row in curve.rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
