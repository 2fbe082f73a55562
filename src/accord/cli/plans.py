"""Looking before a run: ``accord status``, ``accord plan`` (a plan saved to
a file) and ``accord apply`` (exactly that plan, later).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from accord.cli import EXIT, Exit, cli, handle_errors
from accord.cli.options import (
    endpoint_url_option,
    output_options,
    policy_from,
    profile_endpoint,
    profile_hook,
    profile_option,
    two_places,
)
from accord.cli.places import login_options, open_places
from accord.cli.render import Renderer
from accord.cli.run import confirm_plan, exit_code, preview_code
from accord.engine.plan import Plan, plans_from_json
from accord.engine.policy import CONFLICT_RULES, Policy
from accord.engine.session import Session
from accord.errors import NotAPlan
from accord.fsdb.hook import FSDBHook

__all__ = ["apply_command", "plan_command", "status"]


@cli.command()
@click.argument("left", required=False)
@click.argument("right", required=False)
@click.option("--why", is_flag=True, help="Give the reason for each action.")
@profile_option
@endpoint_url_option
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

    Exit code 0 when both sides agree, 6 when changes are pending, 3
    when nothing is pending but something could not be listed or read.

    \b
    accord status ~/notes /mnt/backup/notes --why
    """
    first, second, options = two_places(left, right, profile)
    profile_endpoint(options)
    out = Renderer.choose(json_lines, quiet, max(verbose, 1))
    first_place, second_place, implied = open_places(first, second, login)
    mode = implied.pop("mode", options.get("mode", "sync"))
    policy = policy_from(mode, options, **implied)
    plan, notices = _look(first_place, second_place, policy, options, exclude)
    for notice in notices:
        out.notice(notice)
    out.plan(plan, why=why)
    raise Exit(preview_code(plan))


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
@endpoint_url_option
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
    first, second, options = two_places(left, right, profile)
    profile_endpoint(options)
    out = Renderer.choose(json_lines, quiet, verbose)
    mode = "mirror" if as_mirror else options.get("mode", "sync")
    policy = policy_from(mode, options, on_conflict=on_conflict, delete=delete)
    plan, _ = _look(first, second, policy, options, exclude)
    Path(output).write_text(plan.to_json(), encoding="utf-8")
    out.plan(plan)
    out.line(f"saved to {output}; apply it with: accord apply {output}")


def _look(
    first: Any,
    second: Any,
    policy: Policy,
    options: dict[str, Any],
    exclude: tuple[str, ...],
) -> tuple[Plan, list[str]]:
    """The plan of a read-only session (``status``, ``plan``), and its notices."""
    with Session(
        first,
        second,
        policy=policy,
        read_only=True,
        exclude=[*options.get("exclude", []), *exclude],
        hook=profile_hook(options),
    ) as session:
        plan = session.plan()
    return plan, session.notices


@cli.command("apply")
@click.argument("plan_file", type=click.Path(exists=True, dir_okay=False))
@click.option("-y", "--yes", is_flag=True, help="Do not ask; guards still abort.")
@click.option("--break-lock", is_flag=True, help="Remove a lock left by a dead run.")
@endpoint_url_option
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
    """Apply exactly a saved plan. Actions whose item changed or went since
    are skipped. The places are opened with the URLs the plan was made
    with, options and all (an SFTP identity file; never a password).

    A first sync of a pair, or a plan past a safety guard, is shown and
    asked about first; with no terminal it is refused (--yes applies a
    first sync, never a plan past a guard).

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
            plan.open_url("left"),
            plan.open_url("right"),
            policy=policy,
            break_lock=break_lock,
            command="apply",
            hook=FSDBHook(),
        ) as session:
            if plan.first_sync or plan.guards or out.verbose:
                # what the question (or the refusal) that follows is about
                out.plan(plan, why=out.verbose > 1)
            override = confirm_plan(plan, out, yes)
            with out.progress(plan) as on_event:
                report = session.apply(
                    plan, on_event=on_event, override_guards=override
                )
        out.report(report)
        worst = max(worst, exit_code(report))
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
