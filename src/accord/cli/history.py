"""A pair's past: ``accord log`` (what each run changed, and who ran it) and
``accord reset`` (forget the pair's state).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from accord.cli import EXIT, Exit, cli, handle_errors
from accord.cli.options import (
    can_ask,
    endpoint_url_option,
    output_options,
    profile_endpoint,
    profile_option,
    two_places,
)
from accord.cli.render import Renderer
from accord.engine import history
from accord.engine.session import default_who, new_run_id
from accord.errors import Aborted, AccordError, ConfigError
from accord.keys import shown as escaped
from accord.registry import open_replica
from accord.state import lock
from accord.state.store import ArchiveStore, default_state_dir

__all__ = ["log_command", "reset"]


@cli.command("log")
@click.argument("left", required=False)
@click.argument("right", required=False)
@click.option("--run", "run_id", metavar="RUN", help="List what one run changed.")
@click.option(
    "-n",
    "--limit",
    type=int,
    default=20,
    show_default=True,
    help="How many runs to list.",
)
@profile_option
@endpoint_url_option
@output_options
@handle_errors
def log_command(
    left: str | None,
    right: str | None,
    run_id: str | None,
    limit: int,
    profile: str | None,
    json_lines: bool,
    quiet: bool,
    verbose: int,
) -> None:
    """What each past run of a pair changed, and who ran it.

    \b
    accord log ~/notes /mnt/backup/notes
    accord log ~/notes /mnt/backup/notes --run 20261123T101500Z-a1b2c3
    """
    out = Renderer.choose(json_lines, quiet, verbose)
    first, second, options = two_places(left, right, profile)
    profile_endpoint(options)
    store = _open_store(first, second, missing_ok=True)
    try:
        runs = store.runs(limit=1_000_000) if store else []
        shared = [h for h in _shared_history(out, first, second)]
        mine = {record.run for record in runs}
        others = [h for h in shared if h["run"] not in mine]
        if run_id:
            runs = [r for r in runs if r.run.startswith(run_id)]
            others = [h for h in others if h["run"].startswith(run_id)]
            if not runs and not others:
                raise ConfigError(f"no run {run_id} for this pair")
        items: list[tuple[float, Any]] = [(r.started, r) for r in runs]
        items += [(h.get("started", 0.0), h) for h in others]
        items.sort(key=lambda item: item[0], reverse=True)
        for _, item in items[: (limit if not run_id else len(items))]:
            detail = bool(run_id or verbose)
            if isinstance(item, dict):
                _show_shared(out, item, detail)
            else:
                assert store is not None
                _show_run(out, item, store.log_lines(item.run) if detail else [])
        if not items:
            out.line("no runs yet")
    finally:
        if store is not None:
            store.close()


def _shared_history(out: Renderer, *places: str) -> list[dict[str, Any]]:
    """The runs recorded in the places themselves (by anyone who syncs them)."""
    found: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for url in places:
        replica = open_replica(url)
        try:
            replica.open()
            records = history.read(replica)
        except AccordError as exc:
            out.notice(f"could not read the history kept in {url}: {exc.message}")
            continue
        finally:
            replica.close()
        for record in records:
            mark = (record["run"], record.get("side", ""))
            if mark not in seen:
                seen.add(mark)
                found.append({**record, "place": replica.url})
    return found


def _show_shared(out: Renderer, record: dict[str, Any], detail: bool) -> None:
    """A run made elsewhere (another person or machine), from a place's history."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.get("started", 0)))
    counts = record.get("counts", {})
    total = sum(counts.values())
    out.emit(event="run", elsewhere=True, **record)
    out.line(
        f"{record['run']}  {when}  {record.get('who', '?')}  "
        f"{record.get('command', '?')}  {record.get('status', '?')}  "
        f"{total} changed in {record['place']} (from {record.get('from', '?')})"
    )
    if detail:
        for change in record.get("changes", []):
            target = f" -> {change['new_key']}" if change.get("new_key") else ""
            out.line(f"    {change['op']:<9} {change['key']}{target}")
        listed = len(record.get("changes", []))
        if listed < total:
            out.line(f"    ... and {total - listed} more")


def _show_run(out: Renderer, record: Any, lines: list[Any]) -> None:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.started))
    summary = record.summary
    out.emit(
        event="run",
        run=record.run,
        started=record.started,
        who=record.who,
        command=record.command,
        status=record.status,
        summary=summary,
    )
    out.line(
        f"{record.run}  {when}  {record.who}  {record.command}  {record.status}  "
        f"{summary.get('changed', 0)} changed, {summary.get('failed', 0)} failed, "
        f"{summary.get('skipped', 0)} skipped"
    )
    for line in lines:
        out.emit(
            event="change",
            run=line.run,
            side=line.side,
            op=line.action,
            key=line.key,
            detail=line.detail,
        )
        arrow = {"left": "<-", "right": "->"}.get(line.side or "", "==")
        out.line(
            f"   {arrow} {line.action:9} {escaped(line.key)}   {line.detail or ''}"
        )


def _open_store(left: str, right: str, *, missing_ok: bool = False) -> Any:
    first, second = open_replica(left), open_replica(right)
    path = ArchiveStore.path_for(default_state_dir(), first.identity, second.identity)
    if not path.exists():
        if missing_ok:
            return None
        raise ConfigError(
            f"no state for this pair: {first.url} and {second.url}",
            hint="sync them first",
        )
    return ArchiveStore.open(default_state_dir(), first.identity, second.identity)


@cli.command()
@click.argument("left", required=False)
@click.argument("right", required=False)
@click.option("-y", "--yes", is_flag=True, help="Do not ask.")
@click.option(
    "--places",
    is_flag=True,
    help="Also remove accord's own folder (.accord: trash, history, lock) "
    "from both places, after a confirmation.",
)
@click.option(
    "--break-lock",
    is_flag=True,
    help="Remove a lock left by a run that is gone for good.",
)
@profile_option
@endpoint_url_option
@handle_errors
def reset(
    left: str | None,
    right: str | None,
    yes: bool,
    places: bool,
    break_lock: bool,
    profile: str | None,
) -> None:
    """Forget the pair's state: the next sync is a first sync (a union merge).

    Files are not touched. With --places, accord's own folder in each place
    (its trash, shared history and lock) is removed too, after a question.
    Refused while a run holds the lock of either place.

    \b
    accord reset ~/notes /mnt/backup/notes
    accord reset ./Data s3://bucket/team --places
    """
    *pair, options = two_places(left, right, profile)
    profile_endpoint(options)
    first, second = (open_replica(p) for p in pair)
    path = ArchiveStore.path_for(default_state_dir(), first.identity, second.identity)
    if not path.exists() and not places:
        click.echo("nothing to reset: this pair has no state")
        raise Exit(EXIT["ok"])
    info = lock.LockInfo.mine(default_who(), new_run_id())
    locked = _lock_for_reset((first, second), info, break_lock)
    try:
        if path.exists():
            _confirm_reset(
                yes, f"Forget the sync state of {first.url} and {second.url}?"
            )
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            click.echo("the pair's state is forgotten; the next sync merges both sides")
        if places:
            _confirm_reset(
                yes,
                f"Remove accord's own folder (trash, history) from {first.url} and "
                f"{second.url}? Deleted files kept in their trash will be gone.",
            )
            for replica in locked:
                replica.forget_meta()
                click.echo(f"removed accord's files from {replica.url}")
    finally:
        _unlock(locked, info)


def _lock_for_reset(
    replicas: tuple[Any, ...], info: lock.LockInfo, break_lock: bool
) -> list[Any]:
    """Take the lock of each place that can be opened, as a sync would; a place
    that cannot be opened is skipped with a note (no run can be using it)."""
    locked: list[Any] = []
    try:
        for replica in replicas:
            try:
                replica.open()
            except AccordError as exc:
                click.echo(f"note: skipped {replica.url}: {exc.message}", err=True)
                continue
            try:
                notices = lock.acquire(replica, info, break_lock=break_lock)
            except BaseException:
                replica.close()
                raise
            locked.append(replica)
            for notice in notices:
                click.echo(f"note: {notice}", err=True)
    except BaseException:
        _unlock(locked, info)
        raise
    return locked


def _unlock(replicas: list[Any], info: lock.LockInfo) -> None:
    for replica in replicas:
        try:
            lock.release(replica, info)
        finally:
            replica.close()


def _confirm_reset(yes: bool, question: str) -> None:
    if yes:
        return
    if not can_ask():
        raise Aborted("reset needs a confirmation: run again with --yes")
    if not click.confirm(question, default=False):
        raise Aborted("nothing was changed")
