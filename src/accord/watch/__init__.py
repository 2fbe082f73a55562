"""Continuous sync: ``accord watch``.

    from accord.watch import Pair, Watcher
    watcher = Watcher([Pair("~/papers", "hub://127.0.0.1:8470/papers")])
    watcher.run()  # until watcher.stop()

``schedule`` decides when a pair runs (pure: debouncing, backoff),
``poll`` lists places that cannot tell their changes, ``loop`` runs the
pairs. See ``docs/watch.md``.
"""

from __future__ import annotations

from accord.watch.loop import Pair, PairStatus, Watcher, WatchEvent
from accord.watch.schedule import Schedule, backoff, parse_duration

__all__ = [
    "Pair",
    "PairStatus",
    "Schedule",
    "WatchEvent",
    "Watcher",
    "backoff",
    "parse_duration",
]
