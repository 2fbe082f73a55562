"""Syncs started from the dashboard, run inside the hub's process.

A side is a collection of the hub (opened as the user who asked, with
their grants: :class:`~accord.hub.place.CollectionPlace`) or a place the
hub's admin named for them (``places``). Everything goes through accord's
own engine: *check* opens a side, *items* lists both, *preview* is the
engine's plan, *start* applies it in a background thread. A subset (the
keys a user selected) restricts the plan to those items and the folders
above them. Progress and log lines are ``progress`` events of the hub's
feed (``/api/v1/events``), so every page watching sees them; one pair runs
once at a time (the engine's lock in each place also keeps out other
processes and machines). Errors are told as text: the message and hint of
an accord error, never a traceback, never a place's URL.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from accord.engine.apply import Event, Report
from accord.engine.plan import ARCHIVE_ONLY, Action, Plan
from accord.engine.policy import Policy
from accord.engine.session import Session
from accord.errors import AccordError, InvalidInput
from accord.hub.accounts import Account
from accord.hub.place import CollectionPlace
from accord.hub.places import find_place
from accord.hub.store import Hub
from accord.model import DIR, parent_of
from accord.registry import open_replica
from accord.replica import Replica

__all__ = [
    "ITEMS_LIMIT",
    "Runs",
    "SideSpec",
    "check_side",
    "error_text",
    "list_items",
    "preview",
    "restrict",
]

ITEMS_LIMIT = 20000  # items listed to a browser
_LOG_LIMIT = 2000  # log lines a run keeps
_EVERY = 0.25  # seconds between two progress events of a run
_KEPT = 200  # finished runs remembered (the feed and history keep the rest)
log = logging.getLogger("accord.hub")


class SideSpec(NamedTuple):
    """One side as a browser names it."""

    kind: str  # collection or place
    name: str

    @classmethod
    def parse(cls, data: Any) -> SideSpec:
        if not isinstance(data, dict):
            raise InvalidInput("a side is {kind, name}")
        kind, name = data.get("kind"), data.get("name")
        if kind not in ("collection", "place") or not isinstance(name, str):
            raise InvalidInput("a side is a collection or a place, by its name")
        if not name or len(name) > 200:
            raise InvalidInput("a side needs a name")
        return cls(kind, name)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"


def _open(hub: Hub, account: Account, spec: SideSpec) -> Replica:
    if spec.kind == "collection":
        return CollectionPlace(hub, account, spec.name)
    return open_replica(find_place(hub.folder, spec.name, account).url)


def error_text(exc: BaseException, replicas: Iterable[tuple[Replica, str]] = ()) -> str:
    """What a browser is told of a failure: the message and hint, with
    each place's URL replaced by its label."""
    if isinstance(exc, AccordError):
        text = str(exc)
    else:
        log.error("dashboard run failed", exc_info=exc)
        text = f"an unexpected error ({type(exc).__name__}); see the hub's log"
    return hidden(text, replicas)


def hidden(text: str, replicas: Iterable[tuple[Replica, str]]) -> str:
    """``text`` with each place's URL replaced by its label."""
    for replica, label in replicas:
        names = {getattr(replica, "url", ""), getattr(replica, "identity", "")}
        for url in sorted(names, key=len, reverse=True):
            if url:
                text = text.replace(url, label)
    return text


def check_side(hub: Hub, account: Account, spec: SideSpec) -> dict[str, Any]:
    """Test the connection to a side: open it, count what it holds."""
    replica = _open(hub, account, spec)
    try:
        replica.open()
        files = size = 0
        for entry in replica.entries():
            if entry.kind != DIR:
                files += 1
                size += entry.size
        return {
            "ok": True,
            "items": files,
            "bytes": size,
            "read_only": bool(replica.capabilities.read_only),
        }
    except AccordError as exc:
        return {"ok": False, "error": error_text(exc, [(replica, spec.label)])}
    finally:
        replica.close()


def list_items(
    hub: Hub, account: Account, left: SideSpec, right: SideSpec
) -> dict[str, Any]:
    """The files and links of both sides, by key: size, and on which side."""
    found: dict[str, dict[str, Any]] = {}
    for side, spec in (("left", left), ("right", right)):
        replica = _open(hub, account, spec)
        try:
            if not replica.exists():
                continue
            replica.open()
            for entry in replica.entries():
                if entry.kind == DIR:
                    continue
                item = found.setdefault(
                    entry.key, {"key": entry.key, "left": None, "right": None}
                )
                item[side] = entry.size
        finally:
            replica.close()
    keys = sorted(found)
    return {
        "items": [found[k] for k in keys[:ITEMS_LIMIT]],
        "more": max(0, len(keys) - ITEMS_LIMIT),
    }


def _wanted(keys: Iterable[str]) -> tuple[set[str], set[str]]:
    wanted = set(keys)
    above: set[str] = set()
    for key in wanted:
        parent = parent_of(key)
        while parent and parent not in above:
            above.add(parent)
            parent = parent_of(parent)
    return wanted, above


def restrict(plan: Plan, keys: Iterable[str] | None) -> Plan:
    """``plan`` with only the actions and conflicts of ``keys`` (and what
    they, or what is below them, need: the folders above). Pure."""
    if keys is None:
        return plan
    wanted, above = _wanted(keys)

    def keep(key: str | None) -> bool:
        if key is None:
            return False
        if key in wanted or key in above:
            return True
        parent = parent_of(key)
        while parent:
            if parent in wanted:
                return True
            parent = parent_of(parent)
        return False

    def kept(action: Action) -> bool:
        if action.key in above and action.op == "delete":
            return False  # a folder above a selected item stays
        return keep(action.key) or keep(action.new_key)

    return Plan(
        [a for a in plan.actions if kept(a)],
        [c for c in plan.conflicts if keep(c.key)],
        [p for p in plan.problems if keep(getattr(p, "key", None))],
        left=plan.left,
        right=plan.right,
        mode=plan.mode,
        first_sync=plan.first_sync,
        guards=plan.guards,
        refresh=plan.refresh,
        agreed=[(a, b) for a, b in plan.agreed if keep(a.key)],
    )


def _action(action: Action) -> dict[str, Any]:
    return {
        "op": action.op,
        "key": action.key,
        "new_key": action.new_key,
        "side": action.side.name.lower() if action.side is not None else None,
        "size": action.size,
        "reason": action.reason,
    }


def _mode(value: Any) -> str:
    if value not in ("sync", "mirror"):
        raise InvalidInput("the mode is sync or mirror")
    return str(value)


class _Pair:
    """Both sides of a run, opened inside a session."""

    def __init__(
        self,
        hub: Hub,
        account: Account,
        left: SideSpec,
        right: SideSpec,
        mode: str,
        *,
        read_only: bool,
    ) -> None:
        self.left, self.right = left, right
        self.replicas = [
            (_open(hub, account, left), left.label),
            (_open(hub, account, right), right.label),
        ]
        self.session = Session(
            self.replicas[0][0],
            self.replicas[1][0],
            policy=Policy(mode=_mode(mode)),
            state_dir=Path(hub.folder) / "dashboard",
            who=f"{account.user} (dashboard)",
            read_only=read_only,
            command=mode,
        )

    def error(self, exc: BaseException) -> str:
        return error_text(exc, self.replicas)

    def hide(self, text: str) -> str:
        return hidden(text, self.replicas)


def preview(
    hub: Hub,
    account: Account,
    left: SideSpec,
    right: SideSpec,
    mode: str,
    keys: list[str] | None,
) -> dict[str, Any]:
    """The engine's plan for the pair (restricted to ``keys``), not applied."""
    pair = _Pair(hub, account, left, right, mode, read_only=True)
    try:
        with pair.session as session:
            plan = restrict(session.plan(), keys)
            notices = list(session.notices)
    except AccordError as exc:
        return {"ok": False, "error": pair.error(exc)}
    return {
        "ok": True,
        "actions": [_action(a) for a in plan.actions if a.op not in ARCHIVE_ONLY],
        "conflicts": [{"key": c.key, "reason": c.reason} for c in plan.conflicts],
        "problems": [pair.hide(str(p)) for p in plan.problems],
        "guards": [pair.hide(g) for g in plan.guards],
        "notices": [pair.hide(n) for n in notices],
        "bytes": sum(a.size for a in plan.actions),
    }


@dataclass
class RunState:
    """What a browser may know of a run, now."""

    id: str
    user: str
    label: str
    collection: str | None
    state: str = "planning"  # planning, running, done, failed
    done: int = 0
    total: int = 0
    bytes: int = 0
    log: list[str] = field(default_factory=list)
    error: str | None = None
    summary: dict[str, Any] | None = None
    started: float = field(default_factory=time.time)

    def as_json(self) -> dict[str, Any]:
        return {
            "run": self.id,
            "user": self.user,
            "label": self.label,
            "collection": self.collection,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "bytes": self.bytes,
            "log": self.log[-200:],
            "error": self.error,
            "summary": self.summary,
            "started": self.started,
        }


def _tell(event: Event) -> str:
    action = event.action
    assert action is not None
    where = action.side.name.lower() if action.side is not None else ""
    target = f" -> {action.new_key}" if action.new_key else ""
    text = f"{event.kind}: {action.op} {action.key}{target} ({where})"
    return f"{text}: {event.message}" if event.message else text


class Runs:
    """The dashboard's runs in this process; one run per pair at a time."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.runs: dict[str, RunState] = {}
        self.busy: set[frozenset[SideSpec]] = set()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def get(self, run: str, account: Account) -> RunState | None:
        state = self.runs.get(run)
        if state is None or not (account.admin or state.user == account.user):
            return None
        return state

    def mine(self, account: Account) -> list[RunState]:
        found = [
            r for r in self.runs.values() if account.admin or r.user == account.user
        ]
        return sorted(found, key=lambda r: r.started, reverse=True)[:50]

    def start(
        self,
        account: Account,
        left: SideSpec,
        right: SideSpec,
        mode: str,
        keys: list[str] | None,
    ) -> RunState:
        """Start a run in the background; refused while the pair runs."""
        _mode(mode)
        pair_key = frozenset((left, right))
        with self.lock:
            if pair_key in self.busy:
                raise InvalidInput(
                    f"{left.label} and {right.label} are being synced already; "
                    "wait for that run to finish"
                )
            self.busy.add(pair_key)
        collection = next(
            (s.name for s in (left, right) if s.kind == "collection"), None
        )
        arrow = "<->" if mode == "sync" else "->"
        state = RunState(
            uuid.uuid4().hex[:12],
            account.user,
            f"{left.label} {arrow} {right.label}",
            collection,
        )
        self.runs[state.id] = state
        self._forget_old()
        thread = threading.Thread(
            target=self._run,
            args=(state, account, left, right, mode, keys, pair_key),
            name=f"dashboard-run-{state.id}",
            daemon=True,
        )
        thread.start()
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        return state

    def _forget_old(self) -> None:
        """Keep the latest ``_KEPT`` finished runs."""
        finished = [r for r in self.runs.values() if r.state in ("done", "failed")]
        finished.sort(key=lambda r: r.started)
        for old in finished[: max(0, len(finished) - _KEPT)]:
            self.runs.pop(old.id, None)

    def wait(self, seconds: float) -> bool:
        """Wait for the runs in progress (a server stopping); True when
        none is left. Each change a run makes is whole and guarded, so a
        run cut short is finished by the next one."""
        deadline = time.monotonic() + seconds
        for thread in list(self.threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)

    def _run(
        self,
        state: RunState,
        account: Account,
        left: SideSpec,
        right: SideSpec,
        mode: str,
        keys: list[str] | None,
        pair_key: frozenset[SideSpec],
    ) -> None:
        reporter = _Reporter(self.hub, account, state)
        pair: _Pair | None = None
        try:
            pair = _Pair(self.hub, account, left, right, mode, read_only=False)
            reporter.hide = pair.hide
            with ExitStack() as stack:
                session = stack.enter_context(pair.session)
                plan = restrict(session.plan(), keys)
                state.total = len([a for a in plan.actions if a.op not in ARCHIVE_ONLY])
                state.state = "running"
                reporter.line(f"started: {state.total} changes to make")
                report = session.apply(plan, on_event=reporter.on_event)
            self._finished(state, report, reporter)
        except BaseException as exc:  # told to the browser as text
            state.error = pair.error(exc) if pair else error_text(exc)
            state.state = "failed"
            reporter.line(f"failed: {state.error}")
        finally:
            with self.lock:
                self.busy.discard(pair_key)
            reporter.publish(force=True)

    @staticmethod
    def _finished(state: RunState, report: Report, reporter: _Reporter) -> None:
        state.summary = report.summary()
        state.done = state.total
        for notice in report.notices:
            reporter.line(f"notice: {notice}")
        if report.aborted:
            state.state = "failed"
            state.error = reporter.hide(report.aborted)
            reporter.line(f"stopped: {report.aborted}")
            return
        state.state = "done"
        counts = state.summary
        reporter.line(
            f"done: {counts['changed']} changed, {counts['skipped']} skipped, "
            f"{counts['failed']} failed, {counts['conflicts']} conflicts"
        )


class _Reporter:
    """Turns the engine's events into the run's state, its log and (at most
    every ``_EVERY`` seconds) a ``progress`` event of the hub's feed."""

    def __init__(self, hub: Hub, account: Account, state: RunState) -> None:
        self.hub, self.account, self.state = hub, account, state
        self.fresh: list[str] = []
        self.last = 0.0
        self.hide: Callable[[str], str] = str

    def line(self, text: str) -> None:
        text = self.hide(text)
        self.state.log.append(text)
        del self.state.log[:-_LOG_LIMIT]
        self.fresh.append(text)
        self.publish()

    def on_event(self, event: Event) -> None:
        if event.kind == "bytes":
            self.state.bytes += event.size
        elif event.kind in ("done", "skipped", "failed") and event.action:
            if event.action.op not in ARCHIVE_ONLY:
                self.state.done += 1
                self.line(_tell(event))
        elif event.kind == "notice" and event.message:
            self.line(f"notice: {event.message}")
        self.publish()

    def publish(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < _EVERY:
            return
        self.last = now
        from accord.hub.events import publish

        state = self.state
        data = {
            "run": state.id,
            "source": "dashboard",
            "label": state.label,
            "state": state.state,
            "done": state.done,
            "total": state.total,
            "bytes": state.bytes,
            "log": self.fresh[-100:],
            "error": state.error,
        }
        self.fresh = []
        try:
            publish(self.hub, self.account, state.collection, "progress", data)
        except Exception as exc:  # the feed is a view; the run goes on
            log.warning("cannot publish a run's progress", exc_info=exc)
