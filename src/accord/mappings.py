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

from collections import abc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

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

__all__ = [
    "Pair",
    "Prepared",
    "RecordReport",
    "Views",
    "apply_plan",
    "make_plan",
    "pairs",
]


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
    views: dict[int, Views] = field(
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
            views = _views(pair, pair.plan, left, right)
            problems = right.place.check(views.on(Side.RIGHT)) + left.place.check(
                views.on(Side.LEFT)
            )
            if problems:
                raise BadData(right.label, problems)
            prepared.views[number] = views
            prepared.plan.add(views)
            prepared.plan.guards += [
                f"{pair.entity.name} -> {right.label}: {g}" for g in pair.plan.guards
            ]
            prepared.plan.conflicts += _conflicts(
                pair, pair.plan, left, session.archive
            )
            prepared.handlers.setdefault(pair.entity.name, right.handler)
        prepared.plan.places.append((pair.entity.name, right.label))
    return prepared


class _Later(NamedTuple):
    """A record action not made yet: what it is, and where it comes from."""

    op: str
    entity: str
    target: str
    action: Action
    place: RecordReplica

    def made(self) -> RecordAction:
        """The record action, field by field (``_view``)."""
        return _view(self.op, self.entity, self.action, self.place)


class Views(abc.Mapping[tuple[str, str | None], RecordAction]):
    """The plan's actions as records, by (engine key, side), in plan order.
    Which actions are records, and their op and target, are known when the
    plan is made; each record action (its key and records as Python
    values, the fields an update sets) is made when it is first read: to
    show it, check it, or count it as done. A plan of a million records
    that shows only its summary makes none."""

    def __init__(self) -> None:
        self._keys: list[tuple[str, str | None]] = []
        self._items: list[RecordAction | _Later] = []
        self._at: dict[tuple[str, str | None], int] = {}

    def put(self, key: tuple[str, str | None], item: RecordAction | _Later) -> None:
        """Note ``item`` under ``key``; a key noted again keeps its place
        and takes the new item (as a dict does)."""
        at = self._at.get(key)
        if at is not None:
            self._items[at] = item
            return
        self._at[key] = len(self._keys)
        self._keys.append(key)
        self._items.append(item)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[tuple[str, str | None]]:
        return iter(self._keys)

    def __getitem__(self, key: tuple[str, str | None]) -> RecordAction:
        return self._made(self._at[key])

    def _made(self, at: int) -> RecordAction:
        item = self._items[at]
        if type(item) is _Later:
            item = self._items[at] = item.made()
        return item  # type: ignore[return-value]

    def actions(self) -> Iterator[RecordAction]:
        """Every record action, made as it comes."""
        for at in range(len(self._items)):
            yield self._made(at)

    def make(self) -> None:
        """Make every record action now: the places they were read from
        (and their records) are then no longer held."""
        for _ in self.actions():
            pass

    def ops(self) -> Iterator[tuple[str, str, str]]:
        """(op, entity, target) of each, made or not."""
        for item in self._items:
            yield item[0], item[1], item[2]

    def on(self, side: Side) -> _On:
        """The record actions on ``side``, made when iterated (a place
        whose check looks at none makes none)."""
        return _On(self, side.value)


class _On:
    """``Views.on``: an iterable that can be iterated more than once."""

    def __init__(self, views: Views, side: str) -> None:
        self._views, self._side = views, side

    def __iter__(self) -> Iterator[RecordAction]:
        views = self._views
        for at, (_, side) in enumerate(views._keys):
            if side == self._side:
                yield views._made(at)


def _views(pair: Pair, plan: Plan, left: RecordReplica, right: RecordReplica) -> Views:
    """The plan's actions as records (``Views``): each copy and delete
    noted to be made later; an update only when it sets a field (``differ``:
    its texts compared, not its records), or, under a target's rules, made
    now to know; a merge's made now (two-way pairs are small)."""
    views = Views()
    name = pair.entity.name
    for action in plan.actions:
        if action.side is None or action.op not in ("copy", "delete", "merge"):
            continue
        place = left if action.side is Side.LEFT else right
        side = action.side.value
        if action.op == "merge":
            _merged(views, name, action, place, right if place is left else left)
            continue
        op = _op_of(action)
        if op == "update" and (
            place.rules or action.entry is None or action.entry.version is None
        ):
            view = _view(op, name, action, place)
            if view.after:
                views.put((action.key, side), view)
            continue
        if op == "update":
            assert action.entry is not None and action.expect is not None
            if not place.differ(action.entry.version, action.expect.version):
                continue
        views.put((action.key, side), _Later(op, name, place.label, action, place))
    return views


def _op_of(action: Action) -> str:
    """The record op of an engine copy or delete."""
    if action.op == "delete":
        return "delete"
    before = action.expect.version if action.expect else None
    return "create" if before is None else "update"


def _view(op: str, name: str, action: Action, place: RecordReplica) -> RecordAction:
    """One copy's or delete's record action, field by field."""
    key = place.key_of(action.key)
    before = place.record_of(action.expect.version if action.expect else None)
    if op == "delete":
        return RecordAction("delete", name, place.label, key, before, None)
    if op == "create":
        after = place.record_of(action.entry.version if action.entry else None)
        return RecordAction("create", name, place.label, key, None, after)
    wanted = place.record_of(action.entry.version if action.entry else None) or {}
    changes = changes_under(wanted, before or {}, place.rules)
    return RecordAction("update", name, place.label, key, before, changes)


def _merged(
    views: Views,
    name: str,
    action: Action,
    place: RecordReplica,
    other: RecordReplica,
) -> None:
    """A two-way merge's record actions: on ``place``, and on ``other``
    what it lacks of the merged record."""
    assert action.side is not None
    op = _op_of(action)
    view = _view(op, name, action, place)
    if op == "update" and not view.after:
        return  # nothing to set here: nor on the other side
    views.put((action.key, action.side.value), view)
    if action.other is None:
        return
    key = view.key
    now = other.record_of(action.other.version) or {}
    wanted = other.record_of(action.entry.version if action.entry else None) or {}
    changes = {n: v for n, v in wanted.items() if now.get(n) != v}
    if changes:
        side = action.side.other.value
        views.put(
            (action.key, side),
            RecordAction("update", name, other.label, key, now, changes),
        )


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
    for views in prepared.views.values():
        views.make()  # before the places are read again: theirs let go
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
    views: abc.Mapping[tuple[str, str | None], RecordAction],
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
