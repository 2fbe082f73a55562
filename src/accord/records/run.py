"""Plan and apply a mapping: read, reconcile, guard, write."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accord.errors import ConfigError
from accord.records.handlers import load_handler
from accord.records.mapping import Entity, Mapping, PlaceSpec
from accord.records.places import DataError, open_place
from accord.records.plan import RecordAction, RecordPlan
from accord.records.reconcile import reconcile_rows, target_view
from accord.records.values import BadValue

__all__ = ["RecordReport", "apply_plan", "make_plan"]


@dataclass
class RecordReport:
    done: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[RecordAction, str]] = field(default_factory=list)
    failed: list[tuple[RecordAction, str]] = field(default_factory=list)
    handled: int = 0  # actions a handler did itself

    @property
    def ok(self) -> bool:
        return not self.skipped and not self.failed


@dataclass
class Prepared:
    plan: RecordPlan
    places: dict[tuple[str, str], Any]  # (entity, target label) -> place
    handlers: dict[str, Any] = field(default_factory=dict)  # entity -> handler
    # two-way entities: (name, archive, decision) to record once applied
    archives: list[tuple[str, Any, Any]] = field(default_factory=list)


def make_plan(
    mapping: Mapping,
    *,
    only: list[str] | None = None,
    delete: bool = True,
    max_delete_percent: float = 50.0,
    state_dir: Path | None = None,
) -> Prepared:
    """Read every source and target and reconcile them (nothing is written)."""
    unknown = [name for name in only or [] if name not in mapping.entities]
    if unknown:
        raise ConfigError(
            f"no entity {', '.join(unknown)} in {mapping.path}",
            hint="entities: " + ", ".join(mapping.entities),
        )
    plan = RecordPlan()
    places: dict[tuple[str, str], Any] = {}
    handlers: dict[str, Any] = {}
    archives: list[tuple[str, Any, Any]] = []
    for name, entity in mapping.entities.items():
        if only and name not in only:
            continue
        handlers[name] = load_handler(entity.handler, mapping.path.parent)
        if entity.mode == "two-way":
            archives.append((name, *_two_way(mapping, entity, plan, places, state_dir)))
            continue
        source = open_place(entity.source, entity, entity.fields).read_rows()
        for target in entity.targets:
            place = open_place(target, entity, entity.target_fields(target))
            places[(name, target.label)] = place
            current = place.read_rows()
            try:
                wanted = target_view(entity, target, source)
            except (ValueError, BadValue) as exc:
                raise ConfigError(f"{entity.name} -> {target.label}: {exc}") from None
            actions = reconcile_rows(entity, target, wanted, current, delete=delete)
            problems = place.check(actions)
            if problems:
                raise DataError(target.label, problems)
            plan.guards += _guards(
                entity, target, source, current, actions, max_delete_percent
            )
            plan.actions += actions
    return Prepared(plan, places, handlers, archives)


def _two_way(
    mapping: Mapping,
    entity: Entity,
    plan: RecordPlan,
    places: dict[tuple[str, str], Any],
    state_dir: Path | None,
) -> tuple[Any, Any]:
    """Read both places and the archive; a field-level three-way plan."""
    from accord.records.twoway import RecordArchive, reconcile_two_way
    from accord.state.store import default_state_dir

    source, target = entity.source, entity.targets[0]
    left = open_place(source, entity, entity.fields)
    right = open_place(target, entity, entity.fields)
    places[(entity.name, source.label)] = left
    places[(entity.name, target.label)] = right
    archive = RecordArchive(
        state_dir or default_state_dir(),
        str(mapping.path.resolve()),
        entity.name,
        source.label,
        target.label,
    )
    base = archive.load(entity.types, entity.key)
    decision = reconcile_two_way(
        entity.name,
        (source.label, target.label),
        base,
        left.read(),
        right.read(),
        entity.conflict,
    )
    plan.actions += decision.actions
    plan.conflicts += [(entity.name, key, names) for key, names in decision.conflicts]
    if not decision.actions:  # nothing to write: agree now
        archive.save(decision.agreed, decision.forget)
    return archive, decision


def _guards(
    entity: Entity,
    target: PlaceSpec,
    source: dict,
    current: dict,
    actions: list[RecordAction],
    percent: float,
) -> list[str]:
    deletes = sum(1 for a in actions if a.op == "delete")
    if not deletes:
        return []
    if not source:
        return [
            f"{entity.name}: the source ({entity.source.label}) came back empty; "
            f"it would delete all {deletes} records of {target.label}"
        ]
    share = 100.0 * deletes / max(len(current), 1)
    if share > percent and deletes > 10:
        return [
            f"{entity.name}: {deletes} of {len(current)} records of {target.label} "
            f"would be deleted ({share:.0f}%, the limit is {percent:g}%)"
        ]
    return []


def apply_plan(
    prepared: Prepared, *, override_guards: bool = False, keep_going: bool = False
) -> RecordReport:
    """Write the plan, target by target: creates and updates, then deletes
    (a separate phase, refused while a guard stands)."""
    plan = prepared.plan
    if plan.guards and not override_guards:
        from accord.errors import SafetyLimitExceeded

        raise SafetyLimitExceeded(
            "; ".join(plan.guards) + "; nothing was written",
            hint="check the source; run with --no-delete to apply the rest, or "
            "raise --max-delete-percent",
        )
    report = RecordReport()
    for place in prepared.places.values():
        place.keep_going = keep_going
    try:
        _apply_places(prepared, report)
    finally:
        _save_archives(prepared, report)
    return report


def _save_archives(prepared: Prepared, report: RecordReport) -> None:
    """Advance each two-way archive for the records that were written."""
    failed = {(a.entity, a.key) for a, _ in report.skipped + report.failed}
    for name, archive, decision in prepared.archives:
        agreed = {
            key: record
            for key, record in decision.agreed.items()
            if (name, key) not in failed
        }
        archive.save(agreed, decision.forget)
        archive.close()


def _apply_places(prepared: Prepared, report: RecordReport) -> None:
    plan = prepared.plan
    for (entity, label), place in prepared.places.items():
        actions = plan.of(entity, label)
        if not actions:
            continue
        handler = prepared.handlers.get(entity)
        actions = _through_handler(handler, actions, report)
        by_key = {a.key: a for a in actions}
        creates = [a.after for a in actions if a.op == "create"]
        updates = [(a.key, a.before, a.after) for a in actions if a.op == "update"]
        deletes = [(a.key, a.before) for a in actions if a.op == "delete"]
        skipped = place.apply(creates, updates, deletes)
        for key, why in skipped:
            if why.startswith("failed: "):
                report.failed.append((by_key[key], why[len("failed: ") :]))
            else:
                report.skipped.append((by_key[key], why))
            _tell_failed(handler, by_key[key], why)
        for op in ("create", "update", "delete"):
            count = sum(1 for a in actions if a.op == op)
            count -= sum(
                1
                for a, _ in report.skipped + report.failed
                if a.op == op and a.target == label and a.entity == entity
            )
            report.done[f"{entity} -> {label}: {op}"] = max(count, 0)


def _through_handler(
    handler: Any, actions: list[RecordAction], report: RecordReport
) -> list[RecordAction]:
    """Call the handler for each action; what it leaves for the default write."""
    if handler is None:
        return actions
    remaining = []
    for action in actions:
        method = getattr(handler, action.op, None)
        try:
            outcome = method(action) if method else None
        except Exception as exc:  # a site's code: any failure is that record's
            reason = f"the handler failed: {type(exc).__name__}: {exc}"
            report.failed.append((action, reason))
            _tell_failed(handler, action, reason)
            continue
        if outcome == "handled":
            report.handled += 1
        else:
            remaining.append(action)
    return remaining


def _tell_failed(handler: Any, action: RecordAction, reason: str) -> None:
    method = getattr(handler, "failed", None) if handler is not None else None
    if method is not None:
        with contextlib.suppress(Exception):  # reporting must not fail the run
            method(action, reason)
