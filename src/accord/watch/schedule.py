"""When a watched pair runs: pure decisions, the time passed in.

A pair's :class:`Schedule` collects what its places said changed. A run
starts once the places have been quiet for ``quiet`` seconds and no file
told as being written is still open, or once the first change waited
``longest`` seconds (a folder that never rests still gets runs). Changes
told during a run count for the next one. A failed run is tried again
after a pause that doubles with each failure (:func:`backoff`), up to
``retry_cap``; one success resets it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from accord.errors import InvalidInput

__all__ = ["Schedule", "backoff", "parse_duration"]

_KEYS = 100_000  # past this many, changes are counted, not kept by key
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|min|h)?\s*$")


def parse_duration(text: str) -> float:
    """Seconds in ``30s``, ``500ms``, ``2m``, ``1h`` or a bare ``1.5``."""
    found = _DURATION.match(str(text))
    if not found:
        raise InvalidInput(
            f"{text!r} is not a duration",
            hint="give a number with a unit: 500ms, 30s, 2m or 1h",
        )
    seconds = float(found.group(1)) * _UNITS[found.group(2) or "s"]
    if not math.isfinite(seconds):
        raise InvalidInput(f"{text!r} is not a duration", hint="e.g. 30s")
    return seconds


def backoff(failures: int, first: float = 1.0, cap: float = 300.0) -> float:
    """The pause before the next try after ``failures`` failures in a row."""
    if failures <= 0:
        return 0.0
    return min(cap, first * 2 ** min(failures - 1, 62))


@dataclass
class Schedule:
    """One pair's pending changes, failures and polls."""

    quiet: float = 0.5
    longest: float = 10.0
    retry_first: float = 1.0
    retry_cap: float = 300.0
    #: the keys told changed since the last run started (at most ``_KEYS``)
    keys: set[str] = field(default_factory=set)
    #: other changes told (no key said, or past ``_KEYS``)
    others: int = 0
    first: float | None = None
    last: float | None = None
    #: when the changes told so far have been quiet long enough
    ready: float = 0.0
    #: files told as being written and not yet closed
    writing: set[str] = field(default_factory=set)
    failures: int = 0
    #: runs in a row that found the pair locked by another run
    busy: int = 0
    retry_at: float = 0.0
    running: bool = False

    def touched(
        self,
        now: float,
        key: str | None = None,
        writing: bool = False,
        count: int = 1,
        settled: bool = False,
    ) -> None:
        """A place said ``key`` (None: something) changed; ``settled``: the
        change is complete (a server's committed transaction), so no quiet
        period is needed for it."""
        if key is not None and len(self.keys) < _KEYS:
            self.keys.add(key)
        elif key is None or key not in self.keys:
            self.others += max(count, 1)
        self.first = now if self.first is None else self.first
        self.last = now
        self.ready = max(self.ready, now if settled else now + self.quiet)
        if key is None:
            return
        if writing:
            self.writing.add(key)
        else:
            self.writing.discard(key)

    @property
    def pending(self) -> int:
        """How many changes are pending: items told, plus changes of no
        known item (a server's transaction counts its items)."""
        return len(self.keys) + self.others

    def due_at(self) -> float | None:
        """When the next run should start; None while nothing is pending."""
        if self.pending == 0 or self.first is None:
            return None
        cap = self.first + self.longest
        at = cap if self.writing else min(self.ready, cap)
        return max(at, self.retry_at)

    def due(self, now: float) -> bool:
        at = self.due_at()
        return not self.running and at is not None and at <= now

    def started(self, now: float) -> int:
        """A run starts: what was pending is its work; the count it takes."""
        taken = self.pending
        self.keys = set()
        self.others = 0
        self.first = self.last = None
        self.ready = 0.0
        self.running = True
        return taken

    def finished(
        self, now: float, ok: bool, again: bool = False, busy: bool = False
    ) -> float:
        """A run ended. ``ok``: it reached the places (failures reset);
        ``again``: something was left for another run (a file changed while
        it was copied); ``busy``: another run held the lock (another
        machine's watcher, most likely: tried again soon, a short pause
        that grows to at most 5 s, and not counted as a failure). The
        pause before a retry (0 when none)."""
        self.running = False
        if ok:
            self.failures = self.busy = 0
            self.retry_at = 0.0
            if again:
                self.touched(now)
            return 0.0
        if busy:
            self.busy += 1
            pause = backoff(self.busy, self.retry_first / 4, min(5.0, self.retry_cap))
        else:
            self.failures += 1
            pause = backoff(self.failures, self.retry_first, self.retry_cap)
        self.retry_at = now + pause
        self.touched(now)
        return pause
