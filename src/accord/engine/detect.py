"""Detect: what changed on one side since the archive.

Two steps. ``scan_side()`` lists a place against its archived *versions*
only (a key -> version dict) and keeps what differs: new keys, keys whose
version moved, archived keys not seen. ``compare()`` then reads the archive
rows of just those keys and classifies them. A run over an unchanged tree
thus touches every item once, with no full archive rows in memory, and the
listing step can run in a child process, one per side, on separate cores.

Fast path: a file whose version (for a local folder: dev, inode, size,
mtime_ns, ctime_ns) equals the archived one is unchanged, and its archived
digest is trusted without reading it. A file whose version moved but whose
size did not is hashed: same digest means only metadata changed (or nothing:
its new version is then *refreshed* in the archive so it is not hashed again).

A folder that could not be listed, or an item that could not be read, makes
its subtree *unreliable*: no deletion is inferred there.

Every listed name passes the name gate (``engine/names.py``) here, where
listings enter the engine: a refused name is reported, counted as seen (so
no deletion is inferred for it) and goes no further.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from accord.engine.child import Child, can_fork
from accord.engine.collector import collector_paused
from accord.engine.names import Gate, archived
from accord.errors import AccordError, NotFound, ReplicaError
from accord.keys import IgnoreRules, unsafe_reason
from accord.model import DIR, FILE, LINK, Entry, Problem, Side
from accord.replica import Replica
from accord.state.store import ABSENT, ArchiveEntry
from accord.tuples import NamedTuple

__all__ = [
    "CREATED",
    "DELETED",
    "META",
    "MODIFIED",
    "Change",
    "ChangeSet",
    "KnownInOrder",
    "ScanOrderError",
    "Scanned",
    "classify",
    "compare",
    "detect",
    "fill_digests",
    "lists_in_shares",
    "scan_shared",
    "scan_side",
]

CREATED = "created"
MODIFIED = "modified"
DELETED = "deleted"
META = "meta"  # only mtime or mode changed


class Change(NamedTuple):
    """How one side differs from the archive for one key."""

    kind: str
    now: Entry | None
    base: ArchiveEntry | None


class ChangeSet(NamedTuple):
    side: Side
    changes: dict[str, Change]
    problems: list[Problem]
    unreliable: list[str]  # keys (and their subtrees) with no deletion inferred
    refresh: list[Entry]  # same content, new version: update the archive only
    seen: int  # entries listed

    def is_unreliable(self, key: str) -> bool:
        return any(
            not prefix or key == prefix or key.startswith(prefix + "/")
            for prefix in self.unreliable
        )


def classify(
    base: ArchiveEntry | None,
    now: Entry | None,
    side: Side,
    precision: int | None = 1,
) -> str | None:
    """The change kind, or None when unchanged. Pure.

    A file whose version moved but whose size did not needs its digest: pass
    ``now`` with ``digest`` filled, or get MODIFIED when it is missing.
    ``precision`` is the place's mtime precision in nanoseconds (None: it
    keeps no mtimes): an mtime it reports only to whole seconds is not a
    change from the nanoseconds archived, unless the seconds differ.
    """
    if base is None:
        return CREATED if now is not None else None
    if now is None:
        return DELETED
    if now.kind != base.kind:
        return MODIFIED
    if now.version == base.version(side):
        return None
    if now.kind == DIR:
        return META if now.mode != base.mode else None
    if now.kind == LINK:
        return MODIFIED if now.target != base.target else None
    if now.size != base.size or now.digest is None or now.digest != base.digest:
        return MODIFIED
    if now.mode != base.mode or not _same_time(now.mtime_ns, base.mtime_ns, precision):
        return META
    return None


def _same_time(reported: int, archived: int, precision: int | None) -> bool:
    """``reported`` (as precise as the place keeps it) is ``archived``."""
    if precision is None:
        return True
    return reported // precision == archived // precision


class ScanOrderError(AccordError):
    """A place that promised a listing in key order gave one out of order."""


class KnownInOrder:
    """The archived versions of one side, read alongside a listing in the
    same key order: the ``known`` of a place whose scan lists in key order
    (``Replica.scan_in_order``).

    ``get(key)`` is asked in ascending key order. It moves through the
    archive rows until it reaches ``key``: its version when archived, else
    None; the archived keys passed over are the listing's unseen ones.
    ``same(pairs)`` passes a run of rows at once when they are exactly the
    listing's next ``(key, version)`` pairs (one comparison of two lists,
    in C: a folder of unchanged items costs no call per item). A run over
    an unchanged tree thus holds a few thousand rows at a time, not a dict
    of every item. A key asked out of order stops the run before anything
    is written (inferring deletions from a broken merge would lose data).
    ``same_run(first, count, check)`` passes a run the place describes by
    its first key, its length and a check of its pairs (a digest: see
    ``replicas/agent_listing.py``). ``token`` names the archive and side
    the rows come from, for a place that keeps what it listed for them.
    """

    __slots__ = (
        "_at", "_buffer", "_done", "_last", "_take", "count", "token", "unseen",
    )  # fmt: skip

    def __init__(
        self, rows: Iterable[tuple[str, str]], token: str | None = None
    ) -> None:
        self.token = token
        rows = iter(rows)
        self._take: Callable[[int], list[tuple[str, str]]] = lambda size: list(
            itertools.islice(rows, size)
        )
        self._buffer: list[tuple[str, str]] = []
        self._at = 0  # the next row in the buffer
        self._done = False
        self._last = ""
        self.count = 0  # archive rows read
        self.unseen: list[str] = []  # archived keys the listing passed over

    @classmethod
    def of_runs(
        cls, runs: Iterable[list[tuple[str, str]]], token: str | None = None
    ) -> KnownInOrder:
        """The archived versions given as lists of consecutive rows (the
        store reads them so, a list at a time in C: no call per row)."""
        known = cls((), token)
        runs = iter(runs)

        def take(size: int) -> list[tuple[str, str]]:
            more: list[tuple[str, str]] = []
            while len(more) < size:
                run = next(runs, None)
                if run is None:
                    break
                more += run
            return more

        known._take = take
        return known

    def _ahead(self, wanted: int) -> int:
        """How many rows are buffered past the current one, reading more
        (at least ``wanted``) when fewer are."""
        have = len(self._buffer) - self._at
        if have >= wanted or self._done:
            return have
        del self._buffer[: self._at]
        self._at = 0
        size = max(wanted - have, _ROWS_AT_ONCE)
        more = self._take(size)
        self._done = len(more) < size
        self.count += len(more)
        self._buffer += more
        return len(self._buffer)

    def read_ahead(self, most: int) -> bool:
        """Read a few more archive rows while fewer than ``most`` are
        buffered past the current one (a listing waiting for its place's
        next batch reads the rows that batch will be compared with, rows it
        would read then anyway); False when there is nothing more to read
        now."""
        have = len(self._buffer) - self._at
        if have >= most or self._done:
            return False
        return self._ahead(have + 1) > have

    def get(self, key: str, default: str | None = None) -> str | None:
        if key <= self._last:
            raise ScanOrderError(f"a listing came out of key order at {key!r}")
        self._last = key
        buffer = self._buffer
        while True:
            if self._at >= len(buffer):
                if not self._ahead(1):
                    return default
                buffer = self._buffer
            at, version = buffer[self._at]
            if at < key:
                self.unseen.append(at)
                self._at += 1
            elif at == key:
                self._at += 1
                return version
            else:
                return default

    def same(self, pairs: list[tuple[str, str]]) -> bool:
        """True when the next archived rows are ``pairs`` exactly (keys and
        versions, in order): they are passed, as unchanged items of the
        listing. Otherwise nothing is passed (ask ``get()`` for each).
        Pairs equal to archive rows are in ascending order, as those are:
        only the first needs checking against what came before."""
        count = len(pairs)
        if not count:
            return True
        if pairs[0][0] <= self._last:
            raise ScanOrderError(f"a listing came out of key order at {pairs[0][0]!r}")
        if self._ahead(count) < count:
            return False
        at = self._at
        if self._buffer[at : at + count] != pairs:
            return False
        self._at = at + count
        self._last = pairs[-1][0]
        return True

    def same_run(
        self,
        first: str,
        count: int,
        check: Callable[[list[tuple[str, str]]], bool],
    ) -> bool:
        """True when the ``count`` archived rows from key ``first`` on pass
        ``check`` (rows this side holds nothing in by agreement, ABSENT,
        left out: a listing never shows them): they are passed as the
        listing's next unchanged items, the rows before ``first`` and the
        ABSENT ones among them as unseen, as ``get`` would pass them.
        Otherwise nothing is passed."""
        if first <= self._last:
            raise ScanOrderError(f"a listing came out of key order at {first!r}")
        if count <= 0:
            return False
        skip = 0  # rows before ``first`` (offsets count from the current row)
        while True:
            have = self._ahead(skip + 1)
            if have <= skip:
                return False  # the archive ends before ``first``
            at = self._at
            skip = bisect.bisect_left(self._buffer, (first,), at + skip, at + have) - at
            if skip < have:
                break
        if self._ahead(skip + count) < skip + count:
            return False
        at = self._at
        rows = self._buffer[at + skip : at + skip + count]
        if rows[0][0] != first:
            return False
        end = skip + count
        absent: list[str] = []
        if not check(rows):  # perhaps rows held by the other side only are among them
            rows, absent, end = self._present(skip, count)
            if len(rows) < count or not check(rows):
                return False
        at = self._at
        self.unseen += [key for key, _ in self._buffer[at : at + skip]]
        self.unseen += absent
        self._at = at + end
        self._last = rows[-1][0]
        return True

    def _present(
        self, skip: int, count: int
    ) -> tuple[list[tuple[str, str]], list[str], int]:
        """``count`` rows from ``skip`` rows past the current one on,
        leaving out ABSENT ones: those rows, the ABSENT keys, and how many
        rows past the current one the run ends."""
        rows: list[tuple[str, str]] = []
        absent: list[str] = []
        offset = skip
        while len(rows) < count:
            if self._ahead(offset + 1) <= offset:
                break  # the archive ends first
            key, version = self._buffer[self._at + offset]
            if version == ABSENT:
                absent.append(key)
            else:
                rows.append((key, version))
            offset += 1
        return rows, absent, offset

    def finish(self) -> list[str]:
        """The archived keys the listing did not show (reads the rest)."""
        while self._ahead(1):
            self.unseen += [key for key, _ in self._buffer[self._at :]]
            self._at = len(self._buffer)
        return self.unseen


#: archive rows a KnownInOrder reads at a time
_ROWS_AT_ONCE = 256
#: the sizes of the shares of a first listing (``scan_shared``): this
#: process's and the child's, alike (a smaller share for the child, whose
#: entries still have to come back, was not shown to help)
_WEIGHTS = (1.0, 1.0)
#: an entry's (or a problem's) key
_KEY = operator.itemgetter(0)


class Scanned(NamedTuple):
    """One side's listing, boiled down to what differs from the known versions."""

    side: Side
    fresh: list[Entry]  # new keys, and keys whose version moved
    unseen: list[str]  # archived keys the listing did not show
    problems: list[Problem]
    seen: int  # entries listed
    state: object  # the place's scan state (Replica.scan_state), for a parent


def scan_side(
    replica: Replica,
    known: Mapping[str, str] | KnownInOrder,
    side: Side,
    ignore: IgnoreRules | None = None,
    gate: Gate | None = None,
) -> Scanned:
    """List ``replica`` against its archived versions; no archive rows needed.

    This is the part of detection that touches every item, so it is kept
    small and self-contained: the session may run it in a child process.
    Each listed name passes ``gate`` (by default, the check that it names
    an item inside the place); a refused one is reported and dropped.

    The garbage collector is paused meanwhile: a listing makes a few
    tuples per item and no cycles, and the collector's passes over them
    (every 700 of them) were about 3% of its work.
    """
    with collector_paused():
        return _scan_side(replica, known, side, ignore, gate)


def _scan_side(
    replica: Replica,
    known: Mapping[str, str] | KnownInOrder,
    side: Side,
    ignore: IgnoreRules | None,
    gate: Gate | None,
) -> Scanned:
    check = gate or Gate(replica.url)
    in_order = isinstance(known, KnownInOrder)
    # with ``known`` in order, it finds the unseen keys itself
    unseen: set[str] = set() if in_order else set(known)
    discard = unseen.discard
    fresh: list[Entry] = []
    problems: list[Problem] = []
    refused: list[tuple[str, str]] = []
    seen = 0
    for item in replica.scan(ignore, known if known or in_order else None):  # type: ignore[arg-type]
        kind = type(item)
        if kind is str:
            discard(item)  # type: ignore[arg-type]
        elif kind is int:  # a run of unchanged items (KnownInOrder.same)
            seen += item  # type: ignore[operator]
            continue
        elif kind is Problem:
            problems.append(item._replace(side=side))  # type: ignore[union-attr]
            continue
        else:
            key = item[0]  # type: ignore[index]
            discard(key)
            why = check(key)
            if why is None:
                fresh.append(item)  # type: ignore[arg-type]
            else:
                refused.append((key, why))
        seen += 1
    problems += check.problems(refused, side)
    gone = known.finish() if isinstance(known, KnownInOrder) else list(unseen)
    if gone and any(unsafe_reason(key) is not None for key in gone):
        problems += [archived(key) for key in gone if unsafe_reason(key) is not None]
        gone = [key for key in gone if unsafe_reason(key) is None]
    return Scanned(side, fresh, gone, problems, seen, replica.scan_state())


def scan_shared(
    replica: Replica,
    side: Side,
    ignore: IgnoreRules | None = None,
    gate: Gate | None = None,
) -> Scanned | None:
    """A first listing of ``replica`` (nothing archived to compare with)
    made by two processes at once, where the place lists in shares (a local
    folder: ``LocalRead.scan_share``); None where it does not, or when the
    shares do not make one listing (the tree changed between their walks):
    then ``scan_side`` lists it again, in one walk.

    A first copy's listing is the longest stretch of its start, and one
    core idled meanwhile: a forked child lists half of the folders (by
    their sizes) while this process lists the others. Each side's names
    pass the gate in its process; the refused ones are reported together,
    as one listing's would be (only the deepest)."""
    if not lists_in_shares(replica) or not can_fork():
        return None
    check = gate or Gate(replica.url)
    settled = replica.settle_names()  # type: ignore[attr-defined]
    child = Child(lambda: _in_columns(_share(replica, side, ignore, check, 1)))
    with collector_paused():
        try:
            mine = _share(replica, side, ignore, check, 0)
            theirs = child.result()
        finally:
            child.cancel()
    if not _one_listing([mine[4], theirs[4]]):
        return None
    # the child's entries came as columns; rebuilt without a Python step each
    columns = zip(*theirs[0], strict=True)
    fresh = mine[0] + list(map(tuple.__new__, itertools.repeat(Entry), columns))
    fresh.sort(key=_KEY)  # two runs in key order: merged
    problems = [p._replace(side=side) for p in settled]
    problems += sorted(mine[1] + theirs[1], key=_KEY)
    problems += check.problems(mine[2] + theirs[2], side)
    return Scanned(side, fresh, [], problems, mine[3] + theirs[3], replica.scan_state())


def lists_in_shares(replica: Replica) -> bool:
    """Whether ``replica`` is itself a place that lists in shares (not a
    view in front of one, which forwards what it does not define)."""
    lists = getattr(type(replica), "lists_in_shares", None)
    return lists is not None and replica.fork_safe and bool(lists())


def _share(
    replica: Replica, side: Side, ignore: IgnoreRules | None, gate: Gate, share: int
) -> tuple[list[Entry], list[Problem], list[tuple[str, str]], int, Any]:
    """One share of ``scan_shared``: its entries that pass the gate, its
    problems, its refused names with why, how many items it listed, and
    its folders (those it listed, the subfolders it found)."""
    fresh: list[Entry] = []
    problems: list[Problem] = []
    refused: list[tuple[str, str]] = []
    seen = 0
    with collector_paused():
        items, deal = replica.scan_share(ignore, share, _WEIGHTS)  # type: ignore[attr-defined]
        for item in items:
            if type(item) is Problem:
                problems.append(item._replace(side=side))
                continue
            key = item[0]
            why = gate(key)
            if why is None:
                fresh.append(item)
            else:
                refused.append((key, why))
            seen += 1
    return fresh, problems, refused, seen, (deal.entered, deal.held)


def _in_columns(share: tuple[Any, ...]) -> tuple[Any, ...]:
    """A share with its entries as columns (a tuple of each field's
    values): pickled and read back in a fifth of the time of as many
    named tuples, each of which pickle rebuilds by a call in Python."""
    return (list(zip(*share[0], strict=True)), *share[1:])


def _one_listing(deals: list[tuple[list[str], list[str]]]) -> bool:
    """True when the shares' folders ``(entered, held)`` make one listing:
    every folder listed by exactly one share, and the folders listed are
    the root and the subfolders found, no more, no fewer."""
    entered = [key for listed, _ in deals for key in listed]
    held = {key for _, found in deals for key in found}
    held.add("")
    return len(entered) == len(held) and held.issuperset(entered)


def compare(
    scanned: Scanned,
    archive: Mapping[str, ArchiveEntry],
    replica: Replica,
    ignore: IgnoreRules | None = None,
    *,
    workers: int = 4,
) -> ChangeSet:
    """Classify a side's listing against the archive rows: its change set."""
    side = scanned.side
    changes: dict[str, Change] = {}
    problems = list(scanned.problems)
    unreliable = [problem.key for problem in problems if not problem.refused]
    to_hash: list[tuple[Entry, ArchiveEntry]] = []
    at = 7 if side is Side.LEFT else 8  # index of this side's version in a row
    get = archive.get
    listed = scanned.fresh
    if not archive:  # a first sync: every item listed is new, none asked for
        changes = dict(zip(map(_KEY, listed), _created(listed), strict=True))
        listed = []
    for item in listed:
        key = item[0]
        base = get(key)
        if base is None:
            changes[key] = Change(CREATED, item, None)
            continue
        if item[5] == base[at]:
            continue
        if item.kind == FILE == base.kind and item.size == base.size:
            to_hash.append((item, base))
            continue
        kind = classify(base, item, side, replica.capabilities.mtime_precision_ns)
        if kind is not None:
            changes[key] = Change(kind, item, base)
    refresh = _settle(replica, side, to_hash, changes, problems, unreliable, workers)
    ignored = ignore.matches if ignore else None
    for key in scanned.unseen:
        base = archive[key]
        if ignored is not None and ignored(key, base.kind == DIR):
            continue
        if base[at] == ABSENT:  # not there, as agreed: unchanged
            continue
        changes[key] = Change(DELETED, None, base)
    result = ChangeSet(side, changes, problems, unreliable, refresh, scanned.seen)
    if unreliable:
        for key in [k for k, c in changes.items() if c.kind == DELETED]:
            if result.is_unreliable(key):
                del changes[key]
    return result


def _created(entries: list[Entry]) -> Iterable[Change]:
    """``Change(CREATED, entry, None)`` of each entry, made in C (the
    named tuple's own ``__new__`` is a call in Python: a first copy's
    20,000 of them took 7 ms)."""
    fields = zip(itertools.repeat(CREATED), entries, itertools.repeat(None))
    return map(tuple.__new__, itertools.repeat(Change), fields)


def detect(
    replica: Replica,
    archive: Mapping[str, ArchiveEntry],
    side: Side,
    ignore: IgnoreRules | None = None,
    *,
    workers: int = 4,
) -> ChangeSet:
    """Scan ``replica`` and compare it with ``archive``, in one step."""
    known = {key: row.version(side) for key, row in archive.items()}
    scanned = scan_side(replica, known, side, ignore)
    return compare(scanned, archive, replica, ignore, workers=workers)


def _settle(
    replica: Replica,
    side: Side,
    to_hash: list[tuple[Entry, ArchiveEntry]],
    changes: dict[str, Change],
    problems: list[Problem],
    unreliable: list[str],
    workers: int,
) -> list[Entry]:
    """Hash same-size files whose version moved; classify them."""
    refresh: list[Entry] = []
    done = fill_digests(replica, [entry for entry, _ in to_hash], workers)
    for (entry, base), hashed in zip(to_hash, done, strict=False):
        if isinstance(hashed, Problem):
            problems.append(hashed._replace(side=side))
            unreliable.append(entry.key)
            continue
        kind = classify(base, hashed, side, replica.capabilities.mtime_precision_ns)
        if kind is None:
            refresh.append(hashed)
        else:
            changes[entry.key] = Change(kind, hashed, base)
    return refresh


def fill_digests(
    replica: Replica, entries: Iterable[Entry], workers: int = 4
) -> list[Entry | Problem]:
    """Each entry with its digest, read in parallel; a Problem where it failed."""
    todo = list(entries)

    def one(entry: Entry) -> Entry | Problem:
        if entry.digest is not None or entry.kind != FILE:
            return entry
        try:
            hashed = replica.digest(entry)
        except NotFound:
            return Problem(entry.key, None, "vanished while being read", True)
        except (ReplicaError, AccordError) as exc:
            return Problem(entry.key, None, exc.message, True)
        if hashed.key != entry.key:
            return Problem(entry.key, None, "the place answered for another name")
        return hashed

    if len(todo) < 8 or workers <= 1:
        return [one(entry) for entry in todo]
    unread = [e.size for e in todo if e.digest is None and e.kind == FILE]
    if not unread:
        return todo  # nothing to read (records list their digests): no threads
    if not replica.capabilities.parallel_transfers and sum(unread) < _THREADS_FROM:
        # a local disk: threads pay only for much to hash (they hash on
        # both cores); for less, starting them costs more than they save
        return [one(entry) for entry in todo]
    with _pool(workers) as pool:
        return list(pool.map(one, todo))


#: bytes to hash from which a place without ``parallel_transfers`` (a
#: local disk) still has its digests read on threads
_THREADS_FROM = 32 << 20


def _pool(max_workers: int) -> Any:
    """A thread pool; concurrent.futures is imported only when one is needed."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=max_workers)
