"""A CSV file read strictly: what is not a clean table is an error, with
its line and column, before anything is written anywhere.

* every row has exactly as many fields as the header: a missing field is
  not an empty value (``S1031,Margaret,Wirth,6B`` under a header of five
  columns is refused; ``S1031,Margaret,Wirth,6B,`` has an empty fifth field);
* every quoted field is closed, and a closing quote is followed by the
  delimiter or the end of the line;
* the bytes are valid in the declared encoding (UTF-8 unless the mapping
  says ``encoding = "..."``), and hold no NUL character;
* the header names each column once.

Blank lines are skipped. ``read_table`` returns the header and the rows with
the line each starts on; ragged rows are collected as problems (all of them),
a broken quote or bad bytes stop the reading at once.
"""

from __future__ import annotations

import codecs
import csv
import io
from typing import Any, NamedTuple

from accord.errors import BadData, ConfigError

__all__ = ["Table", "column_name", "decode", "map_bytes", "read_bytes", "read_table"]


class Table(NamedTuple):
    header: list[str]
    rows: list[tuple[int, list[str]]]  # (line the row starts on, its fields)
    problems: list[str]  # ragged rows, a repeated header name


def column_name(header: list[str], index: int) -> str:
    """``column 5 ('email')``: a column as a person finds it (1-based)."""
    name = f" ({header[index]!r})" if index < len(header) else ""
    return f"column {index + 1}{name}"


_MISSING = (
    "check the path (a relative one starts from the mapping file's folder);"
    " for a new target file, create it empty (touch it): accord writes its header"
)


def read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise ConfigError(f"file not found: {path}", hint=_MISSING) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def map_bytes(path: str) -> Any:
    """The bytes of the file at ``path``, mapped rather than read (the
    page cache's own pages: no copy, and a tenth of the page faults of
    reading 40 MB into a new bytes object); ``b""`` for an empty file.
    Bytes-like for ``bytes()``, ``hashlib`` and pyarrow; search it with
    ``find``, not ``in``."""
    import mmap

    try:
        with open(path, "rb") as handle:
            try:
                return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            except ValueError:  # an empty file cannot be mapped
                return b""
    except FileNotFoundError:
        raise ConfigError(f"file not found: {path}", hint=_MISSING) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def codec_name(encoding: str, path: str) -> str:
    """The canonical name of the codec ``encoding`` names (``latin-1``:
    ``iso8859-1``); ConfigError for ``path`` when there is none."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise ConfigError(
            f"{path}: unknown encoding {encoding!r}",
            hint="use a Python codec name, such as utf-8, latin-1 or cp1252",
        ) from None


def decode(data: bytes, encoding: str, path: str) -> str:
    """``data`` as text; BadData naming the line and byte of bad bytes."""
    name = codec_name(encoding, path)
    if name == "utf-8" and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode(name)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = data[exc.start : exc.end].hex(" ")
        raise BadData(
            path,
            [f"{path}:{line}: byte {column} (0x{bad}) is not valid {name} text"],
            hint=f"save the file as {name}, or name its encoding in the "
            'mapping (encoding = "latin-1", say)',
        ) from None
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        column = nul - (text.rfind("\n", 0, nul) + 1) + 1
        raise BadData(
            path,
            [f"{path}:{line}: character {column} is a NUL: this is not a text file"],
        )
    return text


def read_table(path: str, encoding: str = "utf-8", delimiter: str = ",") -> Table:
    """The header and rows of the CSV file at ``path``, checked."""
    text = decode(read_bytes(path), encoding, path)
    return parse(text, path, delimiter)


def parse(text: str, path: str, delimiter: str = ",") -> Table:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[tuple[int, list[str]]] = []
    problems: list[str] = []
    header: list[str] = []
    last = 0  # the line the previous row ended on
    try:
        for row in reader:
            start, last = last + 1, reader.line_num
            if not row:
                continue  # a blank line
            if not header:
                header = row
                problems += _header_problems(header, path, start)
                continue
            if len(row) != len(header):
                problems.append(_ragged(path, start, row, header))
                continue
            rows.append((start, row))
    except csv.Error as exc:
        raise BadData(path, [_broken(text, path, last + 1, delimiter, exc)]) from None
    return Table(header, rows, problems)


def _header_problems(header: list[str], path: str, line: int) -> list[str]:
    seen: dict[str, int] = {}
    problems = []
    for index, name in enumerate(header):
        if name in seen:
            problems.append(
                f"{path}:{line}: column {index + 1}: the header names {name!r} "
                f"twice (first in column {seen[name] + 1})"
            )
        seen.setdefault(name, index)
    return problems


def _ragged(path: str, line: int, row: list[str], header: list[str]) -> str:
    width = len(header)
    if len(row) < width:
        missing = ", ".join(
            column_name(header, i) for i in range(len(row), min(width, len(row) + 3))
        )
        more = ", ..." if width - len(row) > 3 else ""
        return (
            f"{path}:{line}: {missing}{more}: missing; the row has {len(row)} "
            f"fields, the header {width} (a missing field is not an empty value: "
            "for no value, leave the field empty between its commas)"
        )
    return (
        f"{path}:{line}: column {width + 1}: one field too many; the row has "
        f"{len(row)} fields, the header {width} (a value with a comma must be "
        "quoted)"
    )


def _broken(text: str, path: str, line: int, delimiter: str, exc: csv.Error) -> str:
    """A quoting error, placed at the quote that causes it."""
    offset = _line_offset(text, line)
    where = _quote_fault(text, offset, delimiter)
    if where is None:
        return f"{path}:{line}: {exc}"
    at, field, kind = where
    at_line = text.count("\n", 0, at) + 1
    char = at - (text.rfind("\n", 0, at) + 1) + 1
    if kind == "open":
        return (
            f"{path}:{at_line}: column {field}: the quote at character {char} is "
            "never closed (the rest of the file would be one value)"
        )
    return (
        f"{path}:{at_line}: column {field}: text after the closing quote at "
        f'character {char} (a quote inside a quoted value is written "")'
    )


def _line_offset(text: str, line: int) -> int:
    offset = 0
    for _ in range(line - 1):
        offset = text.find("\n", offset) + 1
        if offset == 0:
            return len(text)
    return offset


def _quote_fault(text: str, start: int, delimiter: str) -> tuple[int, int, str] | None:
    """From the row starting at ``start``: (offset, column, "open" | "after")
    of the first quote fault, or None."""
    field, at_start, quoted, opened, i = 1, True, False, 0, start
    end = len(text)
    while i < end:
        ch = text[i]
        if quoted:
            if ch == '"':
                if i + 1 < end and text[i + 1] == '"':
                    i += 2
                    continue
                quoted = False
                after = text[i + 1] if i + 1 < end else "\n"
                if after not in (delimiter, "\n", "\r"):
                    return i, field, "after"
            i += 1
            continue
        if ch == delimiter:
            field, at_start = field + 1, True
        elif ch in "\r\n":
            field, at_start = 1, True
        elif at_start and ch == '"':
            quoted, opened, at_start = True, i, False
        else:
            at_start = False
        i += 1
    return (opened, field, "open") if quoted else None
