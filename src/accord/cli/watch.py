"""``accord watch``: continuous sync. Parses, builds the pairs, hands them
to :class:`accord.watch.Watcher`, and renders its events: a live status
line on a terminal, one line per run when piped, JSON lines with --json."""

from __future__ import annotations

import json
import signal
import sys
import time
import warnings
from typing import Any

import click

from accord.cli import Exit, cli, handle_errors
from accord.cli.options import (
    accept_rules_option,
    allow_empty_option,
    endpoint_url_option,
    exclude_option,
    marker_option,
    max_delete_option,
    max_delete_percent_option,
    no_trash_option,
    policy_from,
    profile_endpoint,
    workers_option,
)
from accord.cli.shared import told_to_hubs
from accord.config import load_profiles
from accord.engine.policy import CONFLICT_RULES
from accord.errors import InvalidInput
from accord.watch import Pair, PairStatus, Watcher, WatchEvent, parse_duration

__all__ = ["watch"]


class Duration(click.ParamType):
    """30s, 500ms, 2m, 1h."""

    name = "DURATION"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_duration(value)
        except InvalidInput as exc:
            self.fail(f"{exc.message} ({exc.hint})", param, ctx)


@cli.command()
@click.argument("left", required=False)
@click.argument("right", required=False)
@click.option(
    "-p",
    "--profile",
    "profiles",
    multiple=True,
    metavar="NAME",
    help="Watch the pair NAME of accord.toml, or every pair of the group "
    "NAME; repeatable.",
)
@click.option("--mirror", "as_mirror", is_flag=True, help="One way, LEFT to RIGHT.")
@click.option(
    "--delete", is_flag=True, default=None, help="With --mirror: delete extras."
)
@click.option(
    "-c",
    "--conflict",
    "on_conflict",
    type=click.Choice([rule for rule in CONFLICT_RULES if rule != "ask"]),
    default=None,
    help="What to do when both sides changed an item (default keep-both).",
)
@click.option(
    "--poll",
    type=Duration(),
    default="30s",
    show_default=True,
    help="How often places that cannot tell their changes (SFTP, S3, fsspec) "
    "are listed.",
)
@click.option(
    "--delay",
    type=Duration(),
    default="0.5s",
    show_default=True,
    help="How long the places must be quiet (and written files closed) before a run.",
)
@click.option(
    "--max-delay",
    type=Duration(),
    default="10s",
    show_default=True,
    help="The longest a change waits while others keep coming.",
)
@exclude_option
@max_delete_option
@max_delete_percent_option
@allow_empty_option
@workers_option
@no_trash_option
@accept_rules_option
@click.option(
    "--checksum",
    is_flag=True,
    default=None,
    help="With --mirror: compare content digests on a first run.",
)
@marker_option
@endpoint_url_option
@click.option("--json", "json_lines", is_flag=True, help="One JSON event per line.")
@click.option("-q", "--quiet", is_flag=True, help="Print failures only.")
# a watcher asks nothing: -y/--yes, as typed for sync and mirror, is taken
# and changes nothing (not refused as an unknown option)
@click.option("-y", "--yes", "_yes", is_flag=True, hidden=True)
@handle_errors
def watch(left: str | None, right: str | None, **opts: Any) -> None:
    """Keep LEFT and RIGHT in agreement as they change, until stopped.

    Local folders tell their changes (inotify); a hub pushes its own; SFTP,
    S3 and fsspec places are listed every --poll. A run starts once the
    changes settle (--delay); changes made during a run go in the next one.
    An unreachable place is retried with a growing pause; the guards still
    stop a run (nothing is deleted for a vanished mount). No question is
    asked (so -y/--yes changes nothing): a first sync goes ahead as with
    `accord sync --yes`. Ctrl-C or SIGTERM rolls back the action in flight
    and exits (0).

    \b
    accord watch ~/papers hub://127.0.0.1:8470/papers
    accord watch ~/site sftp://host/srv/www --mirror --delete --poll 1m
    accord watch --profile work              # every pair of [pairs.work.*]
    accord watch ~/a ~/b --json              # one event per line
    """
    pairs = _pairs(left, right, opts)
    out = _Output(opts["json_lines"], opts["quiet"])
    # watchdog says so when it watches a new folder twice; nothing is wrong
    warnings.filterwarnings("ignore", "Callback with id", RuntimeWarning)
    watcher = Watcher(
        pairs,
        quiet=opts["delay"],
        longest=max(opts["max_delay"], opts["delay"]),
        poll=opts["poll"],
        on_event=out.event,
        progress=told_to_hubs,
    )
    raise Exit(_serve(watcher, out))


def _pairs(left: str | None, right: str | None, opts: dict[str, Any]) -> list[Pair]:
    """The pairs to watch: the two places given, or the profiles' pairs."""
    if (left is None) != (right is None) or (left is None and not opts["profiles"]):
        raise click.UsageError("give two places (LEFT RIGHT) or --profile NAME")
    if left is not None and opts["profiles"]:
        raise click.UsageError("give two places or --profile, not both")
    found = [(None, {"left": left, "right": right})] if left else []
    for name in opts["profiles"]:
        found += load_profiles(name)
    return [_pair(name, profile, opts) for name, profile in found]


def _pair(name: str | None, profile: dict[str, Any], opts: dict[str, Any]) -> Pair:
    mode = "mirror" if opts["as_mirror"] else profile.get("mode", "sync")
    profile_endpoint(profile)
    fields = ("on_conflict", "delete", "max_delete", "max_delete_percent")
    fields += ("allow_empty", "workers", "no_trash", "accept_rules", "checksum")
    fields += ("marker",)
    policy = policy_from(mode, profile, **{k: opts[k] for k in fields})
    if policy.mode != "mirror" and (opts["delete"] or opts["checksum"]):
        raise click.UsageError("--delete and --checksum go with --mirror")
    if policy.on_conflict == "ask":
        raise InvalidInput(
            f"profile '{name}' says conflict = \"ask\": a watcher asks nothing",
            hint="choose keep-both, newer, older, larger, left or right",
        )
    exclude = (*profile.get("exclude", []), *opts["exclude"])
    return Pair(profile["left"], profile["right"], policy, name, tuple(exclude))


def _serve(watcher: Watcher, out: _Output) -> int:
    """Run until a signal; a signal during a run rolls back its action in
    flight (KeyboardInterrupt through the engine)."""

    cut: list[int] = []

    def stop(signum: int, frame: object) -> None:
        watcher.stop()
        if watcher.running and not cut:  # once: never inside the unwinding
            cut.append(signum)
            raise KeyboardInterrupt

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, stop)
    with out.live(watcher):
        try:
            watcher.run()
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            out.event(WatchEvent("stopped", data={"interrupted": True}))
    return 0


class _Output:
    """Renders the watcher's events for people or scripts."""

    def __init__(self, json_lines: bool, quiet: bool) -> None:
        self.mode = "json" if json_lines else "quiet" if quiet else "plain"
        if self.mode == "plain" and sys.stdout.isatty():
            self.mode = "rich"
        self._console: Any = None
        self._live: Any = None

    def event(self, event: WatchEvent) -> None:
        if self.mode == "json":
            sys.stdout.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
            sys.stdout.flush()
            return
        text = _line(event)
        if text is None or (self.mode == "quiet" and event.kind != "failed"):
            return
        if self.mode == "rich" and self._console is not None:
            self._console.print(text, markup=False, highlight=False)
        else:
            stream = sys.stderr if event.kind == "failed" else sys.stdout
            print(text, file=stream, flush=True)

    def live(self, watcher: Watcher) -> Any:
        """A status line at the bottom of the terminal, while watching."""
        import contextlib

        if self.mode != "rich":
            return contextlib.nullcontext()
        from rich.console import Console
        from rich.live import Live

        self._console = Console(highlight=False)
        return Live(
            _StatusLine(watcher),
            console=self._console,
            refresh_per_second=4,
            transient=True,
        )


class _StatusLine:
    """What rich's Live redraws: one line per pair."""

    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def __rich__(self) -> Any:
        from rich.text import Text

        return Text("\n".join(status_line(s) for s in self._watcher.status()))


def status_line(status: PairStatus) -> str:
    """One pair's state in a line: running or waiting, pending, last run, error."""
    parts = [status.label + ":"]
    if status.running:
        parts.append(f"running ({status.done_now} done)")
    elif status.busy:
        parts.append(f"waiting for another run: {status.error}")
    elif status.error:
        retry = f", retrying in {status.retry_in:.0f}s" if status.retry_in else ""
        parts.append(f"failing{retry}: {status.error}")
    else:
        parts.append("watching")
    if status.pending:
        parts.append(f"· {status.pending} change(s) pending")
    if status.last is not None:
        when = ""
        if "at" in status.last:
            when = " " + time.strftime("%H:%M:%S", time.localtime(status.last["at"]))
        parts.append(f"· last sync{when}: {status.last.get('changed', 0)} changed")
    return " ".join(parts)


def _line(event: WatchEvent) -> str | None:
    """One event as a line for people (None: nothing to say)."""
    stamp = time.strftime("%H:%M:%S")
    data = event.data
    if event.kind == "watching":
        return f"{stamp} {event.pair}: {data['place']} {data['how']}"
    if event.kind == "done":
        if not data.get("changed") and data.get("status") == "ok":
            return None
        extra = ", ".join(
            f"{data[k]} {k}" for k in ("skipped", "failed", "conflicts") if data.get(k)
        )
        return f"{stamp} {event.pair}: {data.get('changed', 0)} changed" + (
            f" ({extra})" if extra else ""
        )
    if event.kind == "failed":
        hint = f"\n  hint: {data['hint']}" if data.get("hint") else ""
        return (
            f"{stamp} {event.pair}: {data['error']} "
            f"(retrying in {data['retry_in']:.0f}s){hint}"
        )
    if event.kind == "busy":
        if data["tries"] % 10:
            return None  # another machine's run: said only when it lasts
        return f"{stamp} {event.pair}: still waiting: {data['error']}"
    if event.kind == "notice":
        return f"{stamp} {event.pair}: {data['message']}"
    if event.kind == "stopped":
        return f"{stamp} stopped: nothing is half-written"
    return None
