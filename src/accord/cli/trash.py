"""``accord trash``: list, restore and purge what a place's trash keeps."""

from __future__ import annotations

import math
import time
from typing import Any

import click

from accord.cli import EXIT, Exit, cli, handle_errors
from accord.cli.options import can_ask, endpoint_url_option, output_options
from accord.cli.render import Renderer, human_size
from accord.engine.names import checked_trash
from accord.errors import Aborted, ConfigError
from accord.keys import shown as escaped
from accord.model import Problem
from accord.registry import open_replica
from accord.replica import TrashItem, user_key

__all__ = ["Days", "trash", "trash_list", "trash_purge", "trash_restore"]


@cli.group()
def trash() -> None:
    """Deleted and overwritten files, kept in each place's trash.

    \b
    accord trash list ~/notes
    accord trash restore ~/notes report.txt
    accord trash purge ~/notes --older-than 7
    """


def _opened(place: str) -> Any:
    replica = open_replica(place)
    replica.open()
    return replica


@trash.command("list")
@click.argument("place")
@endpoint_url_option
@output_options
@handle_errors
def trash_list(place: str, json_lines: bool, quiet: bool, verbose: int) -> None:
    """List what is in PLACE's trash, oldest run first.

    \b
    accord trash list ~/notes
    accord trash list sftp://lab/srv/db --json
    """
    out = Renderer.choose(json_lines, quiet, verbose)
    replica = _opened(place)
    count = 0
    for item in checked_trash(replica.trash_list(), replica.url):
        if isinstance(item, Problem):
            out.problems([item], where=replica.url)
            continue
        count += 1
        out.emit(event="trashed", run=item.run, key=item.key, size=item.entry.size)
        out.line(f"{item.run}  {human_size(item.entry.size):>9}  {escaped(item.key)}")
    if not count:
        out.line("the trash is empty")
    replica.close()


@trash.command("restore")
@click.argument("place")
@click.argument("path")
@endpoint_url_option
@click.option(
    "--run", "run_id", metavar="RUN", help="Which trashed version (default: newest)."
)
@click.option("--to", "to_path", metavar="PATH", help="Restore under another name.")
@handle_errors
def trash_restore(
    place: str, path: str, run_id: str | None, to_path: str | None
) -> None:
    """Put PATH back from PLACE's trash (the newest version unless --run).

    PATH and --to are paths inside PLACE (like 'docs/report.txt').

    \b
    accord trash restore ~/notes report.txt
    accord trash restore ~/notes report.txt --run 20261123T1015
    accord trash restore ~/notes report.txt --to report-old.txt
    """
    key = user_key(path)
    target = user_key(to_path, "--to") if to_path is not None else None
    replica = _opened(place)
    matches: list[TrashItem] = [
        i
        for i in checked_trash(replica.trash_list(), replica.url)
        if isinstance(i, TrashItem)
        and i.key == key
        and (not run_id or i.run.startswith(run_id))
    ]
    if not matches:
        raise ConfigError(
            f"{path} is not in the trash of {replica.url}",
            hint="see what is there with 'accord trash list'",
        )
    item = matches[-1]
    entry = replica.trash_restore(item, target or item.key)
    size = human_size(item.entry.size)  # as listed (a record's entry holds 0)
    click.echo(f"restored {escaped(entry.key)} ({size}) from run {item.run}")
    replica.close()


class Days(click.ParamType):
    """A number of days: a finite number, 0 or more (7, 0.5)."""

    name = "days"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            days = float(value)
        except (TypeError, ValueError):
            days = math.nan
        if not math.isfinite(days) or days < 0:
            self.fail(
                f"{value!r} is not a number of days: give a number, 0 or more "
                "(e.g. 7 or 0.5)",
                param,
                ctx,
            )
        return days


@trash.command("purge")
@click.argument("place")
@endpoint_url_option
@click.option(
    "--older-than",
    type=Days(),
    default=None,
    metavar="DAYS",
    help="Only runs older than DAYS (a number, 0 or more, e.g. 7 or 0.5).",
)
@click.option("-y", "--yes", is_flag=True, help="Do not ask.")
@handle_errors
def trash_purge(place: str, older_than: float | None, yes: bool) -> None:
    """Delete PLACE's trash for good (all of it, or runs older than DAYS).

    \b
    accord trash purge ~/notes --older-than 30
    accord trash purge ~/notes --older-than 0.5 --yes    # older than 12 hours
    accord trash purge ~/notes                           # all of it, asks first
    """
    replica = _opened(place)
    runs = replica.trash_runs()
    if older_than is not None:
        cutoff = time.strftime(
            "%Y%m%dT%H%M%SZ", time.gmtime(max(0.0, time.time() - older_than * 86400))
        )
        runs = [r for r in runs if r < cutoff]
    if not runs:
        click.echo("nothing to purge")
        raise Exit(EXIT["ok"])
    if not yes:
        if not can_ask():
            raise Aborted("purging needs a confirmation: run again with --yes")
        if not click.confirm(
            f"Delete {len(runs)} trash runs of {replica.url} for good?", default=False
        ):
            raise Aborted("nothing was deleted")
    count = sum(replica.trash_purge(run) for run in runs)
    click.echo(f"purged {count} items from {len(runs)} runs")
    replica.close()
