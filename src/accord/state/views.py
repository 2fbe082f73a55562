"""The archive read lazily: its keys and its rows as they are asked for.

A run that changes little reads little: ``ArchiveKeys`` answers membership
from what it learned and asks the store for the rest one key (or a batch)
at a time; ``ArchiveView`` is a mapping over every key whose rows are read
on first use or prefetched in a few queries.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from accord.state.rows import ArchiveEntry

if TYPE_CHECKING:
    from accord.state.store import ArchiveStore

__all__ = ["ArchiveKeys", "ArchiveView"]


class ArchiveKeys(Collection[str]):
    """The archived keys, without holding them all: the answers already
    known (``known``: archived, ``unknown``: not), the rest asked of the
    store one key at a time. For runs that compared the archive column by
    column and know the keys they will ask about."""

    def __init__(
        self,
        store: ArchiveStore,
        known: set[str],
        unknown: set[str],
        count: int,
    ) -> None:
        self._store = store
        self._known = known
        self._unknown = unknown
        self._count = count

    def learn(self, keys: Iterable[str]) -> None:
        """Ask the store about many keys at once (a query per 500), so that
        membership of these is answered from memory afterwards."""
        wanted = [k for k in keys if k not in self._known and k not in self._unknown]
        found = self._store.rows(wanted)
        self._known.update(found)
        self._unknown.update(k for k in wanted if k not in found)

    def __contains__(self, key: object) -> bool:
        if key in self._known:
            return True
        if key in self._unknown or not isinstance(key, str):
            return False
        found = self._store.has(key)
        (self._known if found else self._unknown).add(key)
        return found

    def __iter__(self) -> Iterator[str]:
        return self._store.keys()

    def __len__(self) -> int:
        return self._count


class ArchiveView(Mapping[str, ArchiveEntry]):
    """The archive as a mapping whose rows are read only when asked for.

    It knows every key up front (from ``ArchiveStore.versions()``), so
    membership and size are free; a row is fetched on first use, and
    ``prefetch()`` fetches many in a few queries. A run that changes little
    thus reads little. Rows can be overridden in memory (``set()``): the
    session does so for items whose version moved while their content did not.
    """

    def __init__(self, store: ArchiveStore, keys: Collection[str]) -> None:
        self._store = store
        self._keys = keys
        self._rows: dict[str, ArchiveEntry] = {}
        self._complete = False

    def __getitem__(self, key: str) -> ArchiveEntry:
        row = self._rows.get(key)
        if row is None:
            if self._complete or key not in self._keys:
                raise KeyError(key)
            self._rows.update(self._store.rows([key]))
            row = self._rows.get(key)
            if row is None:
                raise KeyError(key)
        return row

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        """The row of ``key``, or ``default``: no exception raised and caught
        for a key the archive does not hold (a first sync asks for every one)."""
        if key not in self._keys:
            return default
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def set(self, row: ArchiveEntry) -> None:
        self._rows[row.key] = row

    def prefetch(self, keys: Collection[str]) -> None:
        """Read the rows of ``keys`` now; all rows when that is most of them."""
        if self._complete:
            return
        missing = [k for k in keys if k in self._keys and k not in self._rows]
        if not missing:
            return
        if len(missing) * 4 > len(self._keys):
            fetched = self._store.load()
            fetched.update(self._rows)
            self._rows = fetched
            self._complete = True
        else:
            self._rows.update(self._store.rows(missing))
