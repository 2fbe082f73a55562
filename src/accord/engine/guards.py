"""Guards: the checks that stop a run before it does damage. Pure.

* a side that is empty now but held items at the last sync (an unmounted
  disk, a wrong path), or that holds none of them (another disk), aborts
  the run, unless the user allows it (``--allow-empty``, named in the
  message); an empty root is noticed before the run takes its locks
  (``check_empty_root``), so such a refused run writes nothing anywhere.
  An item whose content is still there under another name (a renamed top
  folder, a reshaped tree: the place's lasting identity, such as an inode
  or ETag, or size and digest, say so) is not gone (``renamed_away``,
  ``same_content``). Both sides emptied since the last sync is agreement,
  not a fault: nothing is left to lose, and the next run goes on;
* a mass deletion (more than ``max_delete`` items *and* more than
  ``max_delete_percent`` of what that side held; moves are not deletions)
  is flagged: the CLI asks, ``--yes`` aborts;
* names that differ only by case, where one side cannot tell them apart,
  are reported and left out of the plan; a name the plan removes is no
  clash (a rename that changed only the case is carried out).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping

from accord.engine.detect import CREATED, DELETED, ChangeSet
from accord.engine.plan import Plan
from accord.engine.policy import Policy
from accord.errors import SafetyLimitExceeded
from accord.keys import fold, nfc, shown
from accord.model import FILE, Entry, Problem, Side
from accord.state.store import ArchiveEntry

__all__ = [
    "all_gone",
    "check_emptied",
    "check_empty_root",
    "drop_keys",
    "mass_deletes",
    "name_clashes",
    "renamed_away",
    "same_content",
]


def check_empty_root(side: Side, url: str, held: int, policy: Policy) -> None:
    """Raise for a side whose root holds nothing at all when the pair held
    ``held`` items at the last sync (checked before anything is written)."""
    if held and not policy.allow_empty:
        raise _emptied(side, url, held)


def _emptied(side: Side, url: str, held: int) -> SafetyLimitExceeded:
    return SafetyLimitExceeded(
        f"the {side} side ({url}) is empty, but it held {held} items at the "
        "last sync, and the other side still holds them; nothing was changed "
        "(--allow-empty overrides this)",
        hint="if a disk is not mounted, mount it; if you really emptied it, "
        "run again with --allow-empty to delete everything on the other side too",
    )


def all_gone(
    changes: ChangeSet,
    archive: Mapping[str, ArchiveEntry],
    moved: int = 0,
    *,
    least: int = 2,
) -> bool:
    """True when none of the items this side held at the last sync is there
    any more, not even under another name (``moved``: how many of its
    deleted items reappear renamed: their content is still here). A side
    that lists something counts only when the pair held ``least`` items (one
    file renamed or deleted is no sign of another disk). A listing problem
    leaves the question open; a refused name counts as seen."""
    if not archive or any(not problem.refused for problem in changes.problems):
        return False
    if not changes.seen:
        return True
    gone = sum(1 for c in changes.changes.values() if c.kind == DELETED) - moved
    return len(archive) >= least and gone >= len(archive)


def check_emptied(
    changes: ChangeSet,
    url: str,
    archive: Mapping[str, ArchiveEntry],
    policy: Policy,
    moved: int = 0,
) -> None:
    """Raise when a side that held items is now empty, or holds none of them
    even under other names (another disk mounted in its place). A listing
    problem (a folder that could not be read) leaves the question open; a
    refused name does not: it is counted as seen, and deletes nothing."""
    if policy.allow_empty or not all_gone(changes, archive, moved):
        return
    if changes.seen:
        raise SafetyLimitExceeded(
            f"none of the {len(archive)} items the {changes.side} side ({url}) "
            "held at the last sync is there any more, not even under another "
            "name; nothing was changed (--allow-empty overrides this)",
            hint="if another disk is mounted there, mount the right one; if you "
            "really replaced everything, run again with --allow-empty",
        )
    raise _emptied(changes.side, url, len(archive))


def renamed_away(
    changes: ChangeSet, lasting: Callable[[str], str | None]
) -> tuple[set[str], list[ArchiveEntry]]:
    """Deleted files whose content is still on this side under another name,
    told by the place's lasting identity of an item (an inode, an ETag:
    ``lasting(version)``); and the deleted files it cannot tell about.
    Pure; the caller may compare the rest by size and digest."""
    side = changes.side.value
    created: set[str] = set()
    for change in changes.changes.values():
        if (
            change.kind == CREATED
            and change.now is not None
            and change.now.kind == FILE
        ):
            mark = lasting(change.now.version)
            if mark is not None:
                created.add(mark)
    found: set[str] = set()
    unsure: list[ArchiveEntry] = []
    for key, change in changes.changes.items():
        base = change.base
        if change.kind != DELETED or base is None or base.kind != FILE:
            continue
        mark = lasting(base.version(side))
        if mark is not None and mark in created:
            found.add(key)
        else:
            unsure.append(base)
    return found, unsure


def same_content(unsure: list[ArchiveEntry], created: Iterable[Entry]) -> set[str]:
    """Keys of deleted files whose size and digest a created file has (each
    created file vouches for one deleted file). Pure."""
    pool: Counter[tuple[int, str]] = Counter(
        (e.size, e.digest) for e in created if e.kind == FILE and e.digest
    )
    found = set()
    for base in unsure:
        if base.digest and pool[(base.size, base.digest)] > 0:
            pool[(base.size, base.digest)] -= 1
            found.add(base.key)
    return found


def mass_deletes(
    plan: Plan,
    archive: dict[str, ArchiveEntry],
    policy: Policy,
    seen: dict[Side, int] | None = None,
) -> list[str]:
    """A message for each side where the plan deletes too much. A side
    holds what the archive says, or what its listing showed (``seen``),
    whichever is more: a first mirror measures against the target's items."""
    messages = []
    for side in (Side.LEFT, Side.RIGHT):
        count = plan.deletes(side)
        held = max(len(archive), (seen or {}).get(side, 0), 1)
        share = 100.0 * count / held
        if count > policy.max_delete and share > policy.max_delete_percent:
            messages.append(
                f"this would delete {count} of {held} items ({share:.0f}%) on "
                f"the {side} side; the limit is {policy.max_delete} items and "
                f"{policy.max_delete_percent:g}%"
            )
    return messages


def name_clashes(
    left: ChangeSet,
    right: ChangeSet,
    archive: dict[str, ArchiveEntry],
    *,
    case: bool = True,
    unicode: bool = False,
) -> list[Problem]:
    """Keys that one side cannot tell apart (they differ only by case, with
    ``case``, or only by Unicode normalization, with ``unicode``), once both
    sides' items are together: each is refused, before anything is written,
    and stays pending until one of them is renamed."""
    present: set[str] = set(archive)
    for changes in (left, right):
        for key, change in changes.changes.items():
            if change.kind == CREATED:
                present.add(key)
    groups: dict[str, list[str]] = defaultdict(list)
    for key in present:
        if not _goes_away(key, left, right):
            groups[_form(key, case, unicode)].append(key)
    problems = []
    what = " or ".join(
        word for word, on in (("case", case), ("Unicode normalization", unicode)) if on
    )
    for keys in groups.values():
        if len(keys) > 1:
            names = ", ".join(_named(key, unicode) for key in sorted(keys))
            problems.extend(
                Problem(
                    key,
                    None,
                    f"not synced: names differ only by {what} ({names}) and one "
                    "side cannot hold both; rename one of them",
                    refused=True,
                )
                for key in sorted(keys)
            )
    return problems


def _named(key: str, unicode: bool) -> str:
    """``key`` as shown in a clash, with its normalization when that is
    what tells it from the others."""
    if not unicode or key.isascii():
        return shown(key)
    return f"{shown(key)} ({'NFC' if key == nfc(key) else 'not NFC'})"


def _form(key: str, case: bool, unicode: bool) -> str:
    """The spelling a place that ignores case or normalizes names keeps."""
    if unicode and not key.isascii():
        key = nfc(key)
    return fold(key) if case else key


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
