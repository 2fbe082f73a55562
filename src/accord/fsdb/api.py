"""``sync()`` and ``FSDBSync``: plantdb's own call shapes, run by accord.

``sync`` is a one-way mirror of the source's scans into the target (both
plantdb databases), as plantdb-client's ``FSDBSync.sync`` does, but with
plantdb's locks, without its bookkeeping, with new scans appearing whole,
and with changed files inside existing scans updated. Nothing is deleted
from the target unless ``delete=True`` (then into its trash).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from accord.engine.policy import Policy
from accord.engine.report import Event, Report
from accord.engine.session import Session
from accord.errors import AccordError
from accord.fsdb.hook import DEFAULT_TIMEOUT, FSDBHook
from accord.replica import Replica

__all__ = ["FSDBSync", "sync"]

#: ``progress(done, total)``: actions done so far, out of the plan's
Progress = Callable[[int, int], None]


def sync(
    source: str | Replica,
    target: str | Replica,
    scans: Iterable[str] | None = None,
    *,
    progress: Progress | None = None,
    scan_filter: str | None = None,
    delete: bool = False,
    lock_timeout: float = DEFAULT_TIMEOUT,
    scan_locks: bool = True,
    state_dir: str | Path | None = None,
    **policy: Any,
) -> Report:
    """Mirror the scans of ``source`` into ``target``; the report."""
    hook = FSDBHook(
        mode="on",
        scans=scans or (),
        scan_filter=scan_filter,
        lock_timeout=lock_timeout,
        scan_locks=scan_locks,
    )
    with Session(
        source,
        target,
        policy=Policy(mode="mirror", delete=delete, **policy),
        state_dir=state_dir,
        command="fsdb sync",
        hook=hook,
    ) as session:
        plan = session.plan()
        total = sum(1 for a in plan.actions if a.op not in ("mark_equal", "forget"))
        counter = _Counter(total, progress)
        if progress is not None:
            progress(0, total)
        report = session.apply(plan, on_event=counter)
        if progress is not None:
            progress(total, total)
        return report


class _Counter:
    """Turns the engine's events into ``progress(done, total)`` calls."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total = total
        self.done = 0
        self.progress = progress

    def __call__(self, event: Event) -> None:
        if event.kind in ("done", "skipped", "failed"):
            self.done += 1
            if self.progress is not None:
                self.progress(min(self.done, self.total), self.total)


class FSDBSync:
    """plantdb-client's ``FSDBSync`` shape: ``sync(thread=...)``,
    ``get_sync_progress()``, ``wait_for_sync(timeout)``, ``get_sync_error()``."""

    def __init__(
        self, source: str | Replica, target: str | Replica, **options: Any
    ) -> None:
        self.source = source
        self.target = target
        self.options = options
        self.report: Report | None = None
        self._progress = 0.0
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    def sync(
        self, source_scans: Iterable[str] | None = None, thread: bool = False
    ) -> Report | None:
        """Run the sync; with ``thread``, in the background (returns None at once)."""
        if self._thread is not None and self._thread.is_alive():
            raise AccordError("this sync is already running")
        self._done.clear()
        self._error = None
        self._progress = 0.0
        scans = list(source_scans) if source_scans is not None else None
        if not thread:
            self._run(scans, raise_error=True)
            return self.report
        self._thread = threading.Thread(
            target=self._run, args=(scans, False), name="accord-fsdb-sync", daemon=True
        )
        self._thread.start()
        return None

    def _run(self, scans: list[str] | None, raise_error: bool) -> None:
        try:
            self.report = sync(
                self.source,
                self.target,
                scans,
                progress=self._on_progress,
                **self.options,
            )
            self._progress = 100.0
        except BaseException as exc:
            self._error = exc
            if raise_error:
                raise
        finally:
            self._done.set()

    def _on_progress(self, done: int, total: int) -> None:
        self._progress = 100.0 * done / total if total else 100.0

    def get_sync_progress(self) -> float:
        """How far the sync is, in percent of its actions."""
        return self._progress

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Wait until the sync ends; False when ``timeout`` passed first."""
        return self._done.wait(timeout)

    def get_sync_error(self) -> BaseException | None:
        """The error that ended the sync, or None."""
        return self._error
