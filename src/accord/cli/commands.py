"""The commands. Each parses, calls the library, renders."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from accord.cli import EXIT, Exit, cli, handle_errors
from accord.cli.places import login_options, open_places
from accord.cli.render import Renderer, human_size
from accord.cli.shared import told_to_hubs
from accord.config import load_profile
from accord.engine import history
from accord.engine.apply import Report
from accord.engine.names import checked_trash
from accord.engine.plan import Plan, plans_from_json
from accord.engine.policy import CONFLICT_RULES, Policy
from accord.engine.reconcile import resolve
from accord.engine.session import Session, default_who, new_run_id
from accord.errors import Aborted, AccordError, ConfigError, NotAPlan
from accord.fsdb.hook import FSDBHook
from accord.keys import shown as escaped
from accord.model import Problem
from accord.registry import open_replica
from accord.replica import TrashItem, user_key
from accord.state import lock
from accord.state.store import ArchiveStore, default_state_dir

# -- shared options ---------------------------------------------------------


class ItemCount(click.ParamType):
    """--max-delete: a whole number of items, 0 or more."""

    name = "N"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        text = str(value).strip()
        if not text.isdigit():
            hint = " (a percentage goes in --max-delete-percent)" if "%" in text else ""
            self.fail(
                f"{value!r} is not a number of items: give a whole number, "
                f"0 or more (e.g. 100){hint}",
                param,
                ctx,
            )
        return int(text)


class Percent(click.ParamType):
    """--max-delete-percent: a number from 0 to 100, with or without '%'."""

    name = "P"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        text = str(value).strip().removesuffix("%")
        try:
            percent = float(text)
        except ValueError:
            percent = math.nan
        if not 0 <= percent <= 100:  # also refuses nan
            self.fail(
                f"{value!r} is not a percentage: give a number from 0 to 100 "
                "(e.g. 50 or 12.5%)",
                param,
                ctx,
            )
        return percent


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--json",
        "json_lines",
        is_flag=True,
        help="One JSON object per line, for scripts.",
    )(func)
    func = click.option("-q", "--quiet", is_flag=True, help="Print errors only.")(func)
    return click.option(
        "-v",
        "--verbose",
        count=True,
        help="List every action (-v), with reasons (-vv).",
    )(func)


profile_option = click.option(
    "-p", "--profile", metavar="NAME", help="Use the pair NAME from accord.toml."
)


def run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "-n",
            "--dry-run",
            is_flag=True,
            help="Show the plan; change nothing (exit 6 if changes are pending).",
        ),
        click.option(
            "-y",
            "--yes",
            is_flag=True,
            help="Answer every question (for cron); guards still abort.",
        ),
        click.option(
            "--exclude",
            multiple=True,
            metavar="PATTERN",
            help="Ignore paths matching PATTERN (gitignore syntax); repeatable. "
            "Accepted rules in .accordignore apply too.",
        ),
        click.option(
            "--max-delete",
            type=ItemCount(),
            default=None,
            metavar="N",
            help="Mass-deletion guard: a number of items, 0 or more (default 100).",
        ),
        click.option(
            "--max-delete-percent",
            type=Percent(),
            default=None,
            metavar="P",
            help="Mass-deletion guard: percent of a side, 0 to 100, e.g. 50 or "
            "12.5% (default 50).",
        ),
        click.option(
            "--allow-empty",
            is_flag=True,
            help="Let a side that became empty delete everything on the other.",
        ),
        click.option(
            "--accept-rules",
            is_flag=True,
            help="Apply a changed .accordignore (yours or a peer's): its rules "
            "apply, and the file syncs, from this run on.",
        ),
        click.option(
            "--break-lock",
            is_flag=True,
            help="Remove a lock left by a run that is gone for good.",
        ),
        click.option(
            "--workers",
            type=click.IntRange(1, 64),
            default=None,
            help="Transfers in flight at once (default 4).",
        ),
        click.option(
            "--no-trash",
            is_flag=True,
            help="Delete and overwrite for good instead of keeping a copy.",
        ),
        click.option(
            "--marker",
            metavar="NAME",
            default=None,
            help="Refuse to run unless both roots hold the file NAME "
            "(a file-system database's marker, e.g. romidb).",
        ),
        click.option(
            "--db-lock",
            metavar="NAME",
            default=None,
            help="Create the database's lock file NAME at both roots for the "
            "run; refuse if either exists (busy). Removed on every exit.",
        ),
        click.option(
            "--fsdb/--no-fsdb",
            "fsdb",
            default=None,
            help="plantdb FSDB mode: only scans move (not users.json, .locks/, "
            "webcache/), plantdb's scan locks are honoured, new scans appear "
            "whole. Default: on when both roots hold 'romidb'.",
        ),
        click.option(
            "--scan",
            "scans",
            multiple=True,
            metavar="NAME",
            help="FSDB: sync only the scan NAME (repeatable); a name that does "
            "not exist is an error.",
        ),
        click.option(
            "--scan-filter",
            metavar="REGEX",
            default=None,
            help="FSDB: sync only the scans whose names match REGEX.",
        ),
        click.option(
            "--lock-timeout",
            type=click.FloatRange(0),
            default=None,
            metavar="SECONDS",
            help="FSDB: how long to wait for a scan plantdb holds (default 30).",
        ),
        click.option(
            "--no-scan-locks",
            is_flag=True,
            help="FSDB: take no plantdb scan locks (plain SFTP cannot); only "
            "when no plantdb program uses the database during the run.",
        ),
        click.option(
            "--endpoint-url",
            metavar="URL",
            default=None,
            help="S3-compatible endpoint for s3:// places (else AWS_ENDPOINT_URL).",
        ),
        profile_option,
    ]
    for option in reversed(options):
        func = option(func)
    return output_options(func)


def _places(
    first: str | None, second: str | None, profile: str | None
) -> tuple[str, str, dict[str, Any]]:
    """Two places from the arguments or a profile."""
    if profile is None and first is not None and second is None:
        profile = first
        first = None
    options: dict[str, Any] = load_profile(profile) if profile else {}
    left = first or options.get("left")
    right = second or options.get("right")
    if not left or not right:
        raise click.UsageError("give two places (LEFT RIGHT) or a profile name")
    return left, right, options


def _policy(mode: str, profile: dict[str, Any], **cli: Any) -> Policy:
    values: dict[str, Any] = {
        "on_conflict": profile.get("conflict"),
        "max_delete": profile.get("max_delete"),
        "max_delete_percent": profile.get("max_delete_percent"),
        "allow_empty": profile.get("allow_empty"),
        "accept_rules": profile.get("accept_rules"),
        "workers": profile.get("workers"),
        "delete": profile.get("delete"),
        "checksum": profile.get("checksum"),
        "trash_days": profile.get("trash_days"),
        "marker": profile.get("marker"),
        "db_lock": profile.get("db_lock"),
    }
    values.update({k: v for k, v in cli.items() if v not in (None, False)})
    if cli.get("no_trash"):
        values["trash"] = False
    values.pop("no_trash", None)
    return Policy(mode=mode, **{k: v for k, v in values.items() if v is not None})


def _use_endpoint(url: str | None) -> None:
    """``--endpoint-url``: the S3 endpoint, the way the AWS tools take it."""
    if url:
        os.environ["AWS_ENDPOINT_URL"] = url


def _can_ask() -> bool:
    return sys.stdin.isatty()


# -- sync and mirror ----------------------------------------------------------


def _execute(session: Session, out: Renderer, *, dry_run: bool, yes: bool) -> int:
    """Plan, show, confirm, apply, report: the body of sync and mirror."""
    for notice in session.notices:
        out.notice(notice)
    _ask_about_rules(session, out, dry_run=dry_run, yes=yes)
    printed = len(session.notices)
    plan = session.plan()
    for notice in session.notices[printed:]:  # what planning had to say
        out.notice(notice)
    shown = tuple(session.notices)  # the report repeats them: print once
    if dry_run:
        out.plan(plan, why=out.verbose > 1)
        return EXIT["pending"] if not plan.is_empty else EXIT["ok"]
    if plan.is_empty and not plan.problems:
        if any(plan.refresh.values()) or plan.agreed or session.hook.pending():
            session.apply(plan)
        out.plan(plan)
        return EXIT["ok"]
    show_all = plan.first_sync or plan.guards or out.verbose or plan.conflicts
    if show_all:
        out.plan(plan, why=out.verbose > 1)
    plan = _settle_conflicts(plan, out, yes)
    override = _confirm(plan, out, yes)
    with (
        out.progress(plan) as shown_here,
        told_to_hubs(session, plan, shown_here) as on_event,
    ):
        report = session.apply(plan, on_event=on_event, override_guards=override)
    out.report(report, shown=shown)
    return _exit_code(report)


def _ask_about_rules(
    session: Session, out: Renderer, *, dry_run: bool, yes: bool
) -> None:
    """A changed ``.accordignore``: ask on a terminal whether its rules apply
    (never with --yes or in a dry run: it is held back and reported)."""
    if not session.rule_changes or session.policy.accept_rules:
        return
    if dry_run or yes or not _can_ask():
        return
    for change in session.rule_changes:
        out.line(
            f"\nthe ignore rules of the {change.side} side ({change.url}) changed:"
        )
        for pattern in change.added:
            out.line(f"  + {pattern}   (now ignored)")
        for pattern in change.removed:
            out.line(f"  - {pattern}   (no longer ignored)")
    if click.confirm(
        "Accept these rules (they apply, and the file syncs)?", default=False
    ):
        session.accept_rules()


def _confirm(plan: Plan, out: Renderer, yes: bool) -> bool:
    """Ask before a first sync or past a guard; True when guards were overridden."""
    if plan.guards:
        if yes:
            raise _guard_error(plan)
        if not _can_ask():
            raise Aborted(
                "; ".join(plan.guards) + ": this needs a decision, and there is "
                "no terminal to ask; nothing was changed",
                hint="check with --dry-run; run from a terminal to be asked, or "
                "raise --max-delete / --max-delete-percent if this is intended "
                "(with --yes, guards still stop the run)",
            )
        if not click.confirm(
            "The plan trips a safety guard. Apply it anyway?", default=False
        ):
            raise Aborted("nothing was changed")
        return True
    if plan.first_sync and plan.changes and not yes:
        if not _can_ask():
            raise Aborted(
                "this is the first sync of this pair: check the plan above, then "
                "run again with --yes (or from a terminal to be asked); "
                "nothing was changed"
            )
        if not click.confirm("First sync of this pair. Apply this plan?", default=True):
            raise Aborted("nothing was changed")
    return False


def _guard_error(plan: Plan) -> Exception:
    from accord.errors import SafetyLimitExceeded

    return SafetyLimitExceeded(
        "; ".join(plan.guards) + "; nothing was changed",
        hint="check with --dry-run; raise --max-delete / --max-delete-percent "
        "if this is intended",
    )


def _settle_conflicts(plan: Plan, out: Renderer, yes: bool) -> Plan:
    """Ask the user about each conflict (policy 'ask'), when there is a terminal."""
    if not plan.conflicts or yes or not _can_ask():
        return plan
    for conflict in list(plan.conflicts):
        out.line(f"\nconflict: {escaped(conflict.key)} ({conflict.reason})")
        for label, entry in (("left", conflict.left), ("right", conflict.right)):
            if entry is not None:
                when = time.strftime(
                    "%Y-%m-%d %H:%M:%S", time.localtime(entry.mtime_ns / 1e9)
                )
                out.line(f"  {label:5}: {entry.kind}, {human_size(entry.size)}, {when}")
        choice = click.prompt(
            "  keep [l]eft, [r]ight, [b]oth, or [s]kip",
            default="b",
            type=click.Choice(["l", "r", "b", "s"]),
            show_choices=False,
        )
        name = {"l": "left", "r": "right", "b": "keep-both", "s": "skip"}[choice]
        plan = resolve(plan, conflict.key, name)
    return plan


def _exit_code(report: Report) -> int:
    if report.aborted or report.failed or report.skipped or report.refused:
        return EXIT["partial"]
    if report.conflicts:
        return EXIT["human"]
    return EXIT["ok"]


def _start(
    mode: str, first: str | None, second: str | None, opts: dict[str, Any]
) -> int:
    left, right, profile = _places(first, second, opts.pop("profile"))
    out = Renderer.choose(
        opts.pop("json_lines"), opts.pop("quiet"), opts.pop("verbose")
    )
    dry_run, yes = opts.pop("dry_run"), opts.pop("yes")
    exclude = [*profile.get("exclude", []), *opts.pop("exclude")]
    break_lock = opts.pop("break_lock")
    _use_endpoint(opts.pop("endpoint_url") or profile.get("endpoint_url"))
    hook = _fsdb_hook(opts, profile)
    left, right, implied = open_places(left, right, opts)
    policy = _policy(
        implied.pop("mode", profile.get("mode", mode)), profile, **opts, **implied
    )
    with Session(
        left,
        right,
        policy=policy,
        exclude=exclude,
        break_lock=break_lock,
        read_only=dry_run,
        command=mode,
        hook=hook,
    ) as session:
        return _execute(session, out, dry_run=dry_run, yes=yes)


def _profile_hook(profile: dict[str, Any]) -> FSDBHook:
    """The FSDB mode of a command that only looks (status, plan)."""
    fsdb = profile.get("fsdb")
    return FSDBHook(
        mode="auto" if fsdb is None else "on" if fsdb else "off",
        scans=profile.get("scans", []),
        scan_filter=profile.get("scan_filter"),
    )


def _fsdb_hook(opts: dict[str, Any], profile: dict[str, Any]) -> FSDBHook:
    """The FSDB mode from the options and the profile (auto by default)."""
    fsdb = opts.pop("fsdb")
    if fsdb is None:
        fsdb = profile.get("fsdb")
    timeout = opts.pop("lock_timeout")
    if timeout is None:
        timeout = profile.get("lock_timeout", 30.0)
    no_locks = opts.pop("no_scan_locks") or profile.get("scan_locks") is False
    return FSDBHook(
        mode="auto" if fsdb is None else "on" if fsdb else "off",
        scans=[*profile.get("scans", []), *opts.pop("scans")],
        scan_filter=opts.pop("scan_filter") or profile.get("scan_filter"),
        lock_timeout=float(timeout),
        scan_locks=not no_locks,
    )


@cli.command()
@click.argument("left", required=False)
@click.argument("right", required=False)
@click.option(
    "-c",
    "--conflict",
    "on_conflict",
    type=click.Choice(CONFLICT_RULES),
    default=None,
    help="What to do when both sides changed an item "
    "(default keep-both: the other version is kept as a conflict copy).",
)
@login_options
@run_options
@handle_errors
def sync(left: str | None, right: str | None, **opts: Any) -> None:
    """Two-way sync of LEFT and RIGHT (folders or URLs), or of a profile.

    Changes on either side since the last sync are carried to the other;
    an item changed on both sides is a conflict, settled by --conflict.
    Deleted and overwritten files go to the trash (accord trash list).

    \b
    accord sync ~/notes /mnt/backup/notes
    accord sync ~/notes /mnt/backup/notes --dry-run
    accord sync notes --yes                  # profile 'notes' from accord.toml
    accord sync A B --conflict newer --exclude '*.tmp'
    accord sync ~/notes 'syncml+https://host/sync?store=notes' \\
        --user me --password-env NOTES_PW [--mode slow]
    """
    raise Exit(_start("sync", left, right, opts))


@cli.command()
@click.argument("source", required=False)
@click.argument("target", required=False)
@click.option(
    "--delete",
    is_flag=True,
    default=None,
    help="Delete what is in TARGET but not in SOURCE (into TARGET's trash).",
)
@click.option(
    "--checksum",
    is_flag=True,
    default=None,
    help="Compare content digests, not size and mtime, on a first run.",
)
@run_options
@handle_errors
def mirror(source: str | None, target: str | None, **opts: Any) -> None:
    """Make TARGET like SOURCE, one way (like rsync -a).

    What TARGET changed is overwritten by SOURCE's version (the old one goes
    to the trash). Without --delete, extra items in TARGET are kept.

    \b
    accord mirror ~/photos /mnt/nas/photos
    accord mirror ~/site /srv/www --delete --exclude '.git/'
    accord mirror ./db sftp://lab/srv/db --fsdb --scan arabido_1
    accord mirror ./site s3://bucket/www --endpoint-url http://127.0.0.1:9000
    """
    raise Exit(_start("mirror", source, target, opts))


# -- looking -----------------------------------------------------------------


@cli.command()
@click.argument("left", required=False)
@click.argument("right", required=False)
@click.option("--why", is_flag=True, help="Give the reason for each action.")
@profile_option
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Ignore PATTERN too.")
@login_options
@output_options
@handle_errors
def status(
    left: str | None,
    right: str | None,
    why: bool,
    profile: str | None,
    exclude: tuple[str, ...],
    json_lines: bool,
    quiet: bool,
    verbose: int,
    **login: Any,
) -> None:
    """Pending changes on each side, and conflicts; changes nothing.

    Exit code 0 when both sides agree, 6 when changes are pending.

    \b
    accord status ~/notes /mnt/backup/notes --why
    """
    first, second, options = _places(left, right, profile)
    out = Renderer.choose(json_lines, quiet, max(verbose, 1))
    first_place, second_place, implied = open_places(first, second, login)
    mode = implied.pop("mode", options.get("mode", "sync"))
    policy = _policy(mode, options, **implied)
    with Session(
        first_place,
        second_place,
        policy=policy,
        read_only=True,
        exclude=[*options.get("exclude", []), *exclude],
        hook=_profile_hook(options),
    ) as session:
        plan = session.plan()
    for notice in session.notices:
        out.notice(notice)
    out.plan(plan, why=why)
    raise Exit(EXIT["pending"] if not plan.is_empty else EXIT["ok"])


@cli.command("plan")
@click.argument("left", required=False)
@click.argument("right", required=False)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    required=True,
    help="Where to save the plan (JSON).",
)
@click.option("--mirror", "as_mirror", is_flag=True, help="Plan a one-way mirror.")
@click.option("--delete", is_flag=True, help="With --mirror: delete extras.")
@click.option(
    "-c",
    "--conflict",
    "on_conflict",
    type=click.Choice(CONFLICT_RULES),
    default=None,
    help="Conflict rule (default keep-both).",
)
@profile_option
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Ignore PATTERN too.")
@output_options
@handle_errors
def plan_command(
    left: str | None,
    right: str | None,
    output: str,
    as_mirror: bool,
    delete: bool,
    on_conflict: str | None,
    profile: str | None,
    exclude: tuple[str, ...],
    json_lines: bool,
    quiet: bool,
    verbose: int,
) -> None:
    """Save what a sync would do, to review and apply later.

    \b
    accord plan ~/notes /mnt/backup/notes -o plan.json
    accord apply plan.json
    """
    first, second, options = _places(left, right, profile)
    out = Renderer.choose(json_lines, quiet, verbose)
    mode = "mirror" if as_mirror else options.get("mode", "sync")
    policy = _policy(mode, options, on_conflict=on_conflict, delete=delete)
    with Session(
        first,
        second,
        policy=policy,
        read_only=True,
        exclude=[*options.get("exclude", []), *exclude],
        hook=_profile_hook(options),
    ) as session:
        plan = session.plan()
    Path(output).write_text(plan.to_json(), encoding="utf-8")
    out.plan(plan)
    out.line(f"saved to {output}; apply it with: accord apply {output}")


@cli.command("apply")
@click.argument("plan_file", type=click.Path(exists=True, dir_okay=False))
@click.option("-y", "--yes", is_flag=True, help="Do not ask; guards still abort.")
@click.option("--break-lock", is_flag=True, help="Remove a lock left by a dead run.")
@output_options
@handle_errors
def apply_command(
    plan_file: str,
    yes: bool,
    break_lock: bool,
    json_lines: bool,
    quiet: bool,
    verbose: int,
) -> None:
    """Apply exactly a saved plan. Actions whose item changed since are skipped.

    A file saved by 'accord records plan -o' holds one plan per pair of
    record places; they are applied in order.

    \b
    accord apply plan.json
    """
    out = Renderer.choose(json_lines, quiet, verbose)
    plans = _load_plans(plan_file)
    worst = EXIT["ok"]
    for plan in plans:
        if not plan.actions:
            continue
        policy = Policy(mode=plan.mode)
        with Session(
            plan.left,
            plan.right,
            policy=policy,
            break_lock=break_lock,
            command="apply",
            hook=FSDBHook(),
        ) as session:
            override = _confirm(plan, out, yes)
            with out.progress(plan) as on_event:
                report = session.apply(
                    plan, on_event=on_event, override_guards=override
                )
        out.report(report)
        worst = max(worst, _exit_code(report))
    raise Exit(worst)


def _load_plans(plan_file: str) -> list[Plan]:
    """The plans saved in ``plan_file``, or NotAPlan naming the file."""
    data = Path(plan_file).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = ""  # not JSON: Plan.from_json says so
    plans = plans_from_json(text, source=plan_file)
    for plan in plans:
        if not plan.left or not plan.right:
            raise NotAPlan(
                f"{plan_file} is not an accord plan: it does not name its two places",
                hint="make one with 'accord plan A B -o plan.json'",
            )
    return plans


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
    first, second = _places(left, right, profile)[:2]
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
    first, second = (open_replica(p) for p in _places(left, right, profile)[:2])
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
    if not _can_ask():
        raise Aborted("reset needs a confirmation: run again with --yes")
    if not click.confirm(question, default=False):
        raise Aborted("nothing was changed")


# -- trash ---------------------------------------------------------------------


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
    click.echo(
        f"restored {escaped(entry.key)} ({human_size(entry.size)}) from run {item.run}"
    )
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
        if not _can_ask():
            raise Aborted("purging needs a confirmation: run again with --yes")
        if not click.confirm(
            f"Delete {len(runs)} trash runs of {replica.url} for good?", default=False
        ):
            raise Aborted("nothing was deleted")
    count = sum(replica.trash_purge(run) for run in runs)
    click.echo(f"purged {count} items from {len(runs)} runs")
    replica.close()
