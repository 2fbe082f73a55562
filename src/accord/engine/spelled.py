"""A place addressed under the keys its twins were paired with.

When ``engine/twins.py`` pairs a name with a twin spelled in another Unicode
normalization, the run knows the item by one key while this place holds it
under its own spelling. :func:`spelled` wraps the place so that every
primitive that names an item reaches the real name (the key itself, or the
key under a folder this place spells otherwise) and every entry it returns
carries the run's key again. A place with no such names is used as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import IO, Any, cast

from accord.errors import AccordError
from accord.model import Entry
from accord.replica import Replica, TrashItem, WriteItem

__all__ = ["Spelled", "spelled", "unspelled"]


def spelled(replica: Replica, real: dict[str, str] | None) -> Replica:
    """``replica``, addressed through ``real`` (key -> real name) when it
    holds names spelled otherwise than their keys."""
    replica = unspelled(replica)
    if not real:
        return replica
    return cast(Replica, Spelled(replica, real))


def unspelled(replica: Replica) -> Replica:
    """The place itself, from under a :class:`Spelled`."""
    inner = getattr(replica, "spelled_place", None)
    return inner if isinstance(inner, Replica) else replica


class Spelled:
    """Translates keys to real names and entries back to keys; everything
    else is the place's own."""

    def __init__(self, replica: Replica, real: dict[str, str]) -> None:
        self.spelled_place = replica
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.spelled_place, name)

    def __eq__(self, other: object) -> bool:  # the place it wraps, for ``in``
        return unspelled(cast(Replica, other)) is self.spelled_place

    def __hash__(self) -> int:
        return hash(self.spelled_place)

    def real(self, key: str) -> str:
        """The name ``key`` has in this place."""
        probe = key
        while True:
            found = self._real.get(probe)
            if found is not None:
                return found + key[len(probe) :]
            cut = probe.rfind("/")
            if cut <= 0:
                return key
            probe = probe[:cut]

    def _out(self, entry: Entry | None) -> Entry | None:
        return None if entry is None else entry._replace(key=self.real(entry.key))

    def _in(self, entry: Entry | None, key: str) -> Entry | None:
        return None if entry is None else entry._replace(key=key)

    def stat(self, key: str) -> Entry | None:
        return self._in(self.spelled_place.stat(self.real(key)), key)

    def digest(self, entry: Entry) -> Entry:
        done = self.spelled_place.digest(cast(Entry, self._out(entry)))
        return done._replace(key=entry.key)

    def open_read(self, key: str) -> AbstractContextManager[IO[bytes]]:
        return self.spelled_place.open_read(self.real(key))

    def write(self, key: str, data: IO[bytes], **options: Any) -> Entry:
        done = self.spelled_place.write(self.real(key), data, **self._options(options))
        return done._replace(key=key)

    def write_batch(self, items: list[WriteItem]) -> list[Entry | AccordError]:
        real = [
            item._replace(
                key=self.real(item.key),
                like=self._out(item.like),
                expect=self._out(item.expect),
            )
            for item in items
        ]
        return [
            done._replace(key=item.key) if isinstance(done, Entry) else done
            for item, done in zip(
                items, self.spelled_place.write_batch(real), strict=True
            )
        ]

    def make_dirs(self, items: list[tuple[str, Entry]]) -> None:
        """None: the folders go one by one through ``make_dir``, which
        reaches their real names (not the place's own, under the keys)."""
        return None

    def copy_new(self, source: Replica, key: str, entry: Entry) -> None:
        """None: a new file goes through ``write``, which reaches its real
        name (the place's own ``copy_new`` names the source's item and its
        own by one key, and each place may spell it otherwise)."""
        return None

    def read_small(self, entries: list[Entry]) -> list[bytes | AccordError] | None:
        real = [cast(Entry, self._out(entry)) for entry in entries]
        return self.spelled_place.read_small(real)

    def make_dir(self, key: str, **options: Any) -> Entry:
        done = self.spelled_place.make_dir(self.real(key), **self._options(options))
        return done._replace(key=key)

    def make_link(self, key: str, **options: Any) -> Entry:
        done = self.spelled_place.make_link(self.real(key), **self._options(options))
        return done._replace(key=key)

    def set_meta(self, key: str, **options: Any) -> Entry:
        done = self.spelled_place.set_meta(self.real(key), **self._options(options))
        return done._replace(key=key)

    def delete(self, key: str, **options: Any) -> None:
        self.spelled_place.delete(self.real(key), **self._options(options))

    def move(self, key: str, new_key: str, **options: Any) -> Entry:
        done = self.spelled_place.move(
            self.real(key), self.real(new_key), **self._options(options)
        )
        return done._replace(key=new_key)

    def trash_restore(self, item: TrashItem, key: str) -> Entry:
        return self.spelled_place.trash_restore(item, self.real(key))._replace(key=key)

    def trash_list(self) -> Iterator[TrashItem]:
        return self.spelled_place.trash_list()

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        """``like=`` and ``expect=`` entries under their real names."""
        return {
            name: self._out(value) if isinstance(value, Entry) else value
            for name, value in options.items()
        }
