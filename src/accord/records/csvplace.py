"""A CSV file with a header row as a record place (``csv:///path``): read
by the fast reader, else by the strict one that says what is wrong where;
changes staged against the file as read and written whole, atomically,
keeping the file's other columns, order, line ends and encoding
(``accord.records.places`` names the interface).
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from accord.errors import BadData, ConfigError, PreconditionFailed
from accord.records.canon import SEP, canonical
from accord.records.canon import decode as decode_text
from accord.records.csvread import (
    codec_name,
    column_name,
    decode,
    map_bytes,
    parse,
    read_bytes,
)
from accord.records.fastcsv import canonical_columns
from accord.records.kept import Kept, kept_at, placed, positions, read_kept
from accord.records.mapping import Entity, PlaceSpec
from accord.records.rows import Rows, collect
from accord.records.values import to_text

__all__ = ["CSVPlace", "replacing"]

Key = tuple[Any, ...]
Records = dict[Key, dict[str, Any]]


#: one CSV file parsed at a time: the engine reads both places of a pair
#: at once, which pays while one waits on a database; two parses on the
#: same cores took 10-25% more CPU and 130 MB more memory at 1,000,000 rows
#: (page faults and caches shared; docs/architecture.md)
_PARSING = threading.Lock()


class CSVPlace:
    """A CSV file with a header row; written whole, atomically."""

    def __init__(self, spec: PlaceSpec, entity: Entity, fields: tuple[str, ...]):
        self.spec, self.entity, self.fields = spec, entity, fields
        self.path = spec.url[len("csv://") :]
        self.label = self.path

    def read(self) -> Records:
        return self.read_rows().records()

    def _read_rows(self) -> Rows:
        """Every record, checked: the fast reader, else the strict one, which
        says what is wrong where."""
        options = self.spec.options
        encoding = options.get("encoding", "utf-8")
        delimiter = options.get("delimiter", ",")
        data = map_bytes(self.path)
        entity = self.entity
        if not len(data) and self.spec is not entity.source:
            # an empty target file: no records yet (written with a header)
            return Rows(self.fields, entity.types, entity.key, {})
        kept = self._written.get(data) if self._written is not None else None
        if kept is not None:
            return Rows(self.fields, entity.types, entity.key, kept[:2], origin=kept[2])
        with _PARSING:
            found = canonical_columns(data, *self._read_as())
        if found is not None:
            return Rows(self.fields, entity.types, entity.key, found)
        table = parse(decode(bytes(data), encoding, self.path), self.path, delimiter)
        header = table.header
        where = {name: i for i, name in enumerate(header)}
        missing = [
            self.spec.column(f) for f in self.fields if self.spec.column(f) not in where
        ]
        if missing and not any(header):
            raise BadData(
                self.path,
                [f"{self.path}:1: no header: the first line names no column"],
                hint="a source's first line names its columns "
                f"({', '.join(dict.fromkeys(missing))}); was the export cut short?",
            )
        if missing:
            other = _other_delimiter(header, missing, delimiter)
            if other is not None:
                raise BadData(
                    self.path,
                    [
                        f"{self.path}:1: the header is one column, "
                        f"{header[0]!r}: the file is separated by {other!r}, "
                        f"not {delimiter!r}"
                    ],
                    hint=f"add delimiter = {_TOML[other]} to the "
                    "mapping's source (or target) of this file",
                )
            raise BadData(
                self.path,
                [
                    f"{self.path}:1: the header has no column {c!r} "
                    f"(it has: {', '.join(header)})"
                    for c in dict.fromkeys(missing)
                ],
            )
        index = [where[self.spec.column(f)] for f in self.fields]
        names = {
            f: column_name(header, i) for f, i in zip(self.fields, index, strict=True)
        }
        rows = [[row[i] for i in index] for _, row in table.rows]
        lines = [line for line, _ in table.rows]
        return collect(
            entity, self.fields, self.path, rows, lines, table.problems, names
        )

    def _read_as(self) -> tuple[Any, ...]:
        """How the fast reader reads this file (``canonical_columns``)."""
        options, entity = self.spec.options, self.entity
        return (
            options.get("encoding", "utf-8"),
            options.get("delimiter", ","),
            [(self.spec.column(f), entity.types.get(f, "str"), f) for f in self.fields],
            [self.spec.column(k) for k in entity.key],
            entity.empty == "text",
        )

    #: what accord read back from the file it last wrote (``WrittenFile``)
    _written: Any = None

    def remember_writes(self, folder: Path) -> None:
        """Keep what this file holds after accord writes it in ``folder``,
        and take it from there while its bytes stay the same."""
        from accord.records.written import WrittenFile

        self._written = WrittenFile(folder, self.path, repr(self._read_as()))

    def kept_rows(self) -> Rows | None:
        """The records kept for the file as it is now (``WrittenFile``),
        without parsing it; None when none are."""
        if self._written is None:
            return None
        kept = self._written.get(map_bytes(self.path))
        if kept is None:
            return None
        entity = self.entity
        return Rows(self.fields, entity.types, entity.key, kept[:2], origin=kept[2])

    def check(self, actions: list[Any]) -> list[str]:
        """Values the file's encoding cannot hold, found before anything is
        written (UTF-8 holds every text; latin-1 or cp1252 do not)."""
        encoding = self._encoding()
        if encoding in ("utf-8", "utf-8-sig"):
            return []
        named = self.spec.options.get("encoding", encoding)
        problems = [
            f"{self.label}: column {c!r}: the header cannot be written in {named}"
            for c in (self.spec.column(f) for f in self.fields)
            if not _encodes(c, encoding)
        ]
        for action in actions:
            if action.op == "delete":
                continue
            key = "/".join(to_text(part) for part in action.key)
            problems += [
                f"{self.label}: {key}: field {name}: {to_text(value)!r} cannot be"
                f" written in the file's encoding ({named})"
                for name, value in (action.after or {}).items()
                if value is not None and not _encodes(to_text(value), encoding)
            ]
        return problems

    def _encoding(self) -> str:
        """The file's codec, by its canonical name."""
        return codec_name(self.spec.options.get("encoding", "utf-8"), self.path)

    def _key_reader(self, position: Callable[[str], Any]) -> Callable[[Any], str]:
        """The key text of a record as the file holds it (a row, or an
        object), its key columns found at ``position(column name)``."""
        entity = self.entity
        empty_text = entity.empty == "text"
        keyed = [
            (
                position(self.spec.column(k)),
                canonical(entity.types.get(k, "str"), empty_text),
            )
            for k in entity.key
        ]
        return lambda row: SEP.join([to_text(row[i]) for i, to_text in keyed])

    #: the records as read ({key text: record text}, in the file's order),
    #: the file as it was then, and the changes staged since
    _base: dict[str, str] | None = None
    _stamp: tuple[int, int, int] | None = None
    _changes: dict[str, str | None] | None = None
    #: rows restored from the trash as the file held them (``put_back``)
    _back: dict[str, Kept] | None = None
    #: told, before the file is replaced, the rows that leave it (deleted,
    #: or replaced by ``put_back``) as the trash keeps them: {key text:
    #: ``accord.records.kept`` text}
    on_removed: Callable[[dict[str, str]], None] | None = None

    def read_rows(self) -> Rows:
        """Every record, checked (``_read_rows``); remembered, with the
        file's stamp, as what later writes expect to replace."""
        stamp = _stamp(self.path)
        rows = self._read_rows()
        self._rows, self._stamp, self._base = rows, stamp, None
        return rows

    def change(self, op: str, key: Key, before: Any, after: Any) -> None:
        """Stage one change (the file is rewritten by ``commit``); raises
        PreconditionFailed when the record is not as expected."""
        if self._stamp is None:
            self.read_rows()
        if self._base is None:
            self._base = self._rows.by_key
        if self._changes is None:
            self._changes = {}
        key_text = self.key_text(key)
        if key_text in self._changes:
            current = self._changes[key_text]
        else:
            current = self._base.get(key_text)
        if op == "create":
            if current is not None:
                raise PreconditionFailed(
                    "appeared since it was read; left alone", where=self.label
                )
            self._changes[key_text] = self._text(after)
            return
        if current is None or current != self._text(before):
            raise PreconditionFailed(
                "changed since it was read; left alone", where=self.label
            )
        self._changes[key_text] = (
            None if op == "delete" else self._text({**before, **after})
        )

    def key_text(self, key: Key) -> str:
        """The canonical text of a record key, as the place keys its rows."""
        return self._text(dict(zip(self.entity.key, key, strict=True)), key=True)

    def put_back(
        self, key: Key, before: dict[str, Any] | None, record: dict[str, Any], kept: str
    ) -> None:
        """Stage a record restored from the trash with its row as the file
        held it (``kept``, an ``accord.records.kept`` text): in place of
        the row that holds the key now (``before``: its record; None when
        none does), else where the row was. ConfigError, and nothing
        staged, when the file's header lost a column the row has a value
        in."""
        row = read_kept(kept)
        if row is not None and self._fits(row.row):
            self._check_columns(row.row)
        else:
            row = None
        if before is None:
            self.change("create", key, None, record)
        else:
            self.change("update", key, before, record)
        if row is not None:
            if self._back is None:
                self._back = {}
            self._back[self.key_text(key)] = row

    @staticmethod
    def _fits(row: Any) -> bool:
        """Whether a kept row is one of this kind of file's: a CSV row's
        values by column."""
        return isinstance(row, dict)

    def _check_columns(self, row: dict[str, Any]) -> None:
        """ConfigError when a kept row has a value in a column the file's
        header no longer has (it could not be written back)."""
        header = self._file_header() or [self.spec.column(f) for f in self.fields]
        lost = [c for c, v in row.items() if v not in (None, "") and c not in header]
        if lost:
            raise ConfigError(
                f"{self.label}: the row kept in the trash has values in columns"
                f" the file no longer has: {', '.join(map(repr, lost))}",
                hint="add them to the file's header to restore the row whole",
            )

    def _text(self, record: dict[str, Any], key: bool = False) -> str:
        """The canonical text of a record (or of its key)."""
        empty_text = self.entity.empty == "text"
        names = self.entity.key if key else self.fields
        return SEP.join(
            canonical(self.entity.types.get(n, "str"), empty_text)(record.get(n))
            for n in names
        )

    def commit(self) -> None:
        """Write what was staged: the whole file, once, atomically (a new
        file renamed over the old one), when the file is still the one
        that was read; its records keep their order, new ones go last."""
        changes = self._changes
        if not changes:
            return
        assert self._base is not None
        if _stamp(self.path) != self._stamp:
            self._changes = self._back = None
            raise PreconditionFailed(
                "the file changed since it was read; nothing was written to it",
                where=self.label,
            )
        base = self._base
        self._write_changes(base, changes)
        for key_text, text in changes.items():
            if text is None:
                base.pop(key_text, None)
            else:
                base[key_text] = text
        self._stamp = _stamp(self.path)
        self._changes = self._back = None
        if self._written is not None:
            data = map_bytes(self.path)
            self._written.put(data, canonical_columns(data, *self._read_as()))

    def rollback(self) -> None:
        self._changes = self._back = None

    def _tell_removed(
        self, keys: list[str], leaving: list[str], row_at: Callable[[int], Any]
    ) -> None:
        """The rows leaving the file (their keys ``leaving``; ``keys``: the
        file's rows in order, ``row_at``: a row as the trash keeps it),
        told to ``on_removed`` before the file is replaced."""
        if self.on_removed is None or not leaving:
            return
        found = positions(keys, leaving)
        removed = {key: kept_at(keys, at, row_at(at)) for key, at in found.items()}
        if removed:
            self.on_removed(removed)

    def _write_changes(
        self, base: dict[str, str], changes: dict[str, str | None]
    ) -> None:
        """The file rewritten with ``changes`` (key text: record text, None
        to delete) made to ``base`` (the records read, in the file's order;
        new records go last). A file whose header is the mapped columns, in
        their order, is written from the record texts; a file with other
        columns too, or in another order, keeps its header and every
        column the mapping does not name (``_write_merged``), as does a
        file a row is put back in (``put_back``). Each deleted row is told
        to ``on_removed`` first."""
        mapped = [self.spec.column(f) for f in self.fields]
        header = self._file_header()
        if header is not None and (header != mapped or self._back):
            self._write_merged(changes)
            return
        gone = [k for k, t in changes.items() if t is None]
        if gone and self.on_removed is not None:
            keys = list(base)
            row_at = lambda at: _by_column(mapped, base[keys[at]])  # noqa: E731
            self._tell_removed(keys, gone, row_at)
        kept = (changes.get(k, t) if k in changes else t for k, t in base.items())
        added = (t for k, t in changes.items() if k not in base)
        self._write_rows(
            mapped,
            (
                ["" if v is None else v for v in decode_text(t)]
                for t in itertools.chain(kept, added)
                if t is not None
            ),
        )

    def _write_merged(self, changes: dict[str, str | None]) -> None:
        """Rewrite the file row by row from what it holds (the file read is
        the one staged against: ``commit`` checked its stamp): a row whose
        record changed gets its mapped columns' new values and keeps the
        others; a deleted one goes (told to ``on_removed`` first, every
        column); a row put back (``put_back``) is written as the trash kept
        it, where it was; the others are written as they were; new records
        go last, their other columns empty."""
        table = parse(
            decode(bytes(read_bytes(self.path)), self._encoding(), self.path),
            self.path,
            self.spec.options.get("delimiter", ","),
        )
        header = table.header
        at = [header.index(self.spec.column(f)) for f in self.fields]
        key_of = self._key_reader(header.index)
        keys = [key_of(row) for _, row in table.rows]
        present = set(keys)
        back = {
            key: kept._replace(row=[_cell(kept.row, name) for name in header])
            for key, kept in (self._back or {}).items()
        }
        self._tell_removed(
            keys,
            [k for k, t in changes.items() if t is None] + list(back),
            lambda at: dict(zip(header, table.rows[at][1], strict=True)),
        )

        def edited(row: list[str], text: str) -> list[str]:
            row = list(row)
            for i, value in zip(at, decode_text(text), strict=True):
                row[i] = "" if value is None else value
            return row

        def rows() -> Iterator[list[str]]:
            listed = zip(keys, (row for _, row in table.rows), strict=True)
            for key, row in placed(listed, back, present):
                if key in back or key not in changes:
                    yield row
                elif (text := changes[key]) is not None:
                    yield edited(row, text)
            for key, text in changes.items():
                if key not in present and key not in back and text is not None:
                    yield edited([""] * len(header), text)

        self._write_rows(header, rows())

    def _file_header(self) -> list[str] | None:
        """The header row of the file as it is (None when it has none)."""
        data = map_bytes(self.path)
        head = bytes(data[:65536])
        if len(head) == 65536 and b"\n" not in head:  # a header this long
            head = bytes(data)
        text = head.decode(self._encoding(), errors="replace").removeprefix("\ufeff")
        reader = csv.reader(
            io.StringIO(text, newline=""),
            delimiter=self.spec.options.get("delimiter", ","),
        )
        try:
            return next((row for row in reader if row), None)
        except csv.Error:
            return None

    def _write_rows(self, header: list[str], rows: Iterable[list[str]]) -> None:
        """Replace the file with these rows, atomically, written as it
        was: its delimiter and encoding (the mapping's), its line ends and
        its byte order mark (the file's own; CRLF for a new file)."""
        encoding = self._encoding()
        bom, line_end = _csv_style(self.path)
        if bom and encoding == "utf-8":
            encoding = "utf-8-sig"
        with replacing(self.path, newline="", encoding=encoding) as out:
            writer = csv.writer(
                out,
                delimiter=self.spec.options.get("delimiter", ","),
                lineterminator=line_end,
            )
            writer.writerow(header)
            writer.writerows(rows)


@contextlib.contextmanager
def replacing(
    path: str, newline: str | None = None, encoding: str = "utf-8"
) -> Iterator[IO[str]]:
    """A new file beside ``path``, fsynced and renamed over it when the
    block ends; removed when it fails."""
    folder = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile(
        "w",
        newline=newline,
        encoding=encoding,
        dir=folder,
        delete=False,
        prefix=".accord-",
        suffix=".tmp",
    ) as out:
        try:
            yield out
            out.flush()
            os.fsync(out.fileno())
        except BaseException:
            out.close()
            os.unlink(out.name)
            raise
    os.replace(out.name, path)


def _encodes(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def _csv_style(path: str) -> tuple[bool, str]:
    """Whether the file starts with a UTF-8 byte order mark, and how its
    first line ends (CRLF when the file is new or has one line only)."""
    import codecs

    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except FileNotFoundError:
        return False, "\r\n"
    end = head.find(b"\n")
    line_end = "\n" if end > 0 and head[end - 1 : end] != b"\r" else "\r\n"
    return head.startswith(codecs.BOM_UTF8), line_end


def _stamp(path: str) -> tuple[int, int, int] | None:
    """What tells a file from the one read before: inode, size, mtime."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return (found.st_ino, found.st_size, found.st_mtime_ns)


def _by_column(columns: list[str], text: str) -> dict[str, str]:
    """A record text as the row the file holds: its values by column."""
    return {
        c: "" if v is None else v
        for c, v in zip(columns, decode_text(text), strict=True)
    }


def _cell(row: dict[str, Any], column: str) -> str:
    """A kept row's value for ``column`` (empty where it had none)."""
    value = row.get(column)
    return "" if value is None else str(value)


#: a delimiter as a TOML string, for the hint
_TOML = {";": '";"', "\t": '"\\t"', "|": '"|"', ",": '","'}


def _other_delimiter(header: list[str], missing: list[str], used: str) -> str | None:
    """The delimiter a one-column header is separated by, when it holds
    every missing column with it (an export written with ";" or a tab, read
    with ","); None otherwise."""
    if len(header) != 1:
        return None
    for other in (";", "\t", "|", ","):
        if other != used and set(missing) <= set(header[0].split(other)):
            return other
    return None
