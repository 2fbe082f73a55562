"""Detection column by column, for places that list in columns.

A place that holds millions of small items (records) can offer its whole
listing as columns (``Replica.scan_columns``: keys, versions, digests as
Arrow arrays). The engine then makes the same decisions as
``detect.scan_side`` and the session's first-sync pairing, with pyarrow's
kernels instead of a Python step per item, and makes entries only of the
items that differ:

* the name gate (``engine/names.py``): a key of plain printable ASCII
  characters that the other side can hold, short enough for it, is
  accepted as a whole column; every other key passes the gate itself;
* against the archive (each side's archived versions, read as columns
  with ``ArchiveStore.version_columns``): an item whose version is the
  archived one is unchanged; the rest is fresh; archived keys not listed
  are unseen;
* a first sync: the items both sides list with the same digest agree and
  need no action (``Agreed``, turned into entries only as they are
  recorded).

What comes out is a ``detect.Scanned`` per side, as ``scan_side`` gives,
and ``compare`` and ``reconcile`` go on as for any place. Tests check that
both ways give the same plan.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

from accord.engine.detect import Scanned
from accord.engine.names import Gate, archived
from accord.keys import unsafe_reason
from accord.model import FILE, Entry, Problem, Side
from accord.replica import Columns, are_numbers, number_keys
from accord.state.store import ArchiveEntry, ArchiveKeys, ArchiveStore
from accord.tuples import NamedTuple

__all__ = [
    "Agreed",
    "Listed",
    "against",
    "alike",
    "archived_keys",
    "entries",
    "gated",
    "listed",
    "plain_rows",
    "release_memory",
    "vouch",
]


class Listed(NamedTuple):
    """One side's listing, boiled down as ``scan_side`` does, in columns."""

    side: Side
    fresh: Columns  # new keys, and keys whose version moved
    unseen: list[str]  # archived keys the listing did not show
    problems: list[Problem]
    seen: int  # items listed
    archived: Any  # of the fresh keys, which the archive holds (a bool array)
    at: Any = None  # where each fresh key is in the archived keys, or null


def release_memory() -> None:
    """Give back to the system what reading the listings freed: pyarrow's
    allocator keeps it for later (140 MB after a CSV file of a million
    rows), where it would count in the process's size beside the
    comparison's own. Once both listings are read, not after each (a
    second file read would only take it back, a page fault at a time)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def gated(columns: Columns, gate: Gate, side: Side) -> tuple[Columns, list[Problem]]:
    """``columns`` without the names ``gate`` refuses, and those reported."""
    import pyarrow.compute as pc

    keys = columns.keys
    pattern, longest = _plain(gate)
    if _numbers_plain(pattern, longest) and are_numbers(keys):
        return columns, []  # numbers (at most 18 characters), all allowed
    plain = pc.match_substring_regex(keys, pattern)
    if longest is not None:
        plain = pc.and_(plain, pc.less_equal(pc.binary_length(keys), longest))
    if pc.all(plain).as_py():
        return columns, []
    others = keys.filter(pc.invert(plain)).to_pylist()
    refused = [(key, why) for key in others if (why := gate(key)) is not None]
    if not refused:
        return columns, []
    import pyarrow as pa

    names = pa.array([key for key, _ in refused], pa.string())
    kept = pc.invert(pc.is_in(keys, value_set=names))
    return _filter(columns, kept), gate.problems(refused, side)


def _plain(gate: Gate) -> tuple[str, int | None]:
    """The names the gate surely accepts, as an RE2 pattern (printable
    ASCII, no ``/``, not starting with a dot, no character the other side
    forbids), and the length they may have (None: any)."""
    target = gate.target
    forbidden = set(target.forbidden_chars) if target is not None else set()
    allowed = [chr(c) for c in range(0x20, 0x7F) if chr(c) not in forbidden]
    rest = [c for c in allowed if c != "/"]
    first = [c for c in rest if c != "."]
    if not first:
        return "^$.", None  # matches nothing: every name is checked
    pattern = f"^{_class(first)}{_class(rest)}*$"
    limits = [
        limit
        for limit in (
            getattr(target, "max_key_bytes", None),
            getattr(target, "max_name_bytes", None),
        )
        if limit is not None
    ]
    return pattern, min(limits) if limits else None


def _numbers_plain(pattern: str, longest: int | None) -> bool:
    """Whether every number's one spelling (``NUMBER``, at most 18
    characters) is a name ``pattern`` accepts."""
    import re

    samples = [*"0123456789", "-0123456789"]  # each character where it may be
    return (longest is None or longest >= 18) and all(
        re.fullmatch(pattern, sample) for sample in samples
    )


def _class(chars: list[str]) -> str:
    return "[" + "".join(f"\\x{ord(c):02x}" for c in chars) + "]"


def against(
    columns: Columns,
    known: tuple[Any, Any] | None,
    side: Side,
    listed_keys: Any,
    problems: list[Problem],
    vouched: str | None = None,
) -> Listed:
    """A side's listing against its archived (keys, versions): what is
    fresh, what the archive holds that was not listed (``listed_keys``:
    every key listed, refused ones too, which count as seen). ``vouched``:
    the kept file the archive says this side's versions are exactly
    (``vouch``); a listing mapped from that very file, none of it refused,
    is then unchanged without comparing it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    seen = len(listed_keys)
    if known is None or len(known[0]) == 0:
        nothing = pa.repeat(False, len(columns.keys))
        return Listed(side, columns, [], problems, seen, nothing)
    keys, versions = known
    if (
        vouched is not None
        and columns.origin == vouched
        and not problems
        and len(columns.keys) == seen == len(keys)
    ):
        none = _filter(columns, pa.repeat(False, len(columns.keys)))
        return Listed(side, none, [], [], seen, pa.array([], pa.bool_()))
    at = _index_in(columns.keys, keys)
    same = _equal_at(columns.versions, versions, at)
    changed = pc.invert(same)
    fresh = _filter(columns, changed)
    fresh_at = at.filter(changed)
    was = pc.is_valid(fresh_at)
    if len(listed_keys) == len(columns.keys) and len(at) - at.null_count == len(keys):
        gone = []  # every archived key was listed (keys are unique on both)
    else:
        listed = pc.is_valid(_index_in(keys, listed_keys))
        gone = keys.filter(pc.invert(listed)).to_pylist()
    problems = list(problems)
    if any(unsafe_reason(key) is not None for key in gone):
        problems += [archived(key) for key in gone if unsafe_reason(key) is not None]
        gone = [key for key in gone if unsafe_reason(key) is None]
    return Listed(side, fresh, gone, problems, seen, was, fresh_at)


def plain_rows(
    sides: Iterable[Listed], known: tuple[Any, Any, Any], digests: Side
) -> list[ArchiveEntry]:
    """The archived rows of the fresh keys the archive holds, made from
    its version columns (keys, LEFT's, RIGHT's) when every row is plain
    (``ArchiveStore.plain_digests``: the side whose versions are the
    digests): what ``ArchiveStore.rows`` would read, without a query
    per 500 keys (10,000 rows: 0.05 s)."""
    rows: list[ArchiveEntry] = []
    make = tuple.__new__  # an ArchiveEntry without NamedTuple's __new__
    for found in sides:
        if found.at is None:
            continue
        at = found.at.drop_null()
        keys, left, right = (c.take(at).to_pylist() for c in known)
        digest = left if digests is Side.LEFT else right
        rows += [
            make(ArchiveEntry, (key, FILE, 0, 0, 0, d, None, a, b))
            for key, d, a, b in zip(keys, digest, left, right, strict=True)
        ]
    return rows


def vouch(store: ArchiveStore, listings: dict[Side, Columns | None]) -> None:
    """After an apply: each side whose listing the next plan will map from
    a kept file (``Columns.origin``) is compared with the archive now, as
    that plan would compare it; when it holds exactly the archived keys and
    versions, the archive says so under the file's name and the versions
    file's token (``ArchiveStore.vouch``), and that plan need not compare
    it again (``against``; docs/architecture.md, "A side the archive
    vouches for")."""
    token = store.kept_token()
    if token is None or not any(c is not None and c.origin for c in listings.values()):
        return
    known = store.version_columns()
    for side, listing in listings.items():
        if listing is None or not listing.origin:
            continue
        versions = (known[0], known[1 + (side is Side.RIGHT)])
        found = against(listing, versions, side, listing.keys, [])
        if len(found.fresh.keys) == 0 and not found.unseen and not found.problems:
            store.vouch(side, listing.origin, token)


def alike(left: Listed, right: Listed) -> tuple[Listed, Listed, Agreed]:
    """A first sync: the items both sides list with the same digest agree
    (no action each); both listings without them."""
    import pyarrow.compute as pc

    ours, theirs = left.fresh, right.fresh
    at = _index_in(ours.keys, theirs.keys)
    same = _equal_at(ours.digests, theirs.digests, at)
    if not pc.any(same).as_py():
        return left, right, Agreed(None, None, None, None)
    mine = pc.indices_nonzero(same)
    yours = at.filter(same)
    agreed = Agreed(ours, mine, theirs, yours)
    kept_left = pc.invert(same)
    kept_right = _none_of(len(theirs.keys), yours)
    return (
        left._replace(
            fresh=_filter(ours, kept_left),
            archived=left.archived.filter(kept_left),
            at=None,
        ),
        right._replace(
            fresh=_filter(theirs, kept_right),
            archived=right.archived.filter(kept_right),
            at=None,
        ),
        agreed,
    )


#: rows compared at a time by ``_equal_at``
_SLICE = 65_536


def _equal_at(texts: Any, others: Any, at: Any) -> Any:
    """Whether ``texts[i] == others[at[i]]`` (false where ``at`` is null),
    as one bool array. A slice at a time, so that the texts taken from
    ``others`` are never all in memory at once (50 MB per million records,
    all of it new pages)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = []
    for start in range(0, len(at), _SLICE):
        taken = others.take(at.slice(start, _SLICE))
        part = pc.equal(texts.slice(start, _SLICE), taken)
        if isinstance(part, pa.ChunkedArray):  # ``others`` read in chunks
            part = part.combine_chunks()
        parts.append(pc.fill_null(part, False))
    if not parts:
        return pa.array([], pa.bool_())
    return pa.concat_arrays(parts) if len(parts) > 1 else parts[0]


def _index_in(keys: Any, value_set: Any) -> Any:
    """``pc.index_in(keys, value_set=value_set)``: where each key is in
    ``value_set`` (unique keys), or null. Keys that are all decimal numbers
    in their one spelling (record keys often are) are matched as int64,
    which hashes 2-3x faster than strings (docs/records.md), and when
    ``keys`` are mostly in increasing order (a file exported by its key),
    by a binary search in the sorted ``value_set`` instead of a hash."""
    import pyarrow.compute as pc

    ours = number_keys(keys)
    theirs = _sorted_ints(value_set) if ours is not None else None
    if ours is None or theirs is None:
        return pc.index_in(keys, value_set=value_set)
    found = _in_sorted(ours, theirs)
    if found is not None:
        return found
    return pc.index_in(ours, value_set=theirs.ints)


class _SortedInts(NamedTuple):
    ints: Any  # the keys as int64 (an Arrow array)
    order: Any  # the positions that sort them (numpy), or None
    ordered: Any  # the sorted ints (numpy), or None


#: the last value set's ints, by a weak reference to its keys: both sides
#: of a pair are matched against the same archived keys
_LAST: list[Any] = [None, None]
_SORTING = threading.Lock()


def _sorted_ints(keys: Any) -> _SortedInts | None:
    """``keys`` as int64 (``number_keys``) and sorted, or None; remembered
    for the same array, and forgotten with it."""
    with _SORTING:  # both sides of a pair, on two threads: sorted once
        return _sorted_ints_of(keys)


def _sorted_ints_of(keys: Any) -> _SortedInts | None:
    import weakref

    held = _LAST[0]() if _LAST[0] is not None else None
    if held is keys:
        return _LAST[1]
    ints = number_keys(keys)
    if ints is None:
        return None
    order = ordered = None
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with pandas, mostly
        pass
    else:
        order = np.argsort(ints.to_numpy(), kind="stable")
        ordered = ints.to_numpy()[order]
        order = order.astype(np.int32)  # half the memory: positions < 2**31
    found = _SortedInts(ints, order, ordered)
    _LAST[:] = [weakref.ref(keys, _forget), found]
    return found


def _forget(reference: Any) -> None:
    """The remembered keys are gone: so are their ints (24 MB a million)."""
    if _LAST[0] is reference:
        _LAST[:] = [None, None]


def _in_sorted(ours: Any, theirs: _SortedInts) -> Any:
    """Where each of ``ours`` (int64) is in ``theirs``, or null: a binary
    search for each in increasing order, so that the searches stay in the
    cache (a fifth of a hash lookup's time). Keys mostly in order (a file
    exported by its key, new rows at its end) are sorted first, which
    costs little then; None when they are not (a hash is then faster) or
    numpy is missing."""
    import pyarrow as pa

    if theirs.ordered is None or len(theirs.ordered) == 0:
        return None
    import numpy as np

    mine = ours.to_numpy()
    order = None
    if len(mine) > 1:
        descents = int(np.count_nonzero(mine[1:] <= mine[:-1]))
        if descents > len(mine) // 64:
            return None
        if descents:
            order = np.argsort(mine, kind="stable")
            mine = mine[order]
    at = np.searchsorted(theirs.ordered, mine)
    np.minimum(at, len(theirs.ordered) - 1, out=at)  # in place: 8 MB a million
    missing = theirs.ordered[at] != mine
    found = theirs.order[at]  # int32
    del at
    if order is not None:  # back in the keys' own order
        found_sorted, missing_sorted = found, missing
        found, missing = np.empty_like(found), np.empty_like(missing)
        found[order], missing[order] = found_sorted, missing_sorted
    return pa.array(found, mask=missing)


def _none_of(count: int, positions: Any) -> Any:
    """A mask of ``count`` rows, False at ``positions``, True elsewhere."""
    import pyarrow as pa

    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with pandas, mostly
        import pyarrow.compute as pc

        every = pa.array(range(count), pa.int64())
        return pc.invert(pc.is_in(every, value_set=positions.cast(pa.int64())))
    mask = np.ones(count, dtype=bool)
    mask[positions.to_numpy(zero_copy_only=False)] = False
    return pa.array(mask)


def archived_keys(
    store: ArchiveStore, sides: Iterable[Listed], count: int | None = None
) -> ArchiveKeys:
    """The archived keys, as far as the listings tell (the archive is
    asked about any other key): which fresh keys it holds, and the unseen;
    ``count``: how many keys it holds, when the caller knows."""
    import pyarrow.compute as pc

    known: set[str] = set()
    unknown: set[str] = set()
    for found in sides:
        keys = found.fresh.keys
        known.update(keys.filter(found.archived).to_pylist())
        unknown.update(keys.filter(pc.invert(found.archived)).to_pylist())
        known.update(found.unseen)
    return ArchiveKeys(store, known, unknown, store.count() if count is None else count)


def listed(found: Listed) -> Scanned:
    """The ``Scanned`` of a listing: its fresh items as entries."""
    return Scanned(
        found.side,
        entries(found.fresh),
        found.unseen,
        found.problems,
        found.seen,
        None,
    )


def entries(columns: Columns, start: int = 0, stop: int | None = None) -> list[Entry]:
    """The entries of rows ``start`` to ``stop`` of ``columns``."""
    end = len(columns.keys) if stop is None else stop
    part = [c.slice(start, end - start) for c in columns[:3]]
    keys = part[0].to_pylist()
    versions = part[1].to_pylist()
    digests = versions if columns.digests is columns.versions else part[2].to_pylist()
    make = tuple.__new__  # an Entry without NamedTuple's Python-level __new__
    return [
        make(Entry, (key, FILE, 0, 0, 0, version, digest, None))
        for key, version, digest in zip(keys, versions, digests, strict=True)
    ]


class Agreed(Sequence[tuple[Entry, Entry]]):
    """The pairs of entries a first sync found alike: rows of both sides'
    columns (``left`` at ``left_at``, ``right`` at ``right_at``), made into
    entries a slice at a time (``plan.agreed``)."""

    def __init__(
        self,
        left: Columns | None,
        left_at: Any,
        right: Columns | None,
        right_at: Any,
    ) -> None:
        self._left, self._left_at = left, left_at
        self._right, self._right_at = right, right_at

    def __len__(self) -> int:
        return 0 if self._left_at is None else len(self._left_at)

    @overload
    def __getitem__(self, index: int) -> tuple[Entry, Entry]: ...

    @overload
    def __getitem__(self, index: slice) -> list[tuple[Entry, Entry]]: ...

    def __getitem__(
        self, index: int | slice
    ) -> tuple[Entry, Entry] | list[tuple[Entry, Entry]]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if self._left is None or self._right is None or start >= stop:
                return []
            count = stop - start
            left = _take(self._left, self._left_at.slice(start, count))
            right = _take(self._right, self._right_at.slice(start, count))
            pairs = list(zip(entries(left), entries(right), strict=True))
            return pairs[::step]
        count = len(self)
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError(index)
        return self[index : index + 1][0]

    def __iter__(self) -> Iterator[tuple[Entry, Entry]]:
        for start in range(0, len(self), 10_000):
            yield from self[start : start + 10_000]


def _filter(columns: Columns, mask: Any) -> Columns:
    keys = columns.keys.filter(mask)
    versions = columns.versions.filter(mask)
    if columns.digests is columns.versions:
        return Columns(keys, versions, versions)
    return Columns(keys, versions, columns.digests.filter(mask))


def _take(columns: Columns, at: Any) -> Columns:
    keys = columns.keys.take(at)
    versions = columns.versions.take(at)
    if columns.digests is columns.versions:
        return Columns(keys, versions, versions)
    return Columns(keys, versions, columns.digests.take(at))
