"""A file of JSON objects, one per line, as a record place
(``jsonl:///path/file.jsonl``): a ``CSVPlace`` whose rows are objects,
each line rewritten only where its record changed
(``accord.records.places`` names the interface).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accord.records.canon import typed_record
from accord.records.csvplace import CSVPlace, replacing
from accord.records.csvread import decode, read_bytes
from accord.records.kept import placed
from accord.records.mapping import Entity, PlaceSpec
from accord.records.rows import Rows, collect

__all__ = ["JSONLPlace"]


class JSONLPlace(CSVPlace):
    """A file of JSON objects, one per line (``jsonl:///path/file.jsonl``);
    written whole, atomically, like a CSV file."""

    def __init__(self, spec: PlaceSpec, entity: Entity, fields: tuple[str, ...]):
        super().__init__(spec, entity, fields)
        self.path = spec.url.split(":", 1)[1].removeprefix("//")
        self.label = self.path

    def remember_writes(self, folder: Path) -> None:
        """Not for JSON lines files (read by their own reader)."""

    @staticmethod
    def _fits(row: Any) -> bool:
        """Whether a kept row is one of this kind of file's: a line."""
        return isinstance(row, str)

    def _check_columns(self, row: Any) -> None:
        """A line holds its whole object: nothing to check."""

    def _read_rows(self) -> Rows:
        import json

        rows: list[list[Any]] = []
        lines: list[int] = []
        text = decode(read_bytes(self.path), "utf-8", self.path)
        problems: list[str] = []
        columns = {f: self.spec.column(f) for f in self.fields}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as exc:
                problems.append(f"{self.path}:{number}: not JSON ({exc})")
                continue
            if not isinstance(data, dict):
                problems.append(f"{self.path}:{number}: not a JSON object")
                continue
            absent = [c for c in columns.values() if c not in data]
            if absent:
                problems.append(
                    f"{self.path}:{number}: no {', '.join(map(repr, absent))} "
                    "(a missing field is not an empty value: write null for "
                    "no value)"
                )
                continue
            rows.append([data[c] for c in columns.values()])
            lines.append(number)
        return collect(self.entity, self.fields, self.path, rows, lines, problems)

    def _write_changes(
        self, base: dict[str, str], changes: dict[str, str | None]
    ) -> None:
        """Each line written as it was, but for the records that changed:
        their mapped members get the new values and the object keeps its
        other members; a deleted record's line goes (told to
        ``on_removed`` first); a line put back (``put_back``) is written as
        the trash kept it, where it was; new records go last (the file read
        is the one staged against: ``commit`` checked its stamp)."""
        import json

        columns = [self.spec.column(f) for f in self.fields]
        entity = self.entity
        key_of = self._key_reader(str)

        def values(text: str) -> dict[str, Any]:
            record = typed_record(self.fields, entity.types, text)
            return {
                c: _plain(record[f]) for c, f in zip(columns, self.fields, strict=True)
            }

        text = decode(read_bytes(self.path), "utf-8", self.path)
        lines = [line for line in text.splitlines() if line.strip()]
        # the lines' keys; a changed line's object is read again when it is
        # written, rather than every object held at once
        keys = [key_of(json.loads(line)) for line in lines]
        present = set(keys)
        back = dict(self._back or {})
        self._tell_removed(
            keys,
            [k for k, t in changes.items() if t is None] + list(back),
            lines.__getitem__,
        )
        with replacing(self.path) as out:
            for key, line in placed(zip(keys, lines, strict=True), back, present):
                if key in back or key not in changes:
                    out.write(line + "\n")
                elif (new := changes[key]) is not None:
                    out.write(json.dumps({**json.loads(line), **values(new)}) + "\n")
            for key, new in changes.items():
                if key not in present and key not in back and new is not None:
                    out.write(json.dumps(values(new), sort_keys=True) + "\n")


def _plain(value: Any) -> Any:
    """A value as JSON can hold it."""
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
