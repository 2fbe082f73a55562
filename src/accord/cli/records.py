"""``accord records``: plan and sync keyed records (CSV, SQL)."""

from __future__ import annotations

from typing import Any

import click

from accord.cli import EXIT, Exit, cli, handle_errors

__all__ = ["records"]


@cli.group()
def records() -> None:
    """Keyed records from a source of truth into targets (CSV, SQL).

    \b
    accord records plan  mapping.toml
    accord records sync  mapping.toml --yes
    accord records sync  mapping.toml --only teachers --no-delete
    """


def _options(func: Any) -> Any:
    for option in reversed(
        [
            click.argument("mapping", type=click.Path(dir_okay=False)),
            click.option(
                "--only",
                multiple=True,
                metavar="ENTITY",
                help="Only this entity (repeatable).",
            ),
            click.option(
                "--no-delete",
                is_flag=True,
                help="Create and update only; never delete.",
            ),
            click.option(
                "--max-delete-percent",
                type=float,
                default=50.0,
                show_default=True,
                metavar="P",
                help="Refuse to delete more than P% of a target.",
            ),
            click.option(
                "--json",
                "json_out",
                is_flag=True,
                help="The plan as JSON (for scripts).",
            ),
        ]
    ):
        func = option(func)
    return func


def _prepare(
    mapping: str, only: tuple[str, ...], no_delete: bool, max_delete_percent: float
) -> Any:
    from accord.records import load_mapping, make_plan

    return make_plan(
        load_mapping(mapping),
        only=list(only) or None,
        delete=not no_delete,
        max_delete_percent=max_delete_percent,
    )


def _show(prepared: Any, json_out: bool) -> None:
    plan = prepared.plan
    if json_out:
        click.echo(plan.to_json())
        return
    for (entity, label), _ in prepared.places.items():
        actions = plan.of(entity, label)
        counts = {
            op: len(plan.of(entity, label, op)) for op in ("create", "update", "delete")
        }
        click.echo(
            f"{entity} -> {label}: {counts['create']} to create, "
            f"{counts['update']} to update, {counts['delete']} to delete"
        )
        for action in actions:
            for line in action.describe():
                click.echo(f"  {line}")
    for entity, key, fields in plan.conflicts:
        shown = "/".join(str(part) for part in key)
        click.echo(
            f"conflict: {entity} {shown}: {', '.join(fields)} changed differently "
            "on both sides; left for a person (or set conflict = left/right)"
        )
    for guard in plan.guards:
        click.echo(f"guard: {guard}", err=True)


@records.command("plan")
@_options
@handle_errors
def plan_command(
    mapping: str,
    only: tuple[str, ...],
    no_delete: bool,
    max_delete_percent: float,
    json_out: bool,
) -> None:
    """What a sync would change, per entity and target, field by field.

    Exit code 0 when every target agrees, 6 when changes are pending.

    \b
    accord records plan mapping.toml
    accord records plan mapping.toml --json > plan.json
    """
    prepared = _prepare(mapping, only, no_delete, max_delete_percent)
    _show(prepared, json_out)
    raise Exit(EXIT["pending"] if not prepared.plan.is_empty else EXIT["ok"])


@records.command("sync")
@_options
@click.option("-y", "--yes", is_flag=True, help="Apply without asking.")
@click.option(
    "--keep-going",
    is_flag=True,
    help="When a table refuses a batch, write its records one by one and "
    "report the ones refused (default: write nothing to that table).",
)
@handle_errors
def sync_command(
    mapping: str,
    only: tuple[str, ...],
    no_delete: bool,
    max_delete_percent: float,
    json_out: bool,
    yes: bool,
    keep_going: bool,
) -> None:
    """Make every target agree with the source: create, update, then delete.

    Shows the plan and asks (or applies with --yes). Nothing is written when
    the data has errors; deletions stop at a guard (an empty source, or more
    than --max-delete-percent of a target).

    \b
    accord records sync mapping.toml --yes
    accord records sync mapping.toml --only teachers --no-delete
    accord records sync mapping.toml --yes --keep-going
    """
    import sys

    from accord.errors import Aborted
    from accord.records import apply_plan

    prepared = _prepare(mapping, only, no_delete, max_delete_percent)
    _show(prepared, json_out)
    if prepared.plan.is_empty:
        click.echo("nothing to do: every target agrees with the source")
        raise Exit(EXIT["ok"])
    if not yes:
        if not sys.stdin.isatty():
            raise Aborted("check the plan above, then run again with --yes")
        if not click.confirm("Apply these changes?", default=False):
            raise Aborted("nothing was changed")
    report = apply_plan(prepared, keep_going=keep_going)
    for name, count in report.done.items():
        if count:
            click.echo(f"done: {name} {count}")
    if report.handled:
        click.echo(f"done by handlers: {report.handled}")
    for action, why in report.failed:
        click.echo(
            f"failed: {action.entity} {'/'.join(map(str, action.key))}: {why}",
            err=True,
        )
    for action, why in report.skipped:
        click.echo(
            f"skipped: {action.entity} {'/'.join(map(str, action.key))}: {why}",
            err=True,
        )
    raise Exit(EXIT["ok"] if report.ok else EXIT["partial"])
