"""Reconcile: two change sets and the archive become a plan. Pure, no I/O.

The two-way truth table (``decide``), for one key, with L and R the changes
of each side (``-`` unchanged):

====================  ======================================================
L / R                 outcome
====================  ======================================================
change / -            propagate it (copy, set_meta, delete) to the other side
deleted / deleted     forget the key
deleted / changed     keep the change: copy it back (a folder whose only
                      change is its mode is deleted all the same)
same / same content   mark equal (and align mtime/mode on the older side)
meta / modified       the content change wins
changed / changed     conflict, settled by the policy: keep-both (the loser
                      is kept as ``name.conflict-<time>-<side>.ext`` on both
                      sides), newer, older, larger, left, right, or ask
====================  ======================================================

A first sync (empty archive) merges both sides as a union: anything that
differs is kept twice (keep-both), whatever the conflict rule.

One-way sync (``one_way="left"`` or ``"right"``) is the two-way table with
only that side's changes carried: the other side's changes stay where they
are (not carried back, not undone), and where both changed, that side's
version wins (the other goes to the trash). SyncML's one-way modes use it.

Mirror (left to right) has one winner: the left side, always; what is only
on the right is deleted only with ``delete``. Before any archive exists,
mirror compares kind, size and mtime (or digests with ``checksum``).

A folder deleted on one side that still holds ignored items on the other is
kept there (its synced contents are deleted; ignored items never are): the
apply step records it in the archive as absent, by agreement, on the side
that deleted it (``ABSENT``), so later runs leave it be, forget it when it
goes, and make it again when something synced appears in it.

Renames: a file deleted on one side and created under another key with the
same digest, mtime and mode is a move, propagated as a move when the other
side still holds the old key unchanged; a mirror with ``delete`` carries the
source's renames the same way (so its deletion guard counts them as
renames, not deletions).

Digests must be filled in beforehand (``digests_needed`` says which).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Collection, Iterable

from accord.engine.detect import CREATED, DELETED, META, MODIFIED, Change, ChangeSet
from accord.engine.plan import Action, Conflict, Plan
from accord.engine.policy import Policy
from accord.keys import conflict_name
from accord.model import DIR, FILE, Entry, Side, parent_of
from accord.state.store import ABSENT, ArchiveEntry
from accord.tuples import NamedTuple

__all__ = [
    "conflict_name",
    "created_of_size",
    "decide",
    "digests_needed",
    "find_moves",
    "find_twins",
    "reconcile",
    "resolve",
]

LEFT, RIGHT = Side.LEFT, Side.RIGHT

#: ``Replica.merge`` of the places: (base, left, right) -> its merge
Merge = Callable[[Entry | None, Entry, Entry], object]


class Move(NamedTuple):
    side: Side  # where the user renamed it
    old: str
    new: str
    entry: Entry  # the renamed file as it is now


def digests_needed(
    left: ChangeSet,
    right: ChangeSet,
    policy: Policy,
    derived: Iterable[Side] = (),
) -> set[str]:
    """Keys of created or modified files whose digest decides the plan
    (``derived``: the sides whose names come from content, on a first sync:
    their twins on the other side need digests too)."""
    needed: set[str] = set()
    for side in derived:
        ours, theirs = (left, right) if side is LEFT else (right, left)
        sizes = {
            c.now.size
            for k, c in ours.changes.items()
            if c.kind == CREATED and c.now is not None and k not in theirs.changes
        }
        needed.update(
            k
            for k, c in theirs.changes.items()
            if c.kind == CREATED and c.now is not None and c.now.size in sizes
        )
    # the keys both sides changed (the intersection walks the smaller side:
    # on a first copy into an empty folder, none)
    for key in left.changes.keys() & right.changes.keys():
        lc, rc = left.changes[key], right.changes[key]
        if lc.now is None or rc.now is None:
            continue
        if lc.now.kind == FILE == rc.now.kind and lc.now.size == rc.now.size:
            if policy.mode == "mirror" and not policy.checksum and lc.base is None:
                continue
            needed.add(key)
    for changes in (left, right):
        sizes = {
            c.base.size
            for c in changes.changes.values()
            if c.kind == DELETED and c.base is not None and c.base.kind == FILE
        }
        if sizes:
            needed |= created_of_size(changes, sizes)
    return needed


def created_of_size(changes: ChangeSet, sizes: set[int]) -> set[str]:
    """Keys of the files ``changes`` creates whose size is one of ``sizes``
    (those that may be a vanished file under another name)."""
    return {
        key
        for key, c in changes.changes.items()
        if c.kind == CREATED
        and c.now is not None
        and c.now.kind == FILE
        and c.now.size in sizes
    }


class Taken:
    """The names in use (archive, both change sets, conflict names given out),
    answered without copying them all into one set."""

    def __init__(self, *names: Collection[str]) -> None:
        self._names = names
        self._added: set[str] = set()

    def __contains__(self, name: object) -> bool:
        return name in self._added or any(name in group for group in self._names)

    def add(self, name: str) -> None:
        self._added.add(name)


def find_moves(changes: ChangeSet, other: ChangeSet) -> list[Move]:
    """Deletions paired with creations of the same file under a new key."""
    gone: dict[str, list[ArchiveEntry]] = {}
    for change in changes.changes.values():
        base = change.base
        if (
            change.kind == DELETED
            and base is not None
            and base.kind == FILE
            and base.digest
            and base.key not in other.changes
        ):
            gone.setdefault(base.digest, []).append(base)
    if not gone:  # nothing deleted: nothing can have moved
        return []
    moves: list[Move] = []
    for key, change in sorted(changes.changes.items()):
        now = change.now
        if change.kind != CREATED or now is None or now.digest is None:
            continue
        if key in other.changes:
            continue
        candidates = gone.get(now.digest)
        if not candidates:
            continue
        for base in candidates:
            if base.mtime_ns == now.mtime_ns and base.mode == now.mode:
                candidates.remove(base)
                moves.append(Move(changes.side, base.key, key, now))
                break
    return moves


def find_twins(derived: ChangeSet, other: ChangeSet) -> list[Action]:
    """First sync: items of a place that names them from their content,
    with the same content as a new item of the other side under another
    name, are that item: renamed to the other side's name (no copy, no
    duplicate)."""
    named: dict[str, list[Entry]] = {}
    for key, change in sorted(other.changes.items()):
        now = change.now
        if (
            change.kind == CREATED
            and now is not None
            and now.kind == FILE
            and now.digest
            and key not in derived.changes
        ):
            named.setdefault(now.digest, []).append(now)
    twins = []
    for key, change in sorted(derived.changes.items()):
        now = change.now
        if change.kind != CREATED or now is None or now.kind != FILE:
            continue
        if key in other.changes or not now.digest or not named.get(now.digest):
            continue
        mate = named[now.digest].pop(0)
        twins.append(
            Action(
                "move",
                key,
                derived.side,
                mate,
                now,
                mate.key,
                reason=f"the same note as {mate.key} on {other.side}; takes its name",
            )
        )
    return twins


def reconcile(
    left: ChangeSet,
    right: ChangeSet,
    archive: dict[str, ArchiveEntry],
    policy: Policy,
    *,
    first_sync: bool = False,
    left_url: str = "",
    right_url: str = "",
    merge: Merge | None = None,
    derived: Iterable[Side] = (),
) -> Plan:
    """The plan that brings both sides into agreement. ``merge`` (offered by
    places that can merge, see ``Replica.merge``) settles items both sides
    changed before the conflict rule does."""
    if policy.one_way:
        # only one side's changes travel; where both changed, it wins
        policy = policy._replace(on_conflict=policy.one_way)
        first_sync = False
    actions: list[Action] = []
    conflicts: list[Conflict] = []
    handled: set[str] = set()
    # a mirror that deletes carries the source's renames too (without
    # --delete, the target keeps the old name, so a copy is what it needs)
    movers = ((left, right), (right, left)) if policy.mode == "sync" else ()
    if policy.mode == "mirror" and policy.delete:
        movers = ((left, right),)
    if not archive:  # a move is a deletion of an archived item: none
        movers = ()
    for changes, other in movers:
        for move in find_moves(changes, other):
            actions.append(_move_action(move, archive))
            handled.update((move.old, move.new))
    if first_sync and policy.mode == "sync":
        for side in derived:
            ours, theirs = (left, right) if side is LEFT else (right, left)
            for twin in find_twins(ours, theirs):
                actions.append(twin)
                handled.update((twin.key, twin.new_key or twin.key))
    taken = Taken(archive, left.changes, right.changes)
    plain = policy.mode == "sync" and not archive
    if plain and not handled and not (left.changes and right.changes):
        alone = _created_alone(left if left.changes else right)
        if alone is not None:
            left, right = left._replace(changes={}), right._replace(changes={})
            actions += alone
    lget, rget = left.changes.get, right.changes.get
    # nothing archived, in a two-way sync: what one side created alone is
    # copied to the other, as decide() would answer (a first copy asks it
    # once per item; its calls were most of the plan's work per item)
    why = {LEFT: _why(CREATED, LEFT), RIGHT: _why(CREATED, RIGHT)}
    for key in _keys(left, right):
        if key in handled:
            continue
        lc, rc = lget(key), rget(key)
        if plain and (lc is None or rc is None):
            change, side = (lc, LEFT) if rc is None else (rc, RIGHT)
            if change is not None and change.kind == CREATED and change.now:
                target = RIGHT if side is LEFT else LEFT
                copy = Action(
                    "copy", key, target, change.now, None, None, None, why[side]
                )
                actions.append(copy)
                continue
        outcome = decide(
            key,
            lc,
            rc,
            archive.get(key),
            policy,
            first_sync=first_sync,
            taken=taken,
            merge=merge,
        )
        if isinstance(outcome, Conflict):
            conflicts.append(outcome)
        else:
            actions.extend(outcome)
    actions = _keep_parents(actions, left, right, archive, taken)
    if policy.one_way:
        source = Side(policy.one_way)
        actions = [a for a in actions if a.side is not source]
    return Plan(
        actions,
        conflicts,
        [*left.problems, *right.problems],
        left=left_url,
        right=right_url,
        mode=policy.mode,
        first_sync=first_sync,
        refresh={LEFT.value: left.refresh, RIGHT.value: right.refresh},
    )


def _created_alone(changes: ChangeSet) -> list[Action] | None:
    """The copies to the other side of what one side created, when the
    other side changed nothing and nothing is archived (a first copy): the
    actions ``decide`` would give, in key order, made in C (no call in
    Python per item); None when a change is not a creation."""
    found = changes.changes
    if any(change[0] != CREATED or change[1] is None for change in found.values()):
        return None
    keys = sorted(found)
    side = changes.side
    target = RIGHT if side is LEFT else LEFT
    fields = zip(
        itertools.repeat("copy"),
        keys,
        itertools.repeat(target),
        [found[key][1] for key in keys],
        itertools.repeat(None),
        itertools.repeat(None),
        itertools.repeat(None),
        itertools.repeat(_why(CREATED, side)),
    )
    return list(map(tuple.__new__, itertools.repeat(Action), fields))


def _keys(left: ChangeSet, right: ChangeSet) -> list[str]:
    """The keys either side changed, in order (one side's alone, as a first
    copy has them, are sorted already: no set of them is made and sorted)."""
    if not right.changes:
        return sorted(left.changes)
    if not left.changes:
        return sorted(right.changes)
    return sorted(left.changes.keys() | right.changes.keys())


def _move_action(move: Move, archive: dict[str, ArchiveEntry]) -> Action:
    target = move.side.other
    return Action(
        "move",
        move.old,
        target,
        move.entry,
        archive[move.old].as_entry(target),
        move.new,
        reason=f"renamed on {move.side} to {move.new}",
    )


def decide(
    key: str,
    lc: Change | None,
    rc: Change | None,
    base: ArchiveEntry | None,
    policy: Policy,
    *,
    first_sync: bool = False,
    taken: Taken | set[str] | None = None,
    merge: Merge | None = None,
) -> list[Action] | Conflict:
    """The actions (or the conflict) for one key. The whole truth table."""
    if policy.mode == "mirror":
        return _decide_mirror(key, lc, rc, base, policy)
    if lc is None and rc is None:
        return []
    if rc is None:
        assert lc is not None
        return _propagate(key, lc, LEFT, base)
    if lc is None:
        return _propagate(key, rc, RIGHT, base)
    if merge is not None:
        merged = _merged(key, lc, rc, base, merge)
        if merged is not None:
            return merged
    return _both_changed(key, lc, rc, policy, first_sync, taken or set())


def _merged(
    key: str, lc: Change, rc: Change, base: ArchiveEntry | None, merge: Merge
) -> list[Action] | Conflict | None:
    """Both sides changed the content of an item that can be merged: one
    ``merge`` action (written to each side that does not hold it yet), or
    the conflict when the changes clash; None when merging does not apply."""
    ln, rn = lc.now, rc.now
    if ln is None or rn is None or ln.kind != FILE or rn.kind != FILE:
        return None
    if ln.same_content(rn):
        return None
    result = merge(base.as_entry(LEFT.value) if base is not None else None, ln, rn)
    merged = getattr(result, "entry", None)
    if merged is None:
        return Conflict(
            key, ln, rn, getattr(result, "reason", "") or "changed on both sides"
        )
    side = LEFT if not ln.same_content(merged) else RIGHT
    here, there = (ln, rn) if side is LEFT else (rn, ln)
    return [
        Action(
            "merge",
            key,
            side,
            merged,
            here,
            None,
            there,
            reason="changed on both sides; merged",
        )
    ]


def _current(base: ArchiveEntry | None, side: Side) -> Entry | None:
    """What an unchanged side holds: the archived entry with its version."""
    return base.as_entry(side.value) if base is not None else None


def _propagate(
    key: str, change: Change, side: Side, base: ArchiveEntry | None
) -> list[Action]:
    """One side changed, the other did not: carry the change across."""
    target = RIGHT if side is LEFT else LEFT  # not side.other: a tenth of it
    expect = _current(base, target)
    if base is not None and base.version(target.value) == ABSENT:
        # a folder kept on one side only (it holds ignored items)
        if change.kind == DELETED:
            why = f"deleted on {side}; already gone from {target}"
            return [Action("forget", key, None, reason=why)]
        if change.kind == META:
            return []
        expect = None
    if change.kind == DELETED:
        return [
            Action("delete", key, target, None, expect, reason=f"deleted on {side}")
        ]
    assert change.now is not None
    if change.kind == META:
        return [
            Action(
                "set_meta",
                key,
                target,
                change.now,
                expect,
                reason=f"mtime or mode changed on {side}",
            )
        ]
    # positional: a keyword makes the tuple take twice as long
    why = _why(change.kind, side)
    return [Action("copy", key, target, change.now, expect, None, None, why)]


#: the reason of a propagated copy, per (kind, side): one string, shared
_WHY: dict[tuple[str, Side], str] = {}


def _why(kind: str, side: Side) -> str:
    """``"<kind> on <side>"``, made once per pair (a first copy asks for
    it once per file)."""
    why = _WHY.get((kind, side))
    if why is None:
        why = _WHY[(kind, side)] = sys.intern(f"{kind} on {side}")
    return why


def _both_changed(
    key: str,
    lc: Change,
    rc: Change,
    policy: Policy,
    first_sync: bool,
    taken: Taken | set[str],
) -> list[Action] | Conflict:
    ln, rn = lc.now, rc.now
    if ln is None and rn is None:
        return [Action("forget", key, None, reason="deleted on both sides")]
    if ln is None or rn is None:
        alive, side = (rc, RIGHT) if ln is None else (lc, LEFT)
        assert alive.now is not None
        if alive.kind == META and alive.now.kind == DIR:
            return [
                Action(
                    "delete",
                    key,
                    side,
                    None,
                    alive.now,
                    reason=f"deleted on {side.other}; only the folder's mode "
                    f"changed on {side}",
                )
            ]
        return [
            Action(
                "copy",
                key,
                side.other,
                alive.now,
                None,
                reason=f"deleted on {side.other}, {alive.kind} on {side}: "
                "keeping the change",
            )
        ]
    if ln.same_content(rn):
        return _agree(key, ln, rn)
    if lc.kind == META and rc.kind == MODIFIED:
        return [
            Action(
                "copy",
                key,
                LEFT,
                rn,
                ln,
                reason="content changed on right, only metadata on left",
            )
        ]
    if rc.kind == META and lc.kind == MODIFIED:
        return [
            Action(
                "copy",
                key,
                RIGHT,
                ln,
                rn,
                reason="content changed on left, only metadata on right",
            )
        ]
    return _conflict(key, ln, rn, policy, first_sync, taken)


def _agree(key: str, ln: Entry, rn: Entry) -> list[Action]:
    """Both sides hold the same content; align metadata on the older one.

    A ``set_meta`` records the agreement itself, so it replaces ``mark_equal``.
    """
    if ln.kind == FILE and (ln.mtime_ns, ln.mode) != (rn.mtime_ns, rn.mode):
        newer, side = (ln, LEFT) if ln.mtime_ns >= rn.mtime_ns else (rn, RIGHT)
        older = rn if side is LEFT else ln
        why = f"same content; mtime/mode from {side}"
        return [Action("set_meta", key, side.other, newer, older, reason=why)]
    why = "same content on both sides"
    return [Action("mark_equal", key, None, ln, None, None, rn, reason=why)]


def _conflict(
    key: str,
    ln: Entry,
    rn: Entry,
    policy: Policy,
    first_sync: bool,
    taken: Taken | set[str],
) -> list[Action] | Conflict:
    rule = "keep-both" if first_sync else policy.on_conflict
    what = "created on both sides" if first_sync else "changed on both sides"
    if rule == "ask":
        return Conflict(key, ln, rn, f"{what}, differently")
    if rule == "keep-both" or ln.kind == DIR or rn.kind == DIR:
        return [_keep_both(key, ln, rn, taken, what)]
    winner = _winner(rule, ln, rn)
    loser_side = winner.other
    return [
        Action(
            "copy",
            key,
            loser_side,
            ln if winner is LEFT else rn,
            rn if winner is LEFT else ln,
            reason=f"{what}; rule '{rule}' keeps the {winner} version",
        )
    ]


def _winner(rule: str, ln: Entry, rn: Entry) -> Side:
    if rule == "left":
        return LEFT
    if rule == "right":
        return RIGHT
    if rule == "larger":
        return LEFT if ln.size >= rn.size else RIGHT
    if rule == "older":
        return LEFT if ln.mtime_ns <= rn.mtime_ns else RIGHT
    return LEFT if ln.mtime_ns >= rn.mtime_ns else RIGHT


def _keep_both(
    key: str, ln: Entry, rn: Entry, taken: Taken | set[str], what: str
) -> Action:
    """The newer version (or a folder) keeps the name; the other is set aside."""
    if ln.kind == DIR or rn.kind == DIR:
        winner = LEFT if ln.kind == DIR else RIGHT
    else:
        winner = LEFT if ln.mtime_ns >= rn.mtime_ns else RIGHT
    win, lose = (ln, rn) if winner is LEFT else (rn, ln)
    aside = conflict_name(key, winner.other, lose.mtime_ns, taken)
    taken.add(aside)
    return Action(
        "keep_both",
        key,
        winner.other,
        win,
        lose,
        aside,
        reason=f"{what}: {winner} keeps the name, the {winner.other} "
        f"version is kept as {aside}",
    )


def _decide_mirror(
    key: str,
    lc: Change | None,
    rc: Change | None,
    base: ArchiveEntry | None,
    policy: Policy,
) -> list[Action]:
    """Left to right: the right side ends up like the left one."""
    ln = lc.now if lc is not None else _current(base, LEFT)
    rn = rc.now if rc is not None else _current(base, RIGHT)
    if ln is None:
        if rn is None:
            return [Action("forget", key, None, reason="gone from both sides")]
        if policy.delete:
            return [Action("delete", key, RIGHT, None, rn, reason="not on the left")]
        if base is not None:
            return [
                Action(
                    "forget",
                    key,
                    None,
                    reason="deleted on the left; kept on the right (no --delete)",
                )
            ]
        return []
    if rn is not None and _mirror_equal(ln, rn, base, policy):
        if base is not None and lc is None and rc is None:
            return []
        if ln.kind == FILE and (ln.mtime_ns, ln.mode) != (rn.mtime_ns, rn.mode):
            return [Action("set_meta", key, RIGHT, ln, rn, reason="mtime or mode")]
        why = "already the same"
        return [Action("mark_equal", key, None, ln, None, None, rn, reason=why)]
    if lc is not None and lc.kind == META and rc is None:
        return [Action("set_meta", key, RIGHT, ln, rn, reason="mtime or mode changed")]
    why = f"{lc.kind} on the left" if lc is not None else "changed on the right"
    return [Action("copy", key, RIGHT, ln, rn, reason=why)]


def _mirror_equal(
    ln: Entry, rn: Entry, base: ArchiveEntry | None, policy: Policy
) -> bool:
    if ln.kind != rn.kind:
        return False
    if ln.kind != FILE or (ln.digest and rn.digest):
        return ln.same_content(rn)
    if policy.checksum:
        return False
    return ln.size == rn.size and ln.mtime_ns == rn.mtime_ns


def _keep_parents(
    actions: list[Action],
    left: ChangeSet,
    right: ChangeSet,
    archive: dict[str, ArchiveEntry],
    taken: Taken | set[str],
) -> list[Action]:
    """A folder that something is written into stays a folder on that side.

    Deleted there: it is recreated (and not deleted on the other side).
    Replaced there by a file: a conflict, where the folder keeps the name and
    the file is kept as a conflict copy.
    """
    changes = {LEFT: left.changes, RIGHT: right.changes}
    # a side with no changes and nothing archived holds no folder to keep
    # (a first copy's target): its writes are passed over
    bare = {side: not archive and not changes[side] for side in (LEFT, RIGHT)}
    if bare[LEFT] and bare[RIGHT]:
        return actions
    made = {(a.side, a.key) for a in actions if a.entry and a.entry.kind == DIR}
    replaced: dict[tuple[Side | None, str], Action] = {}
    for action in list(actions):
        if action.op not in ("copy", "move", "keep_both") or action.side is None:
            continue
        target = action.side
        if bare[target]:
            continue
        other = RIGHT if target is LEFT else LEFT  # not target.other: a tenth
        key = action.new_key if action.op == "move" and action.new_key else action.key
        parent = parent_of(key)
        while parent and (target, parent) not in made:
            change = changes[target].get(parent) or _absent(parent, target, archive)
            folder = _folder_on(parent, other, changes, archive)
            if change is None or change.kind == META or folder is None:
                break
            made.add((target, parent))
            if change.kind == DELETED:
                replaced[(target.other, parent)] = Action(
                    "copy",
                    parent,
                    target,
                    folder,
                    None,
                    reason=f"a folder deleted on {target} still holds items "
                    f"from {target.other}",
                )
            elif change.now is not None and change.now.kind != DIR:
                replaced[(target.other, parent)] = _keep_both(
                    parent,
                    *_oriented(folder, change.now, target.other),
                    taken,
                    f"a folder replaced on {target} still holds items from "
                    f"{target.other}",
                )
            parent = parent_of(parent)
    if not replaced:  # the usual case (a first copy: every folder is made)
        return actions
    kept = [a for a in actions if (a.side, a.key) not in replaced]
    return kept + list(replaced.values())


def _absent(key: str, side: Side, archive: dict[str, ArchiveEntry]) -> Change | None:
    """A deletion, for a folder that ``side`` holds nothing at by agreement."""
    base = archive.get(key)
    if base is not None and base.version(side.value) == ABSENT:
        return Change(DELETED, None, base)
    return None


def _folder_on(
    key: str,
    side: Side,
    changes: dict[Side, dict[str, Change]],
    archive: dict[str, ArchiveEntry],
) -> Entry | None:
    """The folder at ``key`` on ``side`` now, or None if it is not one."""
    change = changes[side].get(key)
    entry = change.now if change is not None else _current(archive.get(key), side)
    return entry if entry is not None and entry.kind == DIR else None


def _oriented(entry: Entry, other: Entry, side: Side) -> tuple[Entry, Entry]:
    """(left, right) from ``entry`` on ``side`` and ``other`` on the other side."""
    return (entry, other) if side is LEFT else (other, entry)


def resolve(plan: Plan, key: str, choice: str, taken: Iterable[str] = ()) -> Plan:
    """Settle one conflict of ``plan`` by ``choice`` (left, right, keep-both, skip)."""
    conflict = next((c for c in plan.conflicts if c.key == key), None)
    if conflict is None:
        return plan
    rest = [c for c in plan.conflicts if c.key != key]
    if choice == "skip":
        return plan.with_actions(plan.actions, rest)
    ln, rn = conflict.left, conflict.right
    assert ln is not None and rn is not None
    if choice == "keep-both":
        names = set(taken) | {a.key for a in plan.actions}
        action = _keep_both(key, ln, rn, names, "changed on both sides")
    else:
        winner = Side(choice)
        action = Action(
            "copy",
            key,
            winner.other,
            ln if winner is LEFT else rn,
            rn if winner is LEFT else ln,
            reason=f"you chose the {winner} version",
        )
    return plan.with_actions([*plan.actions, action], rest)
