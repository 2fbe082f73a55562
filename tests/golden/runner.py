"""Run a golden scenario script and produce its transcript.

A scenario (``*.scn``) is a list of steps on two local folders, L and R, one
per line; ``#`` starts a comment. The transcript records every plan, report
and tree the steps print, normalised (conflict time stamps, run ids), and is
compared with the ``*.out`` file next to the script.

Steps::

    write L a.txt some text\\n      a file with this text (\\n, \\t escapes)
    bytes R big.bin 5M 7            SIZE (K, M suffixes) seeded bytes
    mkdir L dir        rm L path    mv L old new     link L name target
    chmod L path 600   touch L path 1700000000      (mtime, seconds)
    sync [conflict=newer] [max_delete=5] [allow_empty=true] [case=insensitive]
         [unicode=normalizing]          (R declares it cannot hold two spellings)
    mirror [delete=true]
    plan [options]                  the plan only, nothing applied
    during L a.txt text             an edit made after planning, before applying
    unmount R          empty R      (the folder is renamed away / emptied)
    remount R
    tree               trash L      print both trees / L's trash
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import unicodedata
from pathlib import Path

from accord.engine.plan import Plan
from accord.engine.policy import Policy
from accord.engine.session import Session
from accord.errors import AccordError
from accord.registry import open_replica

_STAMP = re.compile(r"\d{8}-\d{6}")
_RUN = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")


def normalise(text: str) -> str:
    return _RUN.sub("<run>", _STAMP.sub("<stamp>", text))


_ESCAPE = re.compile(r"\\(n|t|u[0-9a-fA-F]{4})")


def unescape(text: str) -> str:
    """``\\n``, ``\\t`` and ``\\uXXXX`` in a step's text or path."""

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code == "n":
            return "\n"
        if code == "t":
            return "\t"
        return chr(int(code[1:], 16))

    return _ESCAPE.sub(one, text)


def size_of(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1].upper() in units:
        return int(float(text[:-1]) * units[text[-1].upper()])
    return int(text)


class Scenario:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sides = {"L": root / "L", "R": root / "R"}
        for path in self.sides.values():
            path.mkdir()
        self.out: list[str] = []
        self.during: list[tuple[str, str, str]] = []
        self.case = "sensitive"
        self.unicode = "exact"

    # -- helpers -------------------------------------------------------------
    def path(self, side: str, rel: str) -> Path:
        return self.sides[side] / unescape(rel)

    def say(self, line: str) -> None:
        self.out.append(normalise(line.replace(str(self.root), "<work>")))

    def listing(self, lines: list[str]) -> list[str]:
        """A tree's lines; a long one as its size, a digest and a sample."""
        if len(lines) <= _MANY:
            return lines
        digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12]
        return [f"({len(lines)} items, listing sha256:{digest})", *lines[:3], "..."]

    def url(self, side: str) -> str:
        place = str(self.sides[side])
        options = []
        if side == "R" and self.case == "insensitive":
            options.append("case_sensitive=false")
        if side == "R" and self.unicode == "normalizing":
            options.append("unicode_exact=false")
        return f"file://{place}?{'&'.join(options)}" if options else place

    # -- steps ---------------------------------------------------------------
    def run(self, line: str) -> None:
        words = line.split(" ", 3)
        getattr(self, "do_" + words[0].replace("-", "_"))(*words[1:])

    def do_write(self, side: str, rel: str, text: str = "") -> None:
        path = self.path(side, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(unescape(text))

    def do_bytes(self, side: str, rel: str, spec: str) -> None:
        size, _, seed = spec.partition(" ")
        rng = random.Random(int(seed or 0))
        path = self.path(side, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        left = size_of(size)
        with open(path, "wb") as handle:
            while left:
                block = min(left, 1 << 20)
                handle.write(rng.randbytes(block))
                left -= block

    def do_many(self, side: str, rel: str, count: str) -> None:
        folder = self.path(side, rel)
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(int(count)):
            (folder / f"f{i:05}.txt").write_text(f"file {i}\n")

    def do_mkdir(self, side: str, rel: str) -> None:
        self.path(side, rel).mkdir(parents=True, exist_ok=True)

    def do_rm(self, side: str, rel: str) -> None:
        path = self.path(side, rel)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()

    def do_mv(self, side: str, old: str, new: str) -> None:
        target = self.path(side, new)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.path(side, old).rename(target)

    def do_link(self, side: str, rel: str, target: str) -> None:
        path = self.path(side, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)

    def do_chmod(self, side: str, rel: str, mode: str) -> None:
        os.chmod(self.path(side, rel), int(mode, 8))

    def do_touch(self, side: str, rel: str, when: str) -> None:
        os.utime(self.path(side, rel), (int(when), int(when)))

    def do_during(self, side: str, rel: str, text: str = "") -> None:
        self.during.append((side, rel, text))

    def do_unmount(self, side: str) -> None:
        self.sides[side].rename(self.root / f"{side}-unmounted")

    def do_remount(self, side: str) -> None:
        (self.root / f"{side}-unmounted").rename(self.sides[side])

    def do_empty(self, side: str) -> None:
        for child in self.sides[side].iterdir():
            if child.name != ".accord":
                self.do_rm(side, child.name)

    def do_sync(self, *args: str) -> None:
        self._session("sync", " ".join(args), apply=True)

    def do_mirror(self, *args: str) -> None:
        self._session("mirror", " ".join(args), apply=True)

    def do_plan(self, *args: str) -> None:
        self._session("sync", " ".join(args), apply=False)

    def do_tree(self) -> None:
        left, right = self.tree("L"), self.tree("R")
        if left == right:
            self.say("tree L = R:")
            self.out.extend("  " + normalise(line) for line in self.listing(left))
        else:
            for side, lines in (("L", left), ("R", right)):
                self.say(f"tree {side}:")
                self.out.extend("  " + normalise(line) for line in self.listing(lines))

    def do_trash(self, side: str) -> None:
        replica = open_replica(str(self.sides[side]))
        replica.open()
        items = sorted(item.key for item in replica.trash_list())
        self.say(f"trash {side}: " + (", ".join(items) or "(empty)"))

    # -- the engine ----------------------------------------------------------
    def _session(self, mode: str, args: str, *, apply: bool) -> None:
        options: dict[str, object] = {"mode": mode}
        for item in args.split():
            name, _, value = item.partition("=")
            if name == "case":
                self.case = value
                continue
            if name == "unicode":
                self.unicode = value
                continue
            options[_OPTION.get(name, name)] = _value(value)
        self.say(f"$ {mode} {args}".rstrip())
        try:
            with Session(
                self.url("L"), self.url("R"), policy=Policy(**options)
            ) as session:  # type: ignore[arg-type]
                plan = session.plan()
                self.show(plan)
                if not apply:
                    return
                for side, rel, text in self.during:
                    self.do_write(side, rel, text)
                self.during = []
                report = session.apply(plan, override_guards=False)
        except AccordError as exc:
            self.say(f"error {type(exc).__name__}: {exc.message}")
            return
        self.say(
            f"report: {len([o for o in report.done])} done, "
            f"{len(report.skipped)} skipped, {len(report.failed)} failed"
        )
        for outcome in report.skipped + report.failed:
            key = spelled(outcome.action.key)
            self.say(f"  {outcome.status} {key}: {outcome.message}")

    def show(self, plan: Plan) -> None:
        if plan.first_sync:
            self.say("first sync")
        actions = plan.ordered()
        if len(actions) > _MANY:
            counts: dict[str, int] = {}
            for action in actions:
                name = f"{action.op} {action.side or '-'}"
                counts[name] = counts.get(name, 0) + 1
            for name, count in sorted(counts.items()):
                self.say(f"  {name}: {count} items")
        else:
            for action in actions:
                line = f"  {action.op} {action.side or '-'} {spelled(action.key)}"
                if action.new_key:
                    line += f" => {spelled(action.new_key)}"
                self.say(line)
        for problem in plan.problems:
            side = problem.side or "-"
            self.say(f"  problem {side} {spelled(problem.key)}: {problem.message}")
        for guard in plan.guards:
            self.say(f"  guard: {guard}")
        for conflict in plan.conflicts:
            self.say(f"  conflict {conflict.key}")
        if plan.is_empty and not plan.problems:
            self.say("  (nothing to do)")

    def tree(self, side: str) -> list[str]:
        root = self.sides[side]
        if not root.exists():
            return ["(missing)"]
        lines = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != ".accord" or folder != str(root))
            rel_folder = os.path.relpath(folder, root)
            for name in sorted(dirs + files):
                path = Path(folder) / name
                rel = spelled(os.path.normpath(os.path.join(rel_folder, name)))
                lines.append(describe(rel, path))
        return sorted(lines)


_OPTION = {"conflict": "on_conflict"}
_MANY = 30  # longer plans and trees are summarised


def _value(text: str) -> object:
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        return text


def spelled(name: str) -> str:
    """``name`` as printed: unchanged in NFC, else with its code points
    escaped, so that an NFD spelling shows as one (``e\\u0301``)."""
    if unicodedata.is_normalized("NFC", name):
        return name
    return name.encode("ascii", "backslashreplace").decode()


def describe(rel: str, path: Path) -> str:
    if path.is_symlink():
        return f"{rel} -> {os.readlink(path)}"
    if path.is_dir():
        return f"{rel}/"
    data = path.read_bytes()
    mode = oct(path.stat().st_mode & 0o777)[2:]
    if len(data) <= 48 and data.isascii():
        return f"{rel} {data.decode()!r} {mode}"
    return f"{rel} <{len(data)} bytes sha256:{hashlib.sha256(data).hexdigest()[:12]}>"


def run_script(script: Path, workdir: Path) -> str:
    scenario = Scenario(workdir)
    for number, raw in enumerate(script.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            scenario.run(line)
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"{script.name}:{number}: bad step {line!r}") from exc
    return "\n".join(scenario.out) + "\n"
