"""``accord records``: plan and sync keyed records (CSV, SQL, LDAP)."""

from __future__ import annotations

from typing import Any

import click

from accord.cli import EXIT, Exit, cli, handle_errors

__all__ = ["records"]


@cli.group()
def records() -> None:
    """Keyed records from a source of truth into targets (CSV, SQL, LDAP).

    Each source and target is a place of the engine: plans can be saved and
    applied (accord apply), runs show in accord log, deleted and overwritten
    records stay in the target's trash (accord trash).

    \b
    accord records plan  mapping.toml
    accord records sync  mapping.toml --yes
    accord records sync  mapping.toml --only teachers --no-delete
    accord records plan  mapping.toml -o plan.json && accord apply plan.json
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
    for entity, label in plan.places:
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
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Save the plan to apply later with 'accord apply FILE' (actions "
    "whose record changed since are skipped).",
)
@handle_errors
def plan_command(
    mapping: str,
    only: tuple[str, ...],
    no_delete: bool,
    max_delete_percent: float,
    json_out: bool,
    output: str | None,
) -> None:
    """What a sync would change, per entity and target, field by field.

    Exit code 0 when every target agrees, 6 when changes are pending.

    \b
    accord records plan mapping.toml
    accord records plan mapping.toml --json > changes.json
    accord records plan mapping.toml -o plan.json && accord apply plan.json
    """
    prepared = _prepare(mapping, only, no_delete, max_delete_percent)
    _show(prepared, json_out)
    if output:
        from pathlib import Path

        from accord.engine.plan import plan_set_json

        plans = [p.plan for p in prepared.pairs if p.plan is not None]
        Path(output).write_text(plan_set_json(plans), encoding="utf-8")
        click.echo(f"saved to {output}; apply it with: accord apply {output}")
    raise Exit(EXIT["pending"] if not prepared.plan.is_empty else EXIT["ok"])


@records.command("sync")
@_options
@click.option("-y", "--yes", is_flag=True, help="Apply without asking.")
@click.option(
    "--keep-going",
    is_flag=True,
    help="When a table refuses a record, report it and write the others "
    "(default: stop, rolling back that table's changes not yet committed).",
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
        apply_plan(prepared)  # records the agreement of a first sync, if any
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
    if any(a.op != "create" for a in prepared.plan.actions) and report.done:
        click.echo(
            "replaced and deleted records are kept in each target's trash "
            "(accord trash list 'records://...'); runs: accord log"
        )
    raise Exit(EXIT["ok"] if report.ok else EXIT["partial"])
