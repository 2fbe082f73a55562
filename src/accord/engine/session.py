"""Session: one run over a pair of places, step by step.

    with Session("~/notes", "/mnt/backup/notes") as session:
        plan = session.plan()          # detect both sides, reconcile, guard
        report = session.apply(plan)   # propagate, record

Opening a session opens both places, the pair's archive, and (unless it is
read-only) takes both places' locks. An interrupted earlier run is noticed
through its journal; its temporary files are removed and the new plan simply
finishes its work.

Here: the run's lifetime and its steps (detect, plan, apply); its other
parts, combined in ``Session``: ``session_open`` (opening and locking the
places, recovery), ``session_checks`` (safety checks on the places),
``session_rules`` (ignore rules), ``session_end`` (an applied run's end).
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from accord.arrowfile import let_go_mapped
from accord.engine import guards, rules, twins
from accord.engine.ahead import Ahead
from accord.engine.child import Child, can_fork
from accord.engine.collector import collector_paused
from accord.engine.detect import (
    ChangeSet,
    KnownInOrder,
    Scanned,
    compare,
    fill_digests,
    lists_in_shares,
    scan_shared,
    scan_side,
)
from accord.engine.hooks import RunHook
from accord.engine.names import Gate
from accord.engine.plan import Plan
from accord.engine.policy import Policy
from accord.engine.reconcile import digests_needed, reconcile
from accord.engine.report import Event, Report
from accord.engine.session_checks import SessionChecks
from accord.engine.session_checks import leave_refused as _leave_refused
from accord.engine.session_end import SessionEnd
from accord.engine.session_open import SessionOpening
from accord.engine.session_rules import SessionRules
from accord.engine.session_rules import rules_name as _rules_name
from accord.engine.spelled import spelled, unspelled
from accord.errors import (
    AccordError,
    ConfigError,
    PlanError,
    SafetyLimitExceeded,
)
from accord.keys import IgnoreRules
from accord.model import FILE, Entry, Problem, Side
from accord.registry import open_replica, reopen_url
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


class Session(SessionOpening, SessionChecks, SessionRules, SessionEnd):
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
        #: what the places were opened from (a saved plan opens them again)
        self._typed = {
            "left": left if isinstance(left, str) else None,
            "right": right if isinstance(right, str) else None,
        }
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

    # -- the steps ----------------------------------------------------------
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
                shared = None if versions else scan_shared(replica, side, ignore, gate)
                scans.append(shared or scan_side(replica, versions, side, ignore, gate))
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
        if store.is_empty() and all(map(lists_in_shares, (self.left, self.right))):
            return self._scan_first(gates, ignore)
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

    def _scan_first(
        self, gates: dict[Side, Gate], ignore: IgnoreRules | None
    ) -> tuple[Scanned, Scanned, Collection[str]]:
        """A first sync of two local folders (nothing archived): each side
        listed in two shares (``scan_shared``: both cores), one after the
        other, or in one walk where its shares do not make one listing."""
        scans = []
        for side, replica in self.replicas.items():
            shared = scan_shared(replica, side, ignore, gates[side])
            scans.append(shared or scan_side(replica, {}, side, ignore, gates[side]))
        return scans[0], scans[1], frozenset()

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
        from accord.engine import columns  # records: a folder's run never needs it

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
        """What this run would do, guards checked.

        The garbage collector is paused meanwhile: planning makes objects
        per item that live as long as the plan (changes, actions) and no
        cycles, and the collector's passes walked them again and again
        (its full passes were a tenth of a first copy's plan)."""
        with collector_paused():
            return self._plan()

    def _plan(self) -> Plan:
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
        for name, shown in (("left", plan.left), ("right", plan.right)):
            again = reopen_url(self._typed[name], shown)
            if again != shown:
                plan.opens[name] = again
        seen = {Side.LEFT: left.seen, Side.RIGHT: right.seen}
        plan.guards.extend(guards.mass_deletes(plan, self.archive, self.policy, seen))
        return plan

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


def _known(
    store: ArchiveStore, replica: Replica, side: Side, *, own_connection: bool = False
) -> Mapping[str, str] | KnownInOrder:
    """What a scan of ``side`` compares with: the archived versions read in
    step with the listing when the place lists in key order (memory for
    what changed only), else all of them in a dict."""
    if replica.scan_in_order:
        return KnownInOrder.of_runs(
            store.version_runs_in_order(side, own_connection=own_connection),
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
