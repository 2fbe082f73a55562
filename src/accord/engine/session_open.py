"""Opening a run's places and letting go of them: each place opened (or,
when it may be made, noted to be created when the plan is applied), told
what it found out about itself on an earlier run, and locked (accord's
lock, a database's own lock file); an interrupted earlier run noticed
through its journal and its temporary files removed.
"""

from __future__ import annotations

import io
import json
import time

from accord.errors import (
    AccordError,
    AlreadyExists,
    LockHeld,
    PermissionDenied,
    PreconditionFailed,
    SafetyLimitExceeded,
    Unreachable,
)
from accord.model import FILE, Entry, Side
from accord.replica import Replica
from accord.state import lock
from accord.state.store import ArchiveStore

__all__ = ["SessionOpening"]


class SessionOpening:
    """Opening and locking the places of a
    :class:`~accord.engine.session.Session` (which holds them, the
    policy, the archive and what it took: ``_opened``, ``_locked``,
    ``_db_locks``, ``_recalled``, ``_absent``)."""

    def _recall(self) -> None:
        """Tell each place what it found out about itself on an earlier run
        (``Replica.recall``), before its capabilities are asked."""
        assert self.store is not None
        for replica in (self.left, self.right):
            if replica not in self._recalled:  # the listing ahead's was told
                self._recall_one(self.store, replica)

    def _recall_one(self, store: ArchiveStore, replica: Replica) -> None:
        text = store.setting(_facts_name(replica))
        facts = json.loads(text) if text else {}
        self._recalled[replica] = facts
        replica.recall(facts)

    def _keep_learned(self) -> None:
        """Keep in the archive what a place found out that it had not been
        told (``Replica.learned``): a verdict probed once, not every run."""
        if self.store is None or self.read_only:
            return
        for replica, told in self._recalled.items():
            facts = replica.learned()
            if facts and facts != told:
                text = json.dumps(facts, sort_keys=True)
                self.store.cache_setting(_facts_name(replica), text)
        self._recalled = {}

    def _lock(self, replica: Replica) -> None:
        """Take the lock of an opened place (a mirror's source that cannot
        be written is only read, so it goes unlocked)."""
        try:
            self.notices += lock.acquire(
                replica, self._lock_info, break_lock=self.break_lock
            )
        except PermissionDenied:
            if not (self.policy.mode == "mirror" and replica is self.left):
                raise
            # a read-only mirror source: nothing of ours writes there
            self.notices.append(
                f"{replica.url} cannot be written, so it is not locked; it is only read"
            )
            return
        self._locked.append(replica)

    def _existing_store(self) -> ArchiveStore | None:
        """The pair's archive if it exists; none is created before both
        places are known to be apart."""
        path = ArchiveStore.path_for(
            self.state_dir, self.left.identity, self.right.identity
        )
        if not path.exists():
            return None
        return ArchiveStore.open(
            self.state_dir, self.left.identity, self.right.identity
        )

    def _take_db_lock(self, replica: Replica, name: str) -> None:
        """Create the database's own lock file; refuse if it is there (busy)."""
        payload = json.dumps(self._lock_info._asdict()).encode()
        now = time.time_ns()
        like = Entry(name, FILE, len(payload), now, 0o644, "")
        try:
            entry = replica.write(name, io.BytesIO(payload), like=like, expect=None)
        except (PreconditionFailed, AlreadyExists) as exc:
            raise LockHeld(
                f"the database at {replica.url} is busy: its lock file "
                f"'{name}' exists; nothing was changed",
                hint="wait until the program using it is done; if none is, "
                f"remove the file '{name}' at its root",
            ) from exc
        self._db_locks.append((replica, entry))

    def _release_db_locks(self) -> None:
        """Remove the lock files this run created, and only those."""
        for replica, entry in reversed(self._db_locks):
            try:
                replica.delete(entry.key, expect=entry, trash=None)
            except PreconditionFailed:
                self.notices.append(
                    f"the lock file '{entry.key}' of {replica.url} was changed by "
                    "someone else during the run; left in place"
                )
            except AccordError as exc:
                self.notices.append(
                    f"could not remove the lock file '{entry.key}' of "
                    f"{replica.url}: {exc.message}"
                )
        self._db_locks = []

    def _open_side(self, side: Side, replica: Replica, first: bool) -> None:
        may_create = not self.policy.marker and (
            first if self.policy.mode == "sync" else side is Side.RIGHT
        )
        if may_create and not replica.exists():
            # a new folder: created when the plan is applied, not before (a
            # preview or a refused first sync leaves nothing behind); only
            # in a folder that is there (a mistyped path, a disk not mounted)
            missing = replica.missing_parent()
            if missing is not None:
                raise Unreachable(
                    f"the folder {missing} does not exist, so the {side} side "
                    "cannot be made in it; nothing was changed",
                    where=replica.url,
                    hint="check the path (a disk that is not mounted?); to "
                    f"start a new tree there, make {missing} first",
                )
            self._absent.add(side)
            return
        try:
            replica.open(create=False)
        except Unreachable as exc:
            if first or self.policy.mode == "mirror":
                raise
            raise SafetyLimitExceeded(
                f"the {side} side ({replica.url}) is missing, but it was synced "
                "before; nothing was changed",
                hint="if it is on a disk that is not mounted, mount it; to start "
                "this pair afresh, run 'accord reset'",
            ) from exc
        self._opened.append(replica)
        self.notices += replica.notices

    def _create_absent(self) -> None:
        """Create the sides that did not exist yet, and lock them."""
        for side in sorted(self._absent):
            replica = self.replicas[side]
            replica.open(create=True)
            self._opened.append(replica)
            self.notices += replica.notices
            self.notices += lock.acquire(
                replica, self._lock_info, break_lock=self.break_lock
            )
            self._locked.append(replica)
            replica.new_listing(self.store.listing_token(side))
        self._absent.clear()

    def _recover(self) -> None:
        assert self.store is not None
        pending = self.store.journal_pending()
        if not pending:
            return
        self.notices.append(
            f"the previous run was interrupted with {len(pending)} actions "
            "unfinished; this run completes them"
        )
        for replica in (self.left, self.right):
            replica.clean_temp()
        self.store.journal_clear()


def _facts_name(replica: Replica) -> str:
    """The archive setting that keeps what a place learned about itself."""
    return f"facts:{replica.identity}"
