"""Polling a place that cannot tell its changes (SFTP, S3, fsspec).

Every ``interval`` seconds, a thread lists the place (its plain scan: one
listing request per 1,000 keys on S3, one directory walk on SFTP) and
compares a fingerprint of every key and version with the last one; a
difference, or a place that cannot be listed, is told as a change, and the
run that follows does the work (or says what is wrong).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable

from accord.keys import IgnoreRules
from accord.model import Entry
from accord.registry import open_replica
from accord.replica import Touched

__all__ = ["Poller", "fingerprint"]


def fingerprint(url: str, ignore: IgnoreRules | None = None) -> str:
    """A digest of every key and version the place at ``url`` lists now."""
    replica = open_replica(url)
    items: list[str] = []
    try:
        replica.open()
        for item in replica.scan(ignore):
            if isinstance(item, Entry):
                items.append(f"{item.key}\0{item.version}")
            elif not isinstance(item, str):
                items.append(f"{item.key}\0?")  # a problem: its key only
    finally:
        replica.close()
    digest = hashlib.blake2b(digest_size=16)
    for line in sorted(items):
        digest.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()


class Poller:
    """A thread that polls one place until ``stop()``."""

    def __init__(
        self,
        url: str,
        interval: float,
        touched: Callable[[Touched], None],
        ignore: IgnoreRules | None = None,
    ) -> None:
        self._url = url
        self._interval = interval
        self._touched = touched
        self._ignore = ignore
        self._stopped = threading.Event()
        self._last: str | None = None
        self._thread = threading.Thread(
            target=self._loop, name=f"poll {url}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(1)

    def _loop(self) -> None:
        # no first fingerprint: the first poll tells a change, so a change
        # made between the first run's listing and this thread's is not lost
        while not self._stopped.wait(self._interval):
            try:
                now: str | None = fingerprint(self._url, self._ignore)
            except Exception:  # the run that follows says what
                now = None
            if now is None or now != self._last:
                self._touched(Touched(None))
            self._last = now
