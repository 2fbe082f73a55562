"""A run's safety checks on its places: the refusals made while it opens,
before anything (even a lock) is written anywhere (two places that overlap,
a read-only place that is not a mirror's source, a side that holds nothing
now though it held the pair's items, a database root without its marker
file), and what the emptied-side guard counts and sees when a side looks
emptied (items kept under another name; the rows in view); a name refused
on one side left alone on both.
"""

from __future__ import annotations

from collections.abc import Mapping

from accord.engine import guards
from accord.engine.detect import CREATED, ChangeSet
from accord.engine.detect import detect as detect_side
from accord.engine.reconcile import created_of_size
from accord.errors import ConfigError, PlacesOverlap
from accord.keys import IgnoreRules
from accord.model import DIR, FILE, Side, nesting
from accord.replica import Replica
from accord.state.store import ArchiveEntry

__all__ = ["SessionChecks", "leave_refused"]


class SessionChecks:
    """The safety checks of a :class:`~accord.engine.session.Session` on its
    places (the guards themselves are in ``engine/guards.py``)."""

    def _refuse_read_only(self) -> None:
        """A place that declares itself read-only (a web server's listing)
        can be the source of a mirror, and nothing else."""
        for side, replica in self.replicas.items():
            if replica not in self._opened or not replica.capabilities.read_only:
                continue
            if self.policy.mode == "mirror" and side is Side.LEFT:
                continue
            raise ConfigError(
                f"{replica.url} is read-only: it can be the source of a mirror, "
                "nothing else; nothing was changed",
                hint=f"accord mirror {replica.url} TARGET",
            )

    def _check_apart(self) -> None:
        """Refuse two places that overlap (one inside the other, or the same
        one under two names), before anything is written anywhere; allow an
        inner place the run's ``--exclude`` keeps out of the outer one."""
        found = nesting(self.left.spots(), self.right.spots())
        if found is None:
            return
        if not found.key:
            raise PlacesOverlap(
                f"both sides are the same place: {self.left.url} and "
                f"{self.right.url}; nothing was changed",
                hint="name two different folders",
            )
        pair = (self.left, self.right)
        outer, inner = pair[found.outer], pair[1 - found.outer]
        key = found.key
        if IgnoreRules(self.exclude).covers(key):
            note = (
                f"{inner.url} lies inside {outer.url} ('{key}'); it is excluded, "
                "so it is not synced into itself"
            )
            if note not in self.notices:
                self.notices.append(note)
            return
        raise PlacesOverlap(
            f"{inner.url} lies inside {outer.url} (as '{key}'): the run would "
            "copy the tree into itself, again on every run; nothing was changed",
            hint=f"name two places apart; if you mean it, keep the inner one out "
            f"of the outer one with --exclude '/{key}/'",
        )

    def _check_empty_roots(self) -> None:
        """Refuse a side that holds nothing now (an empty mount point) before
        anything, even a lock, is written to either side; unless the other
        side holds none of the pair's items either (both emptied: agreement)."""
        if self.policy.allow_empty:
            return
        assert self.store is not None
        empty = [
            side
            for side, replica in self.replicas.items()
            if replica in self._opened and replica.is_empty_root()
        ]
        held = self.store.count() if empty else 0
        if not held or len(empty) == 2:
            return
        (side,) = empty
        if self._holds_none(side.other):
            return
        guards.check_empty_root(side, self.replicas[side].url, held, self.policy)

    def _holds_none(self, side: Side) -> bool:
        """True when ``side`` holds none of the pair's items, not even
        renamed (a scan of that side, before any lock is taken)."""
        replica = self.replicas[side]
        if replica not in self._opened:
            return False
        assert self.store is not None
        archive = self.store.load()
        rules = self.ignore_rules()
        changes = detect_side(
            replica, archive, side, rules or None, workers=self.policy.workers
        )
        changes, moved = self._kept_by_rename(changes, replica, archive)
        return guards.all_gone(changes, archive, moved, least=1)

    def _check_marker(self, replica: Replica, marker: str) -> None:
        """Refuse a root that does not carry the database's marker file."""
        entry = replica.stat(marker)
        if entry is None or entry.kind != FILE:
            raise ConfigError(
                f"{replica.url} is not a '{marker}' database: there is no "
                f"'{marker}' file at its root; nothing was changed",
                hint="check the path; a new database must be created by its own "
                "tools before it is mirrored",
            )

    def _kept_by_rename(
        self,
        changes: ChangeSet,
        replica: Replica,
        archive: Mapping[str, ArchiveEntry],
    ) -> tuple[ChangeSet, int]:
        """For a side that looks emptied: how many of its deleted files are
        still there under another name (the place's lasting identity of an
        item, else size and digest, read only for files of a size that
        vanished); the change set gets the digests read."""
        if not guards.all_gone(changes, archive, least=1):
            return changes, 0
        found, unsure = guards.renamed_away(changes, replica.persistent_id)
        if unsure and guards.all_gone(changes, archive, len(found), least=1):
            sizes = {base.size for base in unsure}
            keys = created_of_size(changes, sizes)
            changes = self._filled(changes, replica, keys)
            created = [c.now for c in changes.changes.values() if c.kind == CREATED]
            found |= guards.same_content(unsure, [e for e in created if e])
        return changes, len(found)

    def _in_view(self, changes: ChangeSet, moved: int) -> Mapping[str, ArchiveEntry]:
        """The archive as the emptied-side guard sees it: without the rows
        the run's ignore rules now hide (a narrower choice of what to sync):
        those are out of view, not gone. Worked out only for a side that
        looks emptied (rare: it reads every row)."""
        if not guards.all_gone(changes, self.archive, moved, least=1):
            return self.archive
        rules = self.ignore_rules()
        if not rules:
            return self.archive
        return {
            key: row
            for key in self.archive
            if not rules.excludes(key, (row := self.archive[key]).kind == DIR)
        }


def leave_refused(left: ChangeSet, right: ChangeSet) -> tuple[ChangeSet, ChangeSet]:
    """A name refused on one side is left alone on both, and told once."""
    refused = {p.key for p in (*left.problems, *right.problems) if p.refused}
    if not refused:
        return left, right
    told = set(left.problems)
    right = right._replace(problems=[p for p in right.problems if p not in told])
    return guards.drop_keys(left, refused), guards.drop_keys(right, refused)
