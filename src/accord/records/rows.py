"""The records a place holds: each key's canonical text and record text.

Records are kept as texts (``accord.records.canon``), not as dicts of
Python values: a million of them are two million strings in one dict, and
two places agree on a record when its texts are equal. A record becomes
Python values (``record()``) only where it is needed: to show a change, to
write it, to merge it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from accord.errors import BadData
from accord.records.canon import NULL, SEP, canonical, decode, typed, typer
from accord.records.mapping import Entity
from accord.records.values import BadValue

__all__ = ["Rows", "collect"]


class Rows:
    """{key text: record text} of one place, with the fields they hold:
    a dict, or two Arrow string arrays (key texts, record texts) as the
    fast readers give them, made into a dict only when one is asked for."""

    def __init__(
        self,
        fields: tuple[str, ...],
        types: dict[str, str],
        key_fields: tuple[str, ...],
        found: dict[str, str] | tuple[Any, Any],
        origin: str | None = None,
    ) -> None:
        self.fields = fields
        #: the name of the kept file the columns were mapped from, if any
        self.origin = origin
        self.types = types
        self.key_fields = key_fields
        self._by_key = found if isinstance(found, dict) else None
        self._columns = None if isinstance(found, dict) else found
        # each field's conversion to Python values, picked once
        self._typers = [typer(types.get(name, "str")) for name in fields]
        self._key_typers = [typer(types.get(name, "str")) for name in key_fields]

    @property
    def by_key(self) -> dict[str, str]:
        if self._by_key is None:
            assert self._columns is not None
            keys, texts = self._columns
            self._by_key = dict(zip(keys.to_pylist(), texts.to_pylist(), strict=True))
        return self._by_key

    def columns(self) -> tuple[Any, Any]:
        """(key texts, record texts) as two Arrow string arrays."""
        if self._columns is None:
            import pyarrow as pa

            found = self.by_key
            self._columns = (
                pa.array(list(found), pa.string()),
                pa.array(list(found.values()), pa.string()),
            )
        return self._columns

    def __len__(self) -> int:
        if self._by_key is None and self._columns is not None:
            return len(self._columns[0])
        return len(self.by_key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_key)

    def key(self, key_text: str) -> tuple[Any, ...]:
        """The key as Python values (what plans show)."""
        parts = decode(key_text)
        return tuple([f(part) for f, part in zip(self._key_typers, parts, strict=True)])

    def record(self, text: str) -> dict[str, Any]:
        """A record text as {field: Python value} (``canon.typed_record``)."""
        values = [f(v) for f, v in zip(self._typers, decode(text), strict=True)]
        return dict(zip(self.fields, values, strict=True))

    def differ(self, text: str, other: str) -> bool:
        """Whether two record texts hold different values in some field:
        ``record(text) != record(other)``, without making either record
        when neither text holds a backslash (no escape, no NULL: the
        texts split as they are, and only the fields whose texts differ
        are converted and compared)."""
        if "\\" in text or "\\" in other:
            return self.record(text) != self.record(other)
        return any(
            ours != theirs and f(ours) != f(theirs)
            for f, ours, theirs in zip(
                self._typers, text.split(SEP), other.split(SEP), strict=True
            )
        )

    def records(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        """Every record as Python values, by key (small tables, tests)."""
        return {self.key(k): self.record(t) for k, t in self.by_key.items()}


def collect(
    entity: Entity,
    fields: tuple[str, ...],
    label: str,
    rows: Iterable[Sequence[Any]],
    places: Sequence[Any] | None = None,
    problems: list[str] | None = None,
    names: dict[str, str] | None = None,
) -> Rows:
    """Rows from each row's values in ``fields`` order. ``places`` says
    where each row is (line numbers; else its position, from 1), ``names``
    where each field is (``column 5 ('Born')``). A value that does not
    convert, a missing or duplicate key are problems, raised together with
    ``problems`` already found as BadData."""
    empty_text = entity.empty == "text"
    convert = [canonical(entity.types.get(n, "str"), empty_text) for n in fields]
    at = [fields.index(k) for k in entity.key]
    single = at[0] if len(at) == 1 else None
    problems = list(problems or [])
    found: dict[str, str] = {}
    duplicates: dict[str, list[int]] = {}
    join = SEP.join
    for number, row in enumerate(rows):
        try:
            values = [f(v) for f, v in zip(convert, row, strict=True)]
        except BadValue:
            where = _where(label, _place(places, number))
            problems += _bad_values(where, fields, convert, row, names or {})
            continue
        if single is not None:
            key = values[single]
            missing = key == NULL or key == ""
        else:
            parts = [values[i] for i in at]
            key, missing = join(parts), NULL in parts or "" in parts
        if missing:
            problems.append(
                f"{_where(label, _place(places, number))}: no value for the key "
                f"{'/'.join(entity.key)}"
            )
        elif key in found:
            duplicates.setdefault(key, []).append(number)
        else:
            found[key] = join(values)
    if duplicates:
        firsts = (
            _firsts(rows, duplicates, convert, at) if isinstance(rows, Sequence) else {}
        )
        problems += _duplicates(entity, label, duplicates, places, firsts)
    if problems:
        raise BadData(label, problems)
    return Rows(fields, entity.types, entity.key, found)


def _place(places: Sequence[Any] | None, number: int) -> Any:
    return places[number] if places is not None else number + 1


def _bad_values(
    where: str,
    fields: tuple[str, ...],
    convert: list[Callable[[Any], str]],
    row: Sequence[Any],
    names: dict[str, str],
) -> list[str]:
    found = []
    for name, to_text, value in zip(fields, convert, row, strict=True):
        try:
            to_text(value)
        except BadValue as exc:
            found.append(f"{where}: {names.get(name, f'field {name}')}: {exc}")
    return found


def _where(label: str, place: Any) -> str:
    return f"{label}:{place}" if isinstance(place, int) else str(place)


def _duplicates(
    entity: Entity,
    label: str,
    duplicates: dict[str, list[int]],
    places: Sequence[Any] | None,
    firsts: dict[str, int],
) -> list[str]:
    """Each repeated key: where it is, and where it was first seen."""
    problems = []
    for key, numbers in duplicates.items():
        shown = tuple(
            typed(entity.types.get(n, "str"), p)
            for n, p in zip(entity.key, decode(key), strict=True)
        )
        first = ""
        if key in firsts:
            first = f" (first at {_where(label, _place(places, firsts[key]))})"
        problems += [
            f"{_where(label, _place(places, n))}: duplicate key {shown!r}{first}"
            for n in numbers
        ]
    return problems


def _firsts(
    rows: Sequence[Sequence[Any]],
    duplicates: dict[str, list[int]],
    convert: list[Callable[[Any], str]],
    at: list[int],
) -> dict[str, int]:
    """Where each repeated key was first seen (a second pass over the rows)."""
    firsts: dict[str, int] = {}
    for number, row in enumerate(rows):
        try:
            key = SEP.join(convert[i](row[i]) for i in at)
        except BadValue:
            continue
        if key in duplicates and key not in firsts:
            firsts[key] = number
    return firsts
