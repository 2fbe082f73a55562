"""Session: one run over a pair of places, step by step.

    with Session("~/notes", "/mnt/backup/notes") as session:
        plan = session.plan()          # detect both sides, reconcile, guard
        report = session.apply(plan)   # propagate, record

Opening a session opens both places, the pair's archive, and (unless it is
read-only) takes both places' locks. An interrupted earlier run is noticed
through its journal; its temporary files are removed and the new plan simply
finishes its work.
"""

from __future__ import annotations

import getpass
import io
import json
import os
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from accord.arrowfile import let_go_mapped
from accord.engine import columns, guards, history, rules, twins
from accord.engine.ahead import Ahead
from accord.engine.child import Child, can_fork
from accord.engine.detect import (
    CREATED,
    ChangeSet,
    KnownInOrder,
    Scanned,
    compare,
    fill_digests,
    scan_side,
)
from accord.engine.detect import detect as detect_side
from accord.engine.hooks import RunHook
from accord.engine.names import Gate
from accord.engine.plan import ARCHIVE_ONLY, Plan
from accord.engine.policy import Policy
from accord.engine.reconcile import created_of_size, digests_needed, reconcile
from accord.engine.report import Event, Report
from accord.engine.spelled import spelled, unspelled
from accord.errors import (
    AccordError,
    AlreadyExists,
    ConfigError,
    LockHeld,
    PermissionDenied,
    PlacesOverlap,
    PlanError,
    PreconditionFailed,
    SafetyLimitExceeded,
    Unreachable,
)
from accord.keys import IgnoreRules
from accord.model import DIR, FILE, Entry, Problem, Side, nesting
from accord.registry import open_replica
from accord.replica import Replica
from accord.state import lock
from accord.state.store import (
    ArchiveEntry,
    ArchiveKeys,
    ArchiveStore,
    ArchiveView,
    default_state_dir,
)

__all__ = ["IGNORE_FILE", "Session", "default_who", "new_run_id"]

IGNORE_FILE = rules.IGNORE_FILE


def default_who() -> str:
    """The name changes are recorded under: $ACCORD_USER or user@host."""
    explicit = os.environ.get("ACCORD_USER")
    if explicit:
        return explicit
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{os.uname().nodename}"


def new_run_id() -> str:
    """A sortable, unique run stamp (UTC time first)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + os.urandom(3).hex()


class Session:
    """One run over a pair of places."""

    def __init__(
        self,
        left: str | Replica,
        right: str | Replica,
        *,
        policy: Policy | None = None,
        state_dir: str | Path | None = None,
        exclude: Iterable[str] = (),
        who: str | None = None,
        break_lock: bool = False,
        read_only: bool = False,
        command: str = "sync",
        hook: RunHook | None = None,
    ) -> None:
        self.hook = hook or RunHook()
        self.left = open_replica(left) if isinstance(left, str) else left
        self.right = open_replica(right) if isinstance(right, str) else right
        self.policy = policy or Policy()
        self.state_dir = Path(state_dir) if state_dir else default_state_dir()
        self.exclude = list(exclude)
        self.who = who or default_who()
        self.break_lock = break_lock
        self.read_only = read_only
        self.command = command
        self.run = new_run_id()
        self.notices: list[str] = []
        self.store: ArchiveStore | None = None
        self.archive: ArchiveView | dict[str, ArchiveEntry] = {}
        self._locked: list[Replica] = []
        self._lock_info = lock.LockInfo.mine(self.who, self.run)
        self._opened: list[Replica] = []
        self._db_locks: list[tuple[Replica, Entry]] = []
        #: the places as opened, and what each was told it had found before
        self._recalled: dict[Replica, dict[str, str]] = {}
        self._absent: set[Side] = set()  # sides to create when applying
        self._refused = False  # a guard stopped the run: leave the places as found
        self._agreed: list[tuple[Entry, Entry]] = []
        #: per side, keys whose name there is spelled otherwise (twins)
        self._spelled: dict[Side, dict[str, str]] = {}
        # archive rows the column comparison made (``columns.plain_rows``)
        self._plain_rows: list[ArchiveEntry] = []
        #: ``.accordignore`` of each side now, and as last accepted (None: never)
        self._rules_now: dict[Side, str] = {}
        self._rules_accepted: dict[Side, str | None] = {}
        self._accepting = self.policy.accept_rules
        #: sides whose ``.accordignore`` changed since its rules were accepted
        self.rule_changes: list[rules.RuleChange] = []
        #: the left side's listing, started while the right side connects
        self._ahead: Ahead | None = None

    @property
    def replicas(self) -> dict[Side, Replica]:
        return {Side.LEFT: self.left, Side.RIGHT: self.right}

    # -- lifetime ---------------------------------------------------------
    def __enter__(self) -> Session:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        self._check_apart()
        existing = self._existing_store()
        first = existing is None or existing.is_empty()
        self.store = existing
        for side, replica in self.replicas.items():
            self._open_side(side, replica, first)
            if side is Side.LEFT:
                self._list_ahead()
        self._check_apart()  # opened places may know more (a remote real path)
        if self.store is None:
            self.store = ArchiveStore.open(
                self.state_dir, self.left.identity, self.right.identity
            )
        self._recall()
        if len(self._absent) == 2:
            raise ConfigError(
                f"neither {self.left.url} nor {self.right.url} exists",
                hint="check both paths; one of them should hold the data",
            )
        self.hook.opened(self)
        self._read_rules()
        if not first:
            self._check_empty_roots()
        if self.policy.marker:
            for replica in (self.left, self.right):
                self._check_marker(replica, self.policy.marker)
        self._refuse_read_only()
        if not self.read_only:
            for replica in self._opened:
                if replica not in self._locked:
                    self._lock(replica)
            if self.policy.db_lock:
                for replica in (self.left, self.right):
                    self._take_db_lock(replica, self.policy.db_lock)
            self._recover()

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

    def _list_ahead(self) -> None:
        """Start listing the left side (locked first, as the run would)
        in a child process while the right side connects, where that is
        safe, with the ignore rules the run will most likely apply (it
        checks them before it takes the listing: see ``engine/ahead.py``)."""
        left, right, store = self.left, self.right, self.store
        if (
            left not in self._opened
            or not (left.fork_safe and left.scan_in_order)
            or right.fork_safe  # a local right side opens at once
            or self.policy.db_lock
            or not can_fork()
        ):
            return
        if store is not None and not store.is_empty():
            accepted = {
                side: store.setting(_rules_name(r)) for side, r in self.replicas.items()
            }
        else:
            accepted = {Side.LEFT: None, Side.RIGHT: None}
        now = {Side.LEFT: self._rules_text(left), Side.RIGHT: ""}  # right: guessed
        if not self.read_only:
            self._lock(left)
        if store is not None and store.journal_pending():
            return  # recovered first, after both sides are locked
        texts = rules.in_effect(now, accepted, self._accepting)
        found = self._rules_with(texts)
        if store is not None:  # a probe verdict kept, not probed in the child
            self._recall_one(store, left)
        self._ahead = Ahead(left, store, Side.LEFT, found if found else None)

    def wrap_places(self, wrap: Callable[[Side, Replica], Replica]) -> None:
        """Put a view in front of each place (a run hook's): the session
        uses the views from now on (before anything is locked)."""
        for side, inner in list(self.replicas.items()):
            outer = wrap(side, inner)
            if outer is inner:
                continue
            if side is Side.LEFT:
                self.left = outer
            else:
                self.right = outer
            self._opened = [outer if r is inner else r for r in self._opened]
            self._locked = [outer if r is inner else r for r in self._locked]

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
            # preview or a refused first sync leaves nothing behind)
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

    def close(self) -> None:
        try:
            self.hook.close(self)
        except AccordError as exc:
            self.notices.append(exc.message)
        if self._ahead is not None:
            self._ahead.cancel()
            self._ahead = None
        self._release_db_locks()
        for replica in self._locked:
            try:
                lock.release(replica, self._lock_info)
            except AccordError:
                self.notices.append(f"could not release the lock of {replica.url}")
        self._locked = []
        for replica in self._opened:
            if self._refused or (self.policy.mode == "mirror" and replica is self.left):
                replica.leave_as_found()  # a mirror's source keeps nothing of ours
            replica.close()
        self._opened = []
        self._keep_learned()
        if self.store is not None:
            self.store.close()
            self.store = None

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

    # -- the steps ----------------------------------------------------------
    def _rules_text(self, replica: Replica) -> str:
        """The place's ``.accordignore`` ("" when it has none)."""
        if replica not in self._opened:
            return ""
        entry = replica.stat(IGNORE_FILE)
        if entry is None or entry.kind != FILE:
            return ""
        with replica.open_read(IGNORE_FILE) as stream:
            return str(stream.read().decode("utf-8", "replace"))

    def _read_rules(self) -> None:
        """Each side's ``.accordignore`` now and as accepted for this pair."""
        assert self.store is not None
        for side, replica in self.replicas.items():
            self._rules_now[side] = self._rules_text(replica)
            self._rules_accepted[side] = self.store.setting(_rules_name(replica))
        urls = {side: replica.url for side, replica in self.replicas.items()}
        self.rule_changes = rules.changes(self._rules_now, self._rules_accepted, urls)

    def accept_rules(self) -> None:
        """Apply the changed ``.accordignore`` files from this run on."""
        self._accepting = True

    def ignore_rules(self) -> IgnoreRules:
        """The accepted rules of both sides plus the session's excludes."""
        texts = rules.in_effect(self._rules_now, self._rules_accepted, self._accepting)
        return self._rules_with(texts)

    def _rules_with(self, texts: dict[Side, str]) -> IgnoreRules:
        """The session's own rules plus each side's rules ``texts``."""
        own = [f"/{name}" for name in (self.policy.marker, self.policy.db_lock) if name]
        found = IgnoreRules([*self.hook.ignore(), *own, *self.exclude])
        for side in (Side.LEFT, Side.RIGHT):
            found = found + IgnoreRules(texts[side].splitlines())
        return found

    def _settle_rules(
        self, left: ChangeSet, right: ChangeSet
    ) -> tuple[ChangeSet, ChangeSet]:
        """Report rules changes, and hold a changed ``.accordignore`` back
        (not copied either way) until it is accepted."""
        for change in self.rule_changes:
            notice = rules.describe(change, accepted=self._accepting)
            if notice not in self.notices:
                self.notices.append(notice)
        if self.rule_changes and not self._accepting:
            held = {IGNORE_FILE}
            left, right = guards.drop_keys(left, held), guards.drop_keys(right, held)
        return left, right

    def _record_rules(self, report: Report) -> None:
        """After a run that accepted rules (or found none accepted yet, or
        copied a rules file), the rules files as the run left them are the
        accepted ones. Not after an aborted run: the next run decides."""
        assert self.store is not None
        if report.aborted or (self.rule_changes and not self._accepting):
            return  # held: what was accepted stays accepted
        first = any(text is None for text in self._rules_accepted.values())
        copied = any(o.action.key == IGNORE_FILE for o in report.done)
        if not (first or copied or self._accepting):
            return
        try:
            texts = {side: self._rules_text(r) for side, r in self.replicas.items()}
        except AccordError as exc:
            report.notices.append(f"the ignore rules were not recorded: {exc.message}")
            return
        for side, replica in self.replicas.items():
            if self._rules_accepted.get(side) != texts[side]:
                self.store.set_setting(_rules_name(replica), texts[side])

    def detect(self) -> tuple[ChangeSet, ChangeSet]:
        """Both sides' changes since the archive, scanned concurrently.

        The listings are compared with the archived versions only; archive
        rows are then read for just the keys that differ.
        """
        assert self.store is not None
        rules = self.ignore_rules()
        ignore = rules if rules else None
        self.left, self.right = unspelled(self.left), unspelled(self.right)
        columnar = all(r.capabilities.listed_columns for r in (self.left, self.right))
        found = None
        if columnar and not ignore and not self._absent:
            # records: keys are compared exactly, column by column
            found = self._scan_columns(self.store)
        if found is not None:
            left, right, keys, self._agreed = found
            self._spelled = {}
        else:
            left, right, keys = self._scan_both(self.store, ignore)
            left, right, self._spelled = twins.pair(left, right, keys)
            self.left = spelled(self.left, self._spelled.get(Side.LEFT))
            self.right = spelled(self.right, self._spelled.get(Side.RIGHT))
            if not keys:  # a first sync: what both sides hold alike needs no action
                left, right, self._agreed = _alike(left, right)
        self.archive = ArchiveView(self.store, keys)
        for row in self._plain_rows:  # made from the version columns
            self.archive.set(row)
        self._plain_rows = []
        self.archive.prefetch(
            [e.key for e in left.fresh]
            + left.unseen
            + [e.key for e in right.fresh]
            + right.unseen
        )
        workers = self.policy.workers
        return (
            compare(left, self.archive, self.left, ignore, workers=workers),
            compare(right, self.archive, self.right, ignore, workers=workers),
        )

    def _scan_present(
        self, store: ArchiveStore, ignore: IgnoreRules | None
    ) -> tuple[Scanned, Scanned, dict[str, str]]:
        """A first sync with a side still to be created: that side is empty."""
        known = store.versions(Side.LEFT)
        scans = []
        for side, replica in self.replicas.items():
            if side in self._absent:
                scans.append(Scanned(side, [], [], [], 0, None))
            else:
                versions = known if side is Side.LEFT else store.versions(side)
                gate = self._gate(side)
                scans.append(scan_side(replica, versions, side, ignore, gate))
        return scans[0], scans[1], known

    def _scan_both(
        self, store: ArchiveStore, ignore: IgnoreRules | None
    ) -> tuple[Scanned, Scanned, Collection[str]]:
        """Scan both sides at once, each against its archived versions; also
        the archived keys. Where it is safe (a local tree) the right side is
        scanned in a child process: two cores instead of one shared GIL.
        Where the left side's listing was started ahead (a local tree, while
        a remote right side connected), the right side is listed here
        meanwhile."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead = ahead.take(self.left, ignore)
        if ahead is not None:
            return self._scan_with(ahead, store, ignore)
        if self._absent:
            return self._scan_present(store, ignore)
        gates = {side: self._gate(side) for side in (Side.LEFT, Side.RIGHT)}
        if self.right.fork_safe and can_fork() and not store.is_empty():
            child = Child(
                lambda: scan_side(
                    self.right,
                    _known(store, self.right, Side.RIGHT, own_connection=True),
                    Side.RIGHT,
                    ignore,
                    gates[Side.RIGHT],
                )
            )
            try:
                known = _known(store, self.left, Side.LEFT)
                left = scan_side(self.left, known, Side.LEFT, ignore, gates[Side.LEFT])
                right = child.result()  # listed here if the child was lost
            finally:
                child.cancel()
            self.right.set_scan_state(right.state)
            if isinstance(known, KnownInOrder):
                return left, right, _archived_keys(store, known.count, left, right)
            return left, right, known
        # the right side on a thread (its own archive connection: a place
        # over a network waits, which frees the GIL), the left one here
        known_right = _known(store, self.right, Side.RIGHT, own_connection=True)
        with _pool(1) as pool:
            future = pool.submit(
                scan_side,
                self.right,
                known_right,
                Side.RIGHT,
                ignore,
                gates[Side.RIGHT],
            )
            known = _known(store, self.left, Side.LEFT)
            left = scan_side(self.left, known, Side.LEFT, ignore, gates[Side.LEFT])
            right = future.result()
        if isinstance(known, KnownInOrder):
            return left, right, _archived_keys(store, known.count, left, right)
        return left, right, known

    def _scan_with(
        self, ahead: Ahead, store: ArchiveStore, ignore: IgnoreRules | None
    ) -> tuple[Scanned, Scanned, Collection[str]]:
        """The right side listed here (or empty, still to be created),
        while the left side's listing started ahead finishes."""
        try:
            if Side.RIGHT in self._absent:
                right = Scanned(Side.RIGHT, [], [], [], 0, None)
            else:
                known = _known(store, self.right, Side.RIGHT)
                gate = self._gate(Side.RIGHT)
                right = scan_side(self.right, known, Side.RIGHT, ignore, gate)
            listed = ahead.result(self._gate(Side.LEFT))
        finally:
            ahead.cancel()
        left = listed.scanned
        self.left.set_scan_state(left.state)
        if not listed.rows:  # an empty archive
            return left, right, {}
        return left, right, _archived_keys(store, listed.rows, left, right)

    def _scan_columns(
        self, store: ArchiveStore
    ) -> tuple[Scanned, Scanned, Collection[str], Sequence[tuple[Entry, Entry]]] | None:
        """Both sides listed as columns and compared with the archive column
        by column (``engine/columns.py``), when both places list so: each
        side's listing, the archived keys, and on a first sync the items
        both sides hold alike. None when a place does not list in columns."""
        with _pool(2) as pool:
            futures = [pool.submit(r.scan_columns) for r in (self.left, self.right)]
            empty = store.is_empty()
            known = None if empty else store.version_columns()
            found = [future.result() for future in futures]
        left_columns, right_columns = found
        if left_columns is None or right_columns is None:
            return None
        columns.release_memory()
        sides = []
        digests = None if known is None else store.plain_digests()
        for side, listing in ((Side.LEFT, left_columns), (Side.RIGHT, right_columns)):
            kept, problems = columns.gated(listing, self._gate(side), side)
            versions = (
                None if known is None else (known[0], known[1 + (side is Side.RIGHT)])
            )
            vouched = None if versions is None else store.vouched(side)
            sides.append(
                columns.against(kept, versions, side, listing.keys, problems, vouched)
            )
            if digests is not None and known is not None:
                # while the pages the comparison read are still resident
                rows = columns.plain_rows(sides[-1:], known, digests)
                self._plain_rows += rows
            let_go_mapped()  # the next side maps again only what it reads
        left, right = sides
        agreed: Sequence[tuple[Entry, Entry]] = []
        if empty:
            left, right, agreed = columns.alike(left, right)
            return columns.listed(left), columns.listed(right), {}, agreed
        assert known is not None
        keys = columns.archived_keys(store, (left, right), len(known[0]))
        return columns.listed(left), columns.listed(right), keys, agreed

    def _gate(self, side: Side) -> Gate:
        """The name gate for what ``side`` lists: names inside a place, that
        the other side can hold when they may be copied there (a mirror
        copies only from left to right)."""
        replica, other = self.replicas[side], self.replicas[side.other]
        if self.policy.mode == "mirror" and side is Side.RIGHT:
            return Gate(replica.url)
        return Gate(replica.url, other.capabilities, other.url)

    def plan(self) -> Plan:
        """What this run would do, guards checked."""
        left, right = self.detect()
        left, moved_left = self._kept_by_rename(left, self.left, self.archive)
        right, moved_right = self._kept_by_rename(right, self.right, self.archive)
        held = {
            Side.LEFT: self._in_view(left, moved_left),
            Side.RIGHT: self._in_view(right, moved_right),
        }
        both = guards.all_gone(
            left, held[Side.LEFT], moved_left, least=1
        ) and guards.all_gone(right, held[Side.RIGHT], moved_right, least=1)
        if both and not self.policy.allow_empty:
            self.notices.append(
                f"neither side holds any of the {len(self.archive)} items of the "
                "last sync: both were emptied, so they agree; nothing is deleted"
            )
        try:  # both emptied since the last sync is agreement, not a fault
            for changes, replica, moved in (
                (left, self.left, moved_left),
                (right, self.right, moved_right),
            ):
                if not both:
                    guards.check_emptied(
                        changes, replica.url, held[changes.side], self.policy, moved
                    )
        except SafetyLimitExceeded:
            self._refused = True
            raise
        left, right = _leave_refused(left, right)
        self._refreshed(left)
        self._refreshed(right)
        left, right = self._settle_rules(left, right)
        left, right = self._with_digests(left, right)
        clashes: list[Problem] = []
        caps = (self.left.capabilities, self.right.capabilities)
        case = not all(c.case_sensitive for c in caps)
        unicode = not all(c.unicode_exact for c in caps)
        if case or unicode:
            clashes = guards.name_clashes(
                left, right, self.archive, case=case, unicode=unicode
            )
            keys = {p.key for p in clashes}
            left, right = guards.drop_keys(left, keys), guards.drop_keys(right, keys)
        plan = reconcile(
            left,
            right,
            self.archive,
            self.policy,
            first_sync=not self.archive and self.policy.mode == "sync",
            left_url=self.left.url,
            right_url=self.right.url,
            merge=self._merger(),
            derived=[
                side
                for side, replica in self.replicas.items()
                if replica.capabilities.derived_names
            ],
        )
        plan.problems.extend(clashes)
        plan.agreed = self._agreed
        plan.spelled = self._spelled
        seen = {Side.LEFT: left.seen, Side.RIGHT: right.seen}
        plan.guards.extend(guards.mass_deletes(plan, self.archive, self.policy, seen))
        return plan

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

    def _merger(self) -> Any:
        """The places' merge, when both can merge (records, field by field)."""
        if self.left.capabilities.merge and self.right.capabilities.merge:
            return self.left.merge
        return None

    def _refreshed(self, changes: ChangeSet) -> None:
        """Items whose content is unchanged but whose version moved: the plan
        expects their new version (the archive row is rewritten on apply)."""
        at = 7 if changes.side is Side.LEFT else 8
        for entry in changes.refresh:
            base = self.archive.get(entry.key)
            if base is not None:
                row = list(base)
                row[at] = entry.version
                refreshed = ArchiveEntry._make(row)
                if isinstance(self.archive, ArchiveView):
                    self.archive.set(refreshed)
                else:
                    self.archive[entry.key] = refreshed

    def _with_digests(
        self, left: ChangeSet, right: ChangeSet
    ) -> tuple[ChangeSet, ChangeSet]:
        """Fill the digests that reconcile needs (both-changed, move candidates)."""
        derived = []
        if not self.archive and self.policy.mode == "sync":
            derived = [
                side
                for side, replica in self.replicas.items()
                if replica.capabilities.derived_names
            ]
        needed = digests_needed(left, right, self.policy, derived)
        if not needed:
            return left, right
        return (
            self._filled(left, self.left, needed),
            self._filled(right, self.right, needed),
        )

    def _filled(
        self, changes: ChangeSet, replica: Replica, keys: set[str]
    ) -> ChangeSet:
        """``changes`` with the digests of the ``keys`` it creates or
        modifies read (a file that cannot be read becomes a problem)."""
        todo = [
            c.now
            for k, c in changes.changes.items()
            if k in keys and c.now is not None and c.now.digest is None
        ]
        if not todo:
            return changes
        filled = fill_digests(replica, todo, self.policy.workers)
        updated = dict(changes.changes)
        problems = list(changes.problems)
        for entry in filled:
            if isinstance(entry, Problem):
                problems.append(entry._replace(side=changes.side))
                updated.pop(entry.key, None)
            elif isinstance(entry, Entry):
                updated[entry.key] = updated[entry.key]._replace(now=entry)
        return changes._replace(changes=updated, problems=problems)

    def apply(
        self,
        plan: Plan,
        *,
        on_event: Callable[[Event], None] | None = None,
        override_guards: bool = False,
    ) -> Report:
        """Carry out ``plan``; refuses a plan with guard warnings unless overridden."""
        if self.read_only or self.store is None:
            raise PlanError("this session was opened read-only")
        if plan.guards and not override_guards:
            self._refused = True
            raise SafetyLimitExceeded(
                "; ".join(plan.guards) + "; nothing was changed",
                hint="check the plan with 'accord sync --dry-run'; raise the limit "
                "with --max-delete / --max-delete-percent if this is intended",
            )
        if not self.archive:
            self.archive = self.store.load()
        self._create_absent()
        self.hook.before_apply(self, plan)
        started = time.time()
        self.store.run_started(self.run, self.who, self.command)
        self.left = spelled(self.left, plan.spelled.get(Side.LEFT))
        self.right = spelled(self.right, plan.spelled.get(Side.RIGHT))
        # the executor (copies, forked children, threads) is imported when a
        # plan is applied: a no-op run never loads it
        from accord.engine.apply import Executor

        executor = Executor(
            self.left,
            self.right,
            self.store,
            run=self.run,
            workers=self.policy.workers,
            trash=self.policy.trash,
            on_event=on_event,
        )
        report = executor.apply(plan, self.archive)
        report.notices = [
            *self.notices,
            *self._finish(report),
            *self.hook.after_apply(self, report),
            *self._purge_trash(),
        ]
        self._record_rules(report)
        status = "aborted" if report.aborted else "ok" if report.ok else "partial"
        self.store.run_finished(self.run, status, report.summary())
        report.notices += self._record_history(report, status, started)
        return report

    def _finish(self, report: Report) -> list[str]:
        """Let each place deliver what it batched (``Replica.finish``)."""
        notices: list[str] = []
        for replica in self._opened:
            try:
                notices += replica.finish()
            except AccordError as exc:
                report.aborted = report.aborted or (
                    f"{exc.message}; the changes for {replica.url} are kept "
                    "and sent by the next run"
                )
        return notices

    def _record_history(self, report: Report, status: str, started: float) -> list[str]:
        """One history record in each place this run changed (shared logs)."""
        notices = []
        for side, replica in self.replicas.items():
            done = [
                (o.action.op, o.action.key, o.action.new_key)
                for o in report.done
                if o.action.side is side and o.action.op not in ARCHIVE_ONLY
            ]
            if not done:
                continue
            data = history.record(
                run=self.run,
                who=self.who,
                command=self.command,
                started=started,
                finished=time.time(),
                status=status,
                side=side,
                other=self.replicas[side.other].url,
                changes=done,
            )
            notice = history.write(replica, data)
            if notice:
                notices.append(notice)
        return notices

    def _purge_trash(self) -> list[str]:
        """Remove trash runs older than the retention period."""
        if self.policy.trash_days <= 0:
            return []
        cutoff = time.strftime(
            "%Y%m%dT%H%M%SZ", time.gmtime(time.time() - self.policy.trash_days * 86400)
        )
        notices = []
        for replica in (self.left, self.right):
            try:
                runs = replica.trash_runs()
            except AccordError:
                continue
            for run in runs:
                if run < cutoff:
                    count = replica.trash_purge(run)
                    notices.append(
                        f"purged {count} items older than "
                        f"{self.policy.trash_days:g} days from the trash "
                        f"of {replica.url}"
                    )
        return notices


def _alike(
    left: Scanned, right: Scanned
) -> tuple[Scanned, Scanned, list[tuple[Entry, Entry]]]:
    """Both listings without the files both sides hold alike (same content
    by the digests they listed, same mtime and mode), and those pairs: a
    first sync records them without an action each (records: millions)."""
    theirs = {entry.key: entry for entry in right.fresh}
    if not any(entry.digest for entry in theirs.values()):
        return left, right, []
    agreed = []
    mine = []
    take = theirs.pop
    for entry in left.fresh:
        other = take(entry[0], None)
        if other is None:
            mine.append(entry)
        elif (  # same_content() and same mtime and mode, inlined: millions
            entry[6] is not None
            and entry[6] == other[6]
            and entry[1] == other[1] == FILE
            and entry[2] == other[2]
            and entry[3] == other[3]
            and entry[4] == other[4]
        ):
            agreed.append((entry, other))
        else:
            mine.append(entry)
            theirs[entry.key] = other  # still to compare, after the loop
    if not agreed:
        return left, right, []
    rest = list(theirs.values())
    return left._replace(fresh=mine), right._replace(fresh=rest), agreed


def _facts_name(replica: Replica) -> str:
    """The archive setting that keeps what a place learned about itself."""
    return f"facts:{replica.identity}"


def _rules_name(replica: Replica) -> str:
    """The archive setting that keeps a place's accepted ignore rules."""
    return f"ignore-rules:{replica.identity}"


def _leave_refused(left: ChangeSet, right: ChangeSet) -> tuple[ChangeSet, ChangeSet]:
    """A name refused on one side is left alone on both, and told once."""
    refused = {p.key for p in (*left.problems, *right.problems) if p.refused}
    if not refused:
        return left, right
    told = set(left.problems)
    right = right._replace(problems=[p for p in right.problems if p not in told])
    return guards.drop_keys(left, refused), guards.drop_keys(right, refused)


def _known(
    store: ArchiveStore, replica: Replica, side: Side, *, own_connection: bool = False
) -> Mapping[str, str] | KnownInOrder:
    """What a scan of ``side`` compares with: the archived versions read in
    step with the listing when the place lists in key order (memory for
    what changed only), else all of them in a dict."""
    if replica.scan_in_order:
        return KnownInOrder(
            store.versions_in_order(side, own_connection=own_connection),
            store.listing_token(side),
        )
    return store.versions(side, own_connection=own_connection)


def _archived_keys(
    store: ArchiveStore, count: int, left: Scanned, right: Scanned
) -> Collection[str]:
    """The archived keys, for a run that scanned without holding them: the
    keys each side did not show are archived; whether the keys a side
    listed as new or changed are is asked of the store, in batches. An
    empty archive (a first sync) holds none: nothing is asked (the listed
    keys of a first copy were asked about 500 at a time, all in vain)."""
    if not count:
        return frozenset()
    keys = ArchiveKeys(store, set(left.unseen) | set(right.unseen), set(), count)
    keys.learn([entry.key for scan in (left, right) for entry in scan.fresh])
    return keys


def _pool(max_workers: int) -> Any:
    """A thread pool; concurrent.futures is imported only when one is needed."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=max_workers)
