"""Plan and apply a mapping file: each entity's source and each target,
as a pair of record places synced by the engine.

    prepared = make_plan(load_mapping("mapping.toml"))   # reads, checks, plans
    print(prepared.plan.summary())                       # field by field
    report = apply_plan(prepared)                        # the engine applies

A one-way entity is a mirror from its source (as the target sees it) into
each target, deleting what the source no longer has unless told not to; a
two-way entity is a sync of its source and its one target, merged field by
field. Each pair is an engine session: its plan is an engine plan (saved
with ``accord records plan -o``, applied with ``accord apply``), applied
with the journal, recorded in the archive and in ``accord log``, deleted
and overwritten records kept in the place's trash, guards as for files.
This module only builds the pairs and shows their plans as records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accord.engine import columns
from accord.engine.plan import Action, Plan
from accord.engine.policy import Policy
from accord.engine.session import Session
from accord.errors import BadData, ConfigError, ReplicaError, SafetyLimitExceeded
from accord.model import Side
from accord.records.mapping import Entity, Mapping
from accord.records.plan import RecordAction, RecordPlan
from accord.records.replica import RecordReplica
from accord.records.rules import changes_under
from accord.records.twoway import merge_fields
from accord.state.store import ArchiveStore

__all__ = ["Pair", "Prepared", "RecordReport", "apply_plan", "make_plan", "pairs"]


@dataclass
class Pair:
    """One entity's source and one of its targets, and their engine plan."""

    entity: Entity
    target: int
    policy: Policy
    plan: Plan | None = None
    state_dir: Path | None = None
    mapping: Mapping | None = None

    def places(self, keep_going: bool = False) -> tuple[RecordReplica, RecordReplica]:
        assert self.mapping is not None
        role = "source" if self.entity.mode == "two-way" else "view"
        return (
            RecordReplica(
                self.mapping, self.entity, self.target, role, state_dir=self.state_dir
            ),
            RecordReplica(
                self.mapping,
                self.entity,
                self.target,
                "target",
                keep_going=keep_going,
                state_dir=self.state_dir,
            ),
        )


@dataclass
class RecordReport:
    done: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[RecordAction, str]] = field(default_factory=list)
    failed: list[tuple[RecordAction, str]] = field(default_factory=list)
    handled: int = 0  # actions a handler did itself
    runs: list[str] = field(default_factory=list)  # the engine's run ids

    @property
    def ok(self) -> bool:
        return not self.skipped and not self.failed


@dataclass
class Prepared:
    plan: RecordPlan
    pairs: list[Pair]
    handlers: dict[str, Any] = field(default_factory=dict)  # entity -> handler
    views: dict[int, dict[tuple[str, str | None], RecordAction]] = field(
        default_factory=dict
    )  # pair -> (engine key, side) -> the record action shown


def pairs(
    mapping: Mapping,
    *,
    only: list[str] | None = None,
    delete: bool = True,
    max_delete_percent: float = 50.0,
    state_dir: Path | None = None,
    allow_empty: bool = False,
) -> list[Pair]:
    """The pairs a mapping names, each with the engine policy it runs under."""
    unknown = [name for name in only or [] if name not in mapping.entities]
    if unknown:
        raise ConfigError(
            f"no entity {', '.join(unknown)} in {mapping.path}",
            hint="entities: " + ", ".join(mapping.entities),
        )
    found = []
    for name, entity in mapping.entities.items():
        if only and name not in only:
            continue
        if entity.mode == "two-way":
            policy = Policy(
                mode="sync",
                max_delete=10,
                max_delete_percent=max_delete_percent,
                allow_empty=allow_empty,
            )
            found.append(Pair(entity, 0, policy, state_dir=state_dir, mapping=mapping))
            continue
        for index in range(len(entity.targets)):
            policy = Policy(
                mode="mirror",
                delete=delete,
                max_delete=10,
                max_delete_percent=max_delete_percent,
                allow_empty=allow_empty or not delete,  # no deletions: no harm
            )
            found.append(
                Pair(entity, index, policy, state_dir=state_dir, mapping=mapping)
            )
    return found


def make_plan(
    mapping: Mapping,
    *,
    only: list[str] | None = None,
    delete: bool = True,
    max_delete_percent: float = 50.0,
    state_dir: Path | None = None,
    allow_empty: bool = False,
) -> Prepared:
    """Read every source and target, check them, and plan every pair
    (nothing is written: a bad row anywhere stops before the first write)."""
    found = pairs(
        mapping,
        only=only,
        delete=delete,
        max_delete_percent=max_delete_percent,
        state_dir=state_dir,
        allow_empty=allow_empty,
    )
    prepared = Prepared(RecordPlan(), found)
    for number, pair in enumerate(found):
        left, right = pair.places()
        with Session(
            left,
            right,
            policy=pair.policy,
            state_dir=state_dir,
            read_only=True,
            command="records plan",
        ) as session:
            pair.plan = session.plan()
            views = _views(pair, pair.plan, left, right, session.archive)
            problems = right.place.check(
                [v for (_, side), v in views.items() if side == "right"]
            ) + left.place.check(
                [v for (_, side), v in views.items() if side == "left"]
            )
            if problems:
                raise BadData(right.label, problems)
            prepared.views[number] = views
            prepared.plan.actions += views.values()
            prepared.plan.guards += [
                f"{pair.entity.name} -> {right.label}: {g}" for g in pair.plan.guards
            ]
            prepared.plan.conflicts += _conflicts(
                pair, pair.plan, left, session.archive
            )
            prepared.handlers.setdefault(pair.entity.name, right.handler)
        prepared.plan.places.append((pair.entity.name, right.label))
    return prepared


def _views(
    pair: Pair, plan: Plan, left: RecordReplica, right: RecordReplica, archive: Any
) -> dict[tuple[str, str | None], RecordAction]:
    """The plan's actions as records, field by field (what a person reads)."""
    views: dict[tuple[str, str | None], RecordAction] = {}
    name = pair.entity.name
    for action in plan.actions:
        if action.side is None or action.op not in ("copy", "delete", "merge"):
            continue
        place = left if action.side is Side.LEFT else right
        key = place.key_of(action.key)
        before = place.record_of(action.expect.version if action.expect else None)
        if action.op == "delete":
            view = RecordAction("delete", name, place.label, key, before, None)
        elif before is None:
            after = place.record_of(action.entry.version if action.entry else None)
            view = RecordAction("create", name, place.label, key, None, after)
        else:
            assert action.entry is not None
            wanted = place.record_of(action.entry.version) or {}
            changes = changes_under(wanted, before, place.rules)
            if not changes:
                continue
            view = RecordAction("update", name, place.label, key, before, changes)
        views[(action.key, action.side.value)] = view
        if action.op == "merge" and action.other is not None:
            other = right if place is left else left
            now = other.record_of(action.other.version) or {}
            wanted = (
                other.record_of(action.entry.version if action.entry else None) or {}
            )
            changes = {n: v for n, v in wanted.items() if now.get(n) != v}
            if changes:
                side = action.side.other.value
                views[(action.key, side)] = RecordAction(
                    "update", name, other.label, key, now, changes
                )
    return views


def _conflicts(
    pair: Pair, plan: Plan, left: RecordReplica, archive: Any
) -> list[tuple[str, tuple[Any, ...], list[str]]]:
    found = []
    for conflict in plan.conflicts:
        if conflict.left is None or conflict.right is None:
            continue
        base = archive.get(conflict.key) if archive else None
        old = left.record_of(base.digest) if base is not None and base.digest else {}
        lv = left.record_of(conflict.left.version) or {}
        rv = left.record_of(conflict.right.version) or {}
        clashes = merge_fields(old or {}, lv, rv, "skip").conflicts
        found.append((pair.entity.name, left.key_of(conflict.key), clashes))
    return found


def apply_plan(
    prepared: Prepared, *, override_guards: bool = False, keep_going: bool = False
) -> RecordReport:
    """Apply every pair's plan with the engine: creates and updates, then
    deletes, each stating what it expects to replace. Guards are checked
    for every pair before anything is written."""
    guarded = [p for p in prepared.pairs if p.plan is not None and p.plan.guards]
    if guarded and not override_guards:
        raise SafetyLimitExceeded(
            "; ".join(prepared.plan.guards) + "; nothing was changed",
            hint="check the source; run with --no-delete to apply the rest, or "
            "raise --max-delete-percent",
        )
    report = RecordReport()
    refused: list[ReplicaError] = []
    for number, pair in enumerate(prepared.pairs):
        plan = pair.plan
        if plan is None or not (
            plan.actions or plan.agreed or any(plan.refresh.values())
        ):
            continue
        left, right = pair.places(keep_going)
        left.handler = right.handler = prepared.handlers.get(pair.entity.name)
        with Session(
            left,
            right,
            policy=pair.policy,
            state_dir=pair.state_dir,
            command="records sync",
        ) as session:
            done = session.apply(plan, override_guards=override_guards)
            if session.store is not None:
                _kept_for_next_plan(session.store, left, right)
        report.runs.append(done.run)
        report.handled += left.handled + right.handled
        _tally(report, pair, done, prepared.views.get(number, {}), (left, right))
        for place in (left, right):
            if getattr(place.place, "_refusal", None) is not None:
                refused.append(place.place._refused_error())
    if refused and not keep_going:
        raise refused[0]
    return report


def _kept_for_next_plan(
    store: ArchiveStore, left: RecordReplica, right: RecordReplica
) -> None:
    """What the next plan maps instead of reading it again: the archive's
    versions, and which sides hold exactly them (docs/architecture.md)."""
    if not all(r.capabilities.listed_columns for r in (left, right)):
        return
    if store.keep_version_columns():
        kept = {Side.LEFT: left.kept_columns(), Side.RIGHT: right.kept_columns()}
        columns.vouch(store, kept)


def _tally(
    report: RecordReport,
    pair: Pair,
    done: Any,
    views: dict[tuple[str, str | None], RecordAction],
    places: tuple[RecordReplica, RecordReplica],
) -> None:
    """The engine's outcomes, counted and listed as records."""
    for outcome in done.outcomes:
        action: Action = outcome.action
        if action.side is None:
            continue
        view = views.get((action.key, action.side.value))
        if view is None:
            place = places[0] if action.side is Side.LEFT else places[1]
            op = "delete" if action.op == "delete" else "update"
            view = RecordAction(
                op, pair.entity.name, place.label, place.key_of(action.key), None, None
            )
        name = f"{view.entity} -> {view.target}: {view.op}"
        if outcome.status == "done":
            report.done[name] = report.done.get(name, 0) + 1
        elif outcome.status == "skipped":
            report.skipped.append((view, outcome.message))
        else:
            report.failed.append((view, outcome.message or "not run"))
