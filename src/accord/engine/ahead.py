"""The local side's listing, started while the other side connects.

Opening a place on an SSH server takes a few hundred milliseconds (the
connection, the server's Python, the agent's start), which a run spent
waiting before it listed anything. When the left side is a local tree and
the right one is not, the session starts the left side's listing in a
forked child process (``engine/child.py``) as soon as the left side is
open and locked, so it runs on the other core while the right side
connects; the session takes the result when it detects.

Nothing is trusted that the listing could not have known. It starts
after the left side is locked, as a listing always does, and not when a
journal is to be recovered first. Its ignore rules are those the run
will most likely apply (the right side's ``.accordignore`` is not read
yet: a first sync guesses it has none, a later one applies the accepted
rules anyway); the session takes the listing only when the rules it
applies are exactly those, and the place is the one that was listed (a
run hook may have put a view in front of it). The names it reports are
checked again with the run's full name gate (which needs the right
side's capabilities). Otherwise the child is stopped and the session
lists as before.
"""

from __future__ import annotations

from accord.engine.child import Child
from accord.engine.detect import KnownInOrder, Scanned, scan_side
from accord.engine.names import Gate
from accord.keys import IgnoreRules
from accord.model import Side
from accord.replica import Replica
from accord.state.store import ArchiveStore
from accord.tuples import NamedTuple

__all__ = ["Ahead", "Listed"]


class Listed(NamedTuple):
    """A side's listing against its archived versions, and how many
    archive rows there are (the archived keys' count)."""

    scanned: Scanned
    rows: int


def _listing(
    replica: Replica,
    store: ArchiveStore | None,
    side: Side,
    ignore: IgnoreRules | None,
) -> Listed:
    """In the child: the listing, merged with the archive read in order
    (no archive yet: everything is new)."""
    if store is None:
        return Listed(scan_side(replica, {}, side, ignore, Gate(replica.url)), 0)
    known = KnownInOrder.of_runs(store.version_runs_in_order(side, own_connection=True))
    scanned = scan_side(replica, known, side, ignore, Gate(replica.url))
    return Listed(scanned, known.count)


class Ahead:
    """One side listed in a child process, ahead of the run's detection."""

    def __init__(
        self,
        replica: Replica,
        store: ArchiveStore | None,
        side: Side,
        ignore: IgnoreRules | None,
    ) -> None:
        self.replica = replica
        self.side = side
        self.patterns = list(ignore.patterns) if ignore else []
        self._child: Child[Listed] | None = Child(
            lambda: _listing(replica, store, side, ignore)
        )
        self._child.prefetch()  # taken in while the other side connects

    def take(self, replica: Replica, ignore: IgnoreRules | None) -> Ahead | None:
        """This listing, if it is the one the run needs: of the same place,
        with the same ignore rules. Else None, and the child is stopped."""
        if replica is self.replica and self.patterns == (
            list(ignore.patterns) if ignore else []
        ):
            return self
        self.cancel()
        return None

    def result(self, gate: Gate) -> Listed:
        """Wait for the listing (made here if the child was lost: see
        ``Child``); its names pass ``gate`` here."""
        child, self._child = self._child, None
        assert child is not None
        try:
            listed = child.result()
        finally:
            child.cancel()
        return Listed(regated(listed.scanned, gate), listed.rows)

    def cancel(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.cancel()


def regated(scanned: Scanned, gate: Gate) -> Scanned:
    """``scanned`` with its new and changed names checked by ``gate`` (a
    stricter gate than the one it was listed with: a name the other side
    cannot hold is refused too)."""
    fresh = []
    refused: list[tuple[str, str]] = []
    for entry in scanned.fresh:
        why = gate(entry.key)
        if why is None:
            fresh.append(entry)
        else:
            refused.append((entry.key, why))
    if not refused:
        return scanned
    problems = scanned.problems + gate.problems(refused, scanned.side)
    return scanned._replace(fresh=fresh, problems=problems)
