"""The FSDB mode of a run: plantdb's layout, locks and whole new scans.

Given to a ``Session`` as its run hook (``engine/hooks.py``). In ``auto``
mode it takes effect only when both places carry plantdb's marker
``romidb``; ``on`` (``--fsdb``) requires it. A place that declares
``capabilities.fsdb_server`` (plantdb's REST server) is an FSDB by nature:
it counts as carrying the marker, and no lock is taken there, as the server
locks each request itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from accord.engine.hooks import RunHook
from accord.engine.plan import ARCHIVE_ONLY
from accord.errors import AccordError, ConfigError
from accord.fsdb import layout
from accord.fsdb.locks import ScanLocks, needs_of
from accord.fsdb.place import FSDBView
from accord.model import FILE, Side

if TYPE_CHECKING:
    from accord.engine.apply import Report
    from accord.engine.plan import Plan
    from accord.engine.session import Session

__all__ = ["FSDBHook"]

DEFAULT_TIMEOUT = 30.0  # plantdb's own


class FSDBHook(RunHook):
    """plantdb's FSDB knowledge, for one run."""

    def __init__(
        self,
        *,
        mode: str = "auto",
        scans: Iterable[str] = (),
        scan_filter: str | None = None,
        lock_timeout: float = DEFAULT_TIMEOUT,
        scan_locks: bool = True,
    ) -> None:
        if mode not in ("auto", "on", "off"):
            raise ConfigError(f"the FSDB mode is auto, on or off, not {mode!r}")
        if lock_timeout < 0:
            raise ConfigError("--lock-timeout takes a number of seconds, 0 or more")
        self.mode = mode
        self.names = sorted(set(scans))
        self.pattern = _compiled(scan_filter)
        self.timeout = lock_timeout
        self.scan_locks = scan_locks
        self.active = False
        self.selected: list[str] | None = None
        self.views: dict[Side, FSDBView] = {}
        self._built: list[Side] = []
        self._locks: ScanLocks | None = None

    @property
    def selecting(self) -> bool:
        return bool(self.names) or self.pattern is not None

    # -- opening: is it an FSDB, which scans -------------------------------------
    def opened(self, session: Session) -> None:
        if self.mode == "off":
            self._refuse_selection()
            return
        missing = self._without_marker(session)
        if missing:
            if self.mode == "on":
                raise ConfigError(
                    f"{missing[0]} is not a plantdb database: there is no "
                    f"'{layout.MARKER}' file at its root; nothing was changed",
                    hint="check the path; a new database is made by plantdb "
                    f"(or an empty folder holding a '{layout.MARKER}' file)",
                )
            self._refuse_selection()
            return
        self.active = True
        session.wrap_places(self._view)
        # where accord builds new scans: a mirror's source is only read
        mirror = session.policy.mode == "mirror"
        self._built = [Side.RIGHT] if mirror else [Side.LEFT, Side.RIGHT]
        if self.selecting:
            self.selected = self._select(session)

    def _without_marker(self, session: Session) -> list[str]:
        missing = []
        for replica in session.replicas.values():
            if replica not in session._opened or replica.capabilities.merge:
                missing.append(replica.url)  # absent, or records: not an FSDB
                continue
            if replica.capabilities.fsdb_server:
                continue  # plantdb's own server: its marker is out of reach
            try:
                entry = replica.stat(layout.MARKER)
            except AccordError:
                entry = None
            if entry is None or entry.kind != FILE:
                missing.append(replica.url)
        return missing

    def _refuse_selection(self) -> None:
        if self.selecting:
            raise ConfigError(
                "--scan and --scan-filter choose scans of a plantdb database; "
                f"these places are not both one (no '{layout.MARKER}' at their "
                "roots); nothing was changed",
                hint="check the paths, or pass --fsdb",
            )

    def _view(self, side: Side, replica: Any) -> Any:
        view = FSDBView(replica)
        self.views[side] = view
        return view

    def _select(self, session: Session) -> list[str]:
        """The scans to sync: each name given must exist (on the source, or
        on either side of a two-way sync), plus those matching the filter."""
        sides = [Side.LEFT] if session.policy.mode == "mirror" else list(self.views)
        found: set[str] = set()
        for side in sides:
            found |= self.views[side].scans()
        unknown = [name for name in self.names if name not in found]
        if unknown:
            where = " or ".join(self.views[side].inner.url for side in sides)
            known = ", ".join(sorted(found)[:10]) or "none"
            raise ConfigError(
                f"no scan named {', '.join(repr(n) for n in unknown)} in {where}; "
                "nothing was changed",
                hint=f"the scans there: {known}" + (" ..." if len(found) > 10 else ""),
            )
        chosen = set(self.names)
        if self.pattern is not None:
            matched = {name for name in found if self.pattern.search(name)}
            if not matched:
                session.notices.append(
                    f"no scan matches --scan-filter '{self.pattern.pattern}'"
                )
            chosen |= matched
        return sorted(chosen)

    def ignore(self) -> list[str]:
        if not self.active:
            return []
        # the layout itself is applied by the views (cheaper than rules);
        # a choice of scans is a rule, so the others' archive rows stay
        if self.selected is not None:
            return layout.selection_patterns(self.selected)
        return []

    # -- applying: locks, then whole scans into place -----------------------------
    def before_apply(self, session: Session, plan: Plan) -> None:
        if not self.active:
            return
        locks = ScanLocks(session.who, self.timeout, break_lock=session.break_lock)
        self._locks = locks
        actions = [a for a in plan.actions if a.op not in ARCHIVE_ONLY]
        for side, view in sorted(self.views.items()):
            if view.inner.capabilities.fsdb_server:
                continue  # plantdb's server: it locks each request itself
            view.stage([a for a in actions if a.side is side])
            needs = needs_of(actions, side)
            if side in self._built:
                needs.written |= view.staged  # renamed into place at the end
                needs.read -= needs.written
            if session.policy.db_lock == layout.ROOT_LOCK:
                pass  # --db-lock lock: the session holds it at both roots
            elif needs.written:
                locks.take_root(view)
            elif needs:
                locks.check_root(view)
            if self.scan_locks and needs:
                locks.take(view, needs)

    def pending(self) -> bool:
        """Scans built by an earlier run, still to be put in place."""
        return any(self.views[side].staged for side in self._built)

    def after_apply(self, session: Session, report: Report) -> list[str]:
        if not self.active:
            return []
        notices = []
        for side in sorted(self._built):
            view = self.views[side]
            undone = _unfinished(report, side)
            try:
                notices += view.finish_scans(undone)
            except AccordError as exc:
                notices.append(f"new scans of {view.inner.url}: {exc}")
        return notices + self._release()

    def close(self, session: Session) -> None:
        session.notices += self._release()

    def _release(self) -> list[str]:
        locks, self._locks = self._locks, None
        return locks.release() if locks is not None else []


def _unfinished(report: Report, side: Side) -> set[str]:
    """The scans of ``side`` with an action this run did not complete."""
    done = {(o.action.op, o.action.key, o.action.side) for o in report.done}
    scans = set()
    for action in report.plan.actions:
        if action.side is side and (action.op, action.key, side) not in done:
            if action.op in ARCHIVE_ONLY:
                continue
            scans.add(layout.scan_of(action.key))
    return scans


def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"--scan-filter {pattern!r} is not a regular expression: {exc}",
            hint="for example --scan-filter '^arabido'",
        ) from exc
