"""Guards: the checks that stop a run before it does damage. Pure.

* a side that is empty now but held items at the last sync (an unmounted
  disk, a wrong path) aborts the run, unless the user allows it; an empty
  root is noticed before the run takes its locks (``check_empty_root``),
  so such a refused run writes nothing anywhere;
* a mass deletion (more than ``max_delete`` items *and* more than
  ``max_delete_percent`` of what that side held; moves are not deletions)
  is flagged: the CLI asks, ``--yes`` aborts;
* names that differ only by case, where one side cannot tell them apart,
  are reported and left out of the plan; a name the plan removes is no
  clash (a rename that changed only the case is carried out).
"""

from __future__ import annotations

from collections import defaultdict

from accord.engine.detect import CREATED, DELETED, ChangeSet
from accord.engine.plan import Plan
from accord.engine.policy import Policy
from accord.errors import SafetyLimitExceeded
from accord.keys import fold
from accord.model import Problem, Side
from accord.state.store import ArchiveEntry

__all__ = [
    "case_clashes",
    "check_emptied",
    "check_empty_root",
    "drop_keys",
    "mass_deletes",
]


def check_empty_root(side: Side, url: str, held: int, policy: Policy) -> None:
    """Raise for a side whose root holds nothing at all when the pair held
    ``held`` items at the last sync (checked before anything is written)."""
    if held and not policy.allow_empty:
        raise _emptied(side, url, held)


def _emptied(side: Side, url: str, held: int) -> SafetyLimitExceeded:
    return SafetyLimitExceeded(
        f"the {side} side ({url}) is empty, but it held {held} "
        "items at the last sync; nothing was changed",
        hint="if a disk is not mounted, mount it; if you really emptied it, "
        "run again with --allow-empty to delete everything on the other side too",
    )


def check_emptied(
    changes: ChangeSet, url: str, archive: dict[str, ArchiveEntry], policy: Policy
) -> None:
    """Raise when a side that held items is now empty, or holds none of them
    (another disk mounted in its place). A listing problem (a folder that
    could not be read) leaves the question open; a refused name does not:
    it is counted as seen, and deletes nothing."""
    if policy.allow_empty or not archive:
        return
    if any(not problem.refused for problem in changes.problems):
        return
    if changes.seen:
        gone = sum(1 for c in changes.changes.values() if c.kind == "deleted")
        if len(archive) < 2 or gone < len(archive):
            return
        raise SafetyLimitExceeded(
            f"none of the {len(archive)} items the {changes.side} side ({url}) "
            "held at the last sync is there any more; nothing was changed",
            hint="if another disk is mounted there, mount the right one; if you "
            "really replaced everything, run again with --allow-empty",
        )
    raise _emptied(changes.side, url, len(archive))


def mass_deletes(
    plan: Plan, archive: dict[str, ArchiveEntry], policy: Policy
) -> list[str]:
    """A message for each side where the plan deletes too much."""
    held = max(len(archive), 1)
    messages = []
    for side in (Side.LEFT, Side.RIGHT):
        count = plan.deletes(side)
        share = 100.0 * count / held
        if count > policy.max_delete and share > policy.max_delete_percent:
            messages.append(
                f"this would delete {count} of {len(archive)} items ({share:.0f}%) on "
                f"the {side} side; the limit is {policy.max_delete} items and "
                f"{policy.max_delete_percent:g}%"
            )
    return messages


def case_clashes(
    left: ChangeSet, right: ChangeSet, archive: dict[str, ArchiveEntry]
) -> list[Problem]:
    """Keys that only differ by case, once both sides' items are together."""
    present: set[str] = set(archive)
    for changes in (left, right):
        for key, change in changes.changes.items():
            if change.kind == CREATED:
                present.add(key)
    groups: dict[str, list[str]] = defaultdict(list)
    for key in present:
        if not _goes_away(key, left, right):
            groups[fold(key)].append(key)
    problems = []
    for keys in groups.values():
        if len(keys) > 1:
            names = ", ".join(sorted(keys))
            problems.extend(
                Problem(
                    key,
                    None,
                    f"names differ only by case ({names}) and one side cannot "
                    "tell them apart; rename one of them",
                )
                for key in sorted(keys)
            )
    return problems


def _goes_away(key: str, left: ChangeSet, right: ChangeSet) -> bool:
    """True when the plan removes ``key`` from both sides: deleted on one,
    deleted or unchanged on the other (so the deletion is carried across)."""
    lc, rc = left.changes.get(key), right.changes.get(key)
    if lc is None or rc is None:
        change = lc or rc
        return change is not None and change.kind == DELETED
    return lc.kind == DELETED and rc.kind == DELETED


def drop_keys(changes: ChangeSet, keys: set[str]) -> ChangeSet:
    """``changes`` without the given keys."""
    if not keys:
        return changes
    kept = {k: c for k, c in changes.changes.items() if k not in keys}
    return changes._replace(changes=kept)
