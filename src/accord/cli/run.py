"""``accord sync`` and ``accord mirror``: plan, show, confirm, apply, report."""

from __future__ import annotations

import time
from typing import Any

import click

from accord.cli import EXIT, Exit, cli, handle_errors
from accord.cli.options import (
    can_ask,
    fsdb_hook,
    policy_from,
    profile_endpoint,
    run_options,
    two_places,
)
from accord.cli.places import login_options, open_places
from accord.cli.render import Renderer, human_size
from accord.cli.shared import told_to_hubs
from accord.engine.plan import Plan
from accord.engine.policy import CONFLICT_RULES
from accord.engine.reconcile import resolve
from accord.engine.report import Report
from accord.engine.session import Session
from accord.errors import Aborted
from accord.keys import shown as escaped

__all__ = ["confirm_plan", "exit_code", "mirror", "preview_code", "sync"]


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
        return preview_code(plan)
    if plan.is_empty and not plan.unsynced:
        if any(plan.refresh.values()) or plan.agreed or session.hook.pending():
            session.apply(plan)
        out.plan(plan)
        return EXIT["ok"]
    show_all = plan.first_sync or plan.guards or out.verbose or plan.conflicts
    if show_all:
        out.plan(plan, why=out.verbose > 1)
    plan = _settle_conflicts(plan, out, yes)
    override = confirm_plan(plan, out, yes)
    with (
        out.progress(plan) as shown_here,
        told_to_hubs(session, plan, shown_here) as on_event,
    ):
        report = session.apply(plan, on_event=on_event, override_guards=override)
    out.report(report, shown=shown)
    return exit_code(report)


def _ask_about_rules(
    session: Session, out: Renderer, *, dry_run: bool, yes: bool
) -> None:
    """A changed ``.accordignore``: ask on a terminal whether its rules apply
    (never with --yes or in a dry run: it is held back and reported)."""
    if not session.rule_changes or session.policy.accept_rules:
        return
    if dry_run or yes or not can_ask():
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


def confirm_plan(plan: Plan, out: Renderer, yes: bool) -> bool:
    """Ask before a first sync or past a guard; True when guards were overridden."""
    if plan.guards:
        if yes:
            raise _guard_error(plan)
        if not can_ask():
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
        if not can_ask():
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
    if not plan.conflicts or yes or not can_ask():
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


def preview_code(plan: Plan) -> int:
    """The exit code of a look that changes nothing (``status``,
    ``--dry-run``): 6 with changes pending; 3 when nothing is pending but
    something could not be listed, read or accepted (whether it agrees is
    not known: a run would end as partial too); 0 in agreement."""
    if not plan.is_empty:
        return EXIT["pending"]
    if plan.unsynced:
        return EXIT["partial"]
    return EXIT["ok"]


def exit_code(report: Report) -> int:
    if report.aborted or report.failed or report.skipped or report.unsynced:
        return EXIT["partial"]
    if report.conflicts:
        return EXIT["human"]
    return EXIT["ok"]


def _start(
    mode: str, first: str | None, second: str | None, opts: dict[str, Any]
) -> int:
    left, right, profile = two_places(first, second, opts.pop("profile"))
    out = Renderer.choose(
        opts.pop("json_lines"), opts.pop("quiet"), opts.pop("verbose")
    )
    dry_run, yes = opts.pop("dry_run"), opts.pop("yes")
    exclude = [*profile.get("exclude", []), *opts.pop("exclude")]
    break_lock = opts.pop("break_lock")
    profile_endpoint(profile)
    hook = fsdb_hook(opts, profile)
    left, right, implied = open_places(left, right, opts)
    policy = policy_from(
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
