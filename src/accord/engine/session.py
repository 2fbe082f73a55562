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
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from accord.engine import guards, history
from accord.engine.apply import Event, Executor, Report
from accord.engine.child import Child, can_fork
from accord.engine.detect import ChangeSet, Scanned, compare, fill_digests, scan_side
from accord.engine.names import Gate
from accord.engine.plan import ARCHIVE_ONLY, Plan
from accord.engine.policy import Policy
from accord.engine.reconcile import digests_needed, reconcile
from accord.errors import (
    AccordError,
    AlreadyExists,
    ConfigError,
    LockHeld,
    PermissionDenied,
    PlanError,
    PreconditionFailed,
    SafetyLimitExceeded,
    Unreachable,
)
from accord.keys import IgnoreRules
from accord.model import FILE, Entry, Problem, Side
from accord.registry import open_replica
from accord.replica import Replica
from accord.state import lock
from accord.state.store import (
    ArchiveEntry,
    ArchiveStore,
    ArchiveView,
    default_state_dir,
)

__all__ = ["IGNORE_FILE", "Session", "default_who", "new_run_id"]

IGNORE_FILE = ".accordignore"


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
    ) -> None:
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
        self._absent: set[Side] = set()  # sides to create when applying
        self._refused = False  # a guard stopped the run: leave the places as found

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
        if self.left.identity == self.right.identity:
            raise AccordError(
                f"both sides are the same place: {self.left.url}",
                hint="name two different folders",
            )
        self.store = ArchiveStore.open(
            self.state_dir, self.left.identity, self.right.identity
        )
        first = self.store.is_empty()
        for side, replica in self.replicas.items():
            self._open_side(side, replica, first)
        if len(self._absent) == 2:
            raise ConfigError(
                f"neither {self.left.url} nor {self.right.url} exists",
                hint="check both paths; one of them should hold the data",
            )
        if not first:
            self._check_empty_roots()
        if self.policy.marker:
            for replica in (self.left, self.right):
                self._check_marker(replica, self.policy.marker)
        if not self.read_only:
            for replica in self._opened:
                try:
                    self.notices += lock.acquire(
                        replica, self._lock_info, break_lock=self.break_lock
                    )
                except PermissionDenied:
                    if not (self.policy.mode == "mirror" and replica is self.left):
                        raise
                    # a read-only mirror source: nothing of ours writes there
                    self.notices.append(
                        f"{replica.url} cannot be written, so it is not locked; "
                        "it is only read"
                    )
                    continue
                self._locked.append(replica)
            if self.policy.db_lock:
                for replica in (self.left, self.right):
                    self._take_db_lock(replica, self.policy.db_lock)
            self._recover()

    def _check_empty_roots(self) -> None:
        """Refuse a side that holds nothing now (an empty mount point) before
        anything, even a lock, is written to either side."""
        if self.policy.allow_empty:
            return
        assert self.store is not None
        for side, replica in self.replicas.items():
            if replica in self._opened and replica.is_empty_root():
                held = self.store.count()
                guards.check_empty_root(side, replica.url, held, self.policy)

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
        self._absent.clear()

    def close(self) -> None:
        self._release_db_locks()
        for replica in self._locked:
            try:
                lock.release(replica, self._lock_info)
            except AccordError:
                self.notices.append(f"could not release the lock of {replica.url}")
        self._locked = []
        for replica in self._opened:
            if self._refused:
                replica.leave_as_found()
            replica.close()
        self._opened = []
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
    def ignore_rules(self) -> IgnoreRules:
        """``.accordignore`` of both sides plus the session's excludes."""
        own = [f"/{name}" for name in (self.policy.marker, self.policy.db_lock) if name]
        rules = IgnoreRules([*own, *self.exclude])
        for replica in (self.left, self.right):
            entry = replica.stat(IGNORE_FILE)
            if entry is not None and entry.kind == FILE:
                with replica.open_read(IGNORE_FILE) as stream:
                    text = stream.read().decode("utf-8", "replace")
                rules = rules + IgnoreRules(text.splitlines())
        return rules

    def detect(self) -> tuple[ChangeSet, ChangeSet]:
        """Both sides' changes since the archive, scanned concurrently.

        The listings are compared with the archived versions only; archive
        rows are then read for just the keys that differ.
        """
        assert self.store is not None
        rules = self.ignore_rules()
        ignore = rules if rules else None
        left, right, keys = self._scan_both(self.store, ignore)
        self.archive = ArchiveView(self.store, keys)
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
    ) -> tuple[Scanned, Scanned, dict[str, str]]:
        """Scan both sides at once, each against its archived versions; also
        the archived keys. Where it is safe (a local tree) the right side is
        scanned in a child process: two cores instead of one shared GIL."""
        if self._absent:
            return self._scan_present(store, ignore)
        gates = {side: self._gate(side) for side in (Side.LEFT, Side.RIGHT)}
        if self.right.fork_safe and can_fork() and not store.is_empty():
            child = Child(
                lambda: scan_side(
                    self.right,
                    store.versions(Side.RIGHT, own_connection=True),
                    Side.RIGHT,
                    ignore,
                    gates[Side.RIGHT],
                )
            )
            try:
                known = store.versions(Side.LEFT)
                left = scan_side(self.left, known, Side.LEFT, ignore, gates[Side.LEFT])
                right = child.result()
            finally:
                child.cancel()
            self.right.set_scan_state(right.state)
            return left, right, known
        known = store.versions(Side.LEFT)
        known_right = store.versions(Side.RIGHT)
        with _pool(2) as pool:
            futures = [
                pool.submit(
                    scan_side, self.left, known, Side.LEFT, ignore, gates[Side.LEFT]
                ),
                pool.submit(
                    scan_side,
                    self.right,
                    known_right,
                    Side.RIGHT,
                    ignore,
                    gates[Side.RIGHT],
                ),
            ]
            return futures[0].result(), futures[1].result(), known

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
        try:
            for changes, replica in ((left, self.left), (right, self.right)):
                guards.check_emptied(changes, replica.url, self.archive, self.policy)
        except SafetyLimitExceeded:
            self._refused = True
            raise
        left, right = _leave_refused(left, right)
        self._refreshed(left)
        self._refreshed(right)
        left, right = self._with_digests(left, right)
        clashes: list[Problem] = []
        if not (
            self.left.capabilities.case_sensitive
            and self.right.capabilities.case_sensitive
        ):
            clashes = guards.case_clashes(left, right, self.archive)
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
            derived=[
                side
                for side, replica in self.replicas.items()
                if replica.capabilities.derived_names
            ],
        )
        plan.problems.extend(clashes)
        plan.guards.extend(guards.mass_deletes(plan, self.archive, self.policy))
        return plan

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
        result = []
        for changes, replica in ((left, self.left), (right, self.right)):
            todo = [
                c.now
                for k, c in changes.changes.items()
                if k in needed and c.now is not None and c.now.digest is None
            ]
            filled = fill_digests(replica, todo, self.policy.workers)
            updated = dict(changes.changes)
            problems = list(changes.problems)
            for entry in filled:
                if isinstance(entry, Problem):
                    problems.append(entry._replace(side=changes.side))
                    updated.pop(entry.key, None)
                elif isinstance(entry, Entry):
                    updated[entry.key] = updated[entry.key]._replace(now=entry)
            result.append(changes._replace(changes=updated, problems=problems))
        return result[0], result[1]

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
        started = time.time()
        self.store.run_started(self.run, self.who, self.command)
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
        report.notices = [*self.notices, *self._finish(report), *self._purge_trash()]
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


def _leave_refused(left: ChangeSet, right: ChangeSet) -> tuple[ChangeSet, ChangeSet]:
    """A name refused on one side is left alone on both, and told once."""
    refused = {p.key for p in (*left.problems, *right.problems) if p.refused}
    if not refused:
        return left, right
    told = set(left.problems)
    right = right._replace(problems=[p for p in right.problems if p not in told])
    return guards.drop_keys(left, refused), guards.drop_keys(right, refused)


def _pool(max_workers: int) -> Any:
    """A thread pool; concurrent.futures is imported only when one is needed."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=max_workers)
