"""Output for people and for scripts.

Three modes: ``rich`` (a terminal: progress bars, tables), ``plain`` (piped:
quiet, one line per fact) and ``json`` (one JSON object per line). The
library never prints; only this module writes to the terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from accord.engine.plan import ARCHIVE_ONLY, OP_WORDS, Action, Plan, human_size
from accord.engine.report import Event, Report
from accord.keys import shown as escaped
from accord.model import Problem

__all__ = ["Renderer", "human_size"]

_ARROW = {"left": "<-", "right": "->", None: "=="}


class Renderer:
    """Writes what the CLI has to say, in the mode chosen for this run."""

    def __init__(self, mode: str, verbose: int = 0, out: TextIO | None = None) -> None:
        self.mode = mode
        self.verbose = verbose
        self.out = out or sys.stdout
        self._console: Any = None
        self._told: set[str] = set()  # skipped/failed lines shown during the run
        self._problems_told: set[Problem] = set()

    @classmethod
    def choose(cls, json_lines: bool, quiet: bool, verbose: int) -> Renderer:
        if json_lines:
            return cls("json", verbose)
        if quiet:
            return cls("quiet", verbose)
        return cls("rich" if sys.stdout.isatty() else "plain", verbose)

    @property
    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console  # only on a terminal

            self._console = Console(file=self.out, highlight=False)
        return self._console

    def line(self, text: str = "") -> None:
        if not text.isascii():  # a name's stray byte never breaks the output
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        if self.mode == "rich":
            self.console.print(text, markup=False)
        elif self.mode == "plain":
            print(text, file=self.out)

    def emit(self, **data: Any) -> None:
        if self.mode == "json":
            text = json.dumps(data, ensure_ascii=False)
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # a name with bytes that are not UTF-8
                text = json.dumps(data)  # kept exact, as \udcXX escapes
            print(text, file=self.out, flush=True)

    def notice(self, text: str) -> None:
        self.emit(event="notice", message=text)
        if self.mode != "json":
            print(f"note: {text}", file=sys.stderr)

    # -- plans ------------------------------------------------------------
    def plan(self, plan: Plan, *, why: bool = False, limit: int = 50) -> None:
        if self.mode == "json":
            self._plan_json(plan)
            return
        if self.mode == "quiet":
            return
        self.problems(plan.problems, plan)
        changes = plan.changes
        if plan.is_empty:
            self.line(f"nothing to do: both sides agree{_apart(plan)}")
            return
        self.line(f"left:  {plan.left}\nright: {plan.right}")
        shown = (
            changes
            if (self.verbose or why or len(changes) <= limit)
            else changes[:limit]
        )
        for action in shown:
            self.line(self.describe(action, why=why))
        if len(shown) < len(changes):
            self.line(f"... and {len(changes) - len(shown)} more (use -v to list all)")
        for conflict in plan.conflicts:
            self.line(f"CONFLICT {escaped(conflict.key)}: {conflict.reason}")
        self.line(self.plan_summary(plan))
        for guard in plan.guards:
            self.line(f"guard: {guard}")

    def _plan_json(self, plan: Plan) -> None:
        for action in plan.actions:
            self.emit(event="action", **action.to_json())
        for conflict in plan.conflicts:
            self.emit(event="conflict", **conflict.to_json())
        self.problems(plan.problems, plan)
        summary = plan.summary()
        self.emit(
            event="plan",
            to_left=dict(summary.to_left),
            to_right=dict(summary.to_right),
            bytes_to_left=summary.bytes_to_left,
            bytes_to_right=summary.bytes_to_right,
            conflicts=summary.conflicts,
            problems=summary.problems,
            guards=plan.guards,
            first_sync=plan.first_sync,
        )

    def describe(self, action: Action, *, why: bool = False) -> str:
        side = action.side.value if action.side else None
        verb = OP_WORDS.get(action.op, action.op)
        if (
            action.op == "copy"
            and action.entry is not None
            and action.entry.kind == "dir"
        ):
            verb = "mkdir"
        text = f"{_ARROW[side]} {verb:9} {escaped(action.key)}"
        if action.new_key:
            text += f"  =>  {escaped(action.new_key)}"
        if why and action.reason:
            text += f"   ({action.reason})"
        return text

    def problems(
        self, problems: list[Problem], plan: Plan | None = None, where: str = ""
    ) -> None:
        """Each problem once (a refused name: its escaped name, the place it
        came from, why, what to do); ``where``: the place, without a plan."""
        for problem in problems:
            if problem in self._problems_told:
                continue
            self._problems_told.add(problem)
            if self.mode == "json":
                side = problem.side.value if problem.side else None
                place = where or None
                if plan is not None and side is not None:
                    place = plan.left if side == "left" else plan.right
                self.emit(
                    event="problem",
                    key=problem.key,
                    name=escaped(problem.key),
                    side=side,
                    place=place,
                    message=problem.message,
                    refused=problem.refused,
                    notice=problem.notice,
                )
            elif self.mode != "quiet":
                # a notice (a named pipe skipped) leaves nothing unsynced
                self.line(f"{'notice' if problem.notice else 'problem'}: {problem}")

    def plan_summary(self, plan: Plan) -> str:
        parts = plan.summary().parts()
        if plan.first_sync:
            parts.append("first sync: the two sides are merged")
        return "plan: " + ("; ".join(parts) if parts else "archive updates only")

    # -- runs -------------------------------------------------------------
    @contextmanager
    def progress(self, plan: Plan) -> Iterator[Any]:
        """An ``on_event`` callback for the run, with a progress bar on a terminal."""
        total = len([a for a in plan.actions if a.op not in ARCHIVE_ONLY])
        if self.mode != "rich" or total == 0:
            yield self._event_printer()
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        size = sum(a.size for a in plan.actions)
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[items]}"),
            TimeRemainingColumn(),
        ]
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task("syncing", total=max(size, 1), items=f"0/{total}")
            count = [0]

            def on_event(event: Event) -> None:
                if event.kind == "bytes":
                    bar.advance(task, event.size)
                elif event.kind in ("done", "skipped", "failed") and event.action:
                    if event.action.op not in ARCHIVE_ONLY:
                        count[0] += 1
                        bar.update(task, items=f"{count[0]}/{total}")
                    if event.kind != "done":
                        bar.console.print(self._tell(event), markup=False)

            yield on_event

    def _event_printer(self) -> Any:
        def on_event(event: Event) -> None:
            action = event.action
            if event.kind in ("bytes", "start") or action is None:
                return
            if self.mode == "json":
                self.emit(
                    event=event.kind,
                    op=action.op,
                    key=action.key,
                    side=action.side and action.side.value,
                    new_key=action.new_key,
                    message=event.message or None,
                )
            elif event.kind != "done":
                print(self._tell(event), file=sys.stderr)
            elif self.verbose and action.op not in ARCHIVE_ONLY:
                self.line(self.describe(action))

        return on_event

    def _tell(self, event: Event) -> str:
        """The line for a skipped or failed item, remembered as shown."""
        text = f"{event.kind}: {event.message}"
        self._told.add(text)
        return text

    def report(self, report: Report, shown: tuple[str, ...] = ()) -> None:
        """The end of a run; ``shown``: notices already printed at its start."""
        summary = report.summary()
        for notice in report.notices:
            if notice not in shown:
                self.notice(notice)
        self.problems(report.problems, report.plan)
        if self.mode == "json":
            self.emit(event="summary", **summary)
            return
        parts = [f"{summary['changed']} changed ({human_size(summary['bytes'])})"]
        if summary["kept_both"]:
            kept = summary["kept_both"]
            parts.append(f"{kept} conflict{'' if kept == 1 else 's'} kept both")
        counts = {**summary, "problems": len(report.unsynced)}
        notices = summary["problems"] - counts["problems"]
        for name, one in _COUNTED:
            if counts[name]:
                parts.append(f"{counts[name]} {one if counts[name] == 1 else name}")
        if notices:
            parts.append(f"{notices} notice{'' if notices == 1 else 's'}")
        text = "done: " + ", ".join(parts) + f" in {summary['seconds']:.2f}s"
        if report.aborted:
            text += f"; stopped: {report.aborted}"
        self.line(text)
        if report.aborted and report.aborted_hint:
            self.line(f"  hint: {report.aborted_hint}")
        for outcome in report.kept_both:
            action = outcome.action
            self.line(f"conflict: {escaped(action.key)}: {action.reason}")
        for outcome in report.skipped + report.failed:
            text = f"{outcome.status}: {outcome.message}"
            if text not in self._told:  # each item once: not again if shown live
                self.line(text)
        for conflict in report.conflicts:
            self.line(
                f"unresolved conflict: {escaped(conflict.key)} ({conflict.reason})"
            )


#: the counts a run's last line gives: (the summary's name, one of them)
_COUNTED = (
    ("skipped", "skipped"),
    ("failed", "failed"),
    ("conflicts", "conflict"),
    ("problems", "problem"),
)


def _apart(plan: Plan) -> str:
    """What ``nothing to do: both sides agree`` is said apart from: the
    problems printed above it, or only notices (a named pipe skipped)."""
    if plan.unsynced:
        return ", apart from the problems above"
    return ", apart from what is noted above" if plan.problems else ""
