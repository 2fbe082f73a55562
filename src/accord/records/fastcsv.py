"""A CSV file read column by column with pyarrow: the fast path.

pyarrow's reader (C++, measured against Python's csv module and polars in
docs/architecture.md) parses the file, and its compute kernels turn each
column into canonical texts (``accord.records.canon``) without a Python
call per value. It is lenient where accord is strict, so the file is
checked first: UTF-8 (or re-encoded from the declared encoding), no NUL,
and, when it holds quotes at all, every line matching the strict grammar
(RE2, per line). Anything doubtful (a quote rule broken, a value that does
not convert, a missing or duplicate key, a row of the wrong width) returns
None: the caller then reads the file with ``csvread``, which is slower,
finds every problem with its line and column, and is the reference.
"""

from __future__ import annotations

import codecs
import contextlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

from accord.records.arrow import canonical_column, texts_columns

__all__ = ["canonical_columns", "canonical_texts", "unmapped"]

_DELIMITERS = {",": ",", ";": ";", "\t": "\t", "|": "\\|"}  # as a regex
_FIELD = r'(?:"(?:[^"]|"")*"|[^{d}"\r\n][^{d}\r\n]*|)'


def canonical_columns(
    data: bytes,
    encoding: str,
    delimiter: str,
    columns: Sequence[tuple[str, str, str]],
    key_columns: Sequence[str],
    empty_text: bool,
) -> tuple[Any, Any] | None:
    """(key texts, record texts), as two Arrow string arrays, of a CSV
    file's bytes, or None when the strict reader must look. ``columns``
    lists (column name, type, field) in the record's field order;
    ``key_columns`` the key's column names."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pacsv
    except ImportError:  # pragma: no cover - pyarrow comes with the records extra
        return None
    source = data
    data = _utf8(data, encoding)
    if data is None or data.find(b"\0") >= 0 or delimiter not in _DELIMITERS:
        return None
    if any(kind == "list" for c, kind, _ in columns if c in key_columns):
        return None
    quoted = data.find(b'"') >= 0
    header = _header(data, delimiter)
    if header is None or (quoted and not _quotes_ok(data, delimiter, pa, pc)):
        return None
    where = {name: i for i, name in enumerate(header)}
    if len(where) != len(header) or any(c not in where for c, _, _ in columns):
        return None
    names = [f"c{i}" for i in range(len(header))]
    left = Counter(where[column] for column, _, _ in columns)
    try:
        body = pacsv.read_csv(
            pa.BufferReader(data),
            # one thread: on 2 shared cores, with both sides read at once,
            # pyarrow's own pool was 2-3x slower (docs/architecture.md)
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, use_threads=False
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=quoted
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                # only the mapped columns become arrays (every row is still
                # checked for its width)
                include_columns=[names[at] for at in sorted(left)],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException):
        return None
    finally:
        unmapped(source)
    # each parsed column goes as soon as its last field is made of it (a
    # column in many chunks is copied into one: not all of them at once)
    parsed = {at: body.column(names[at]) for at in left}
    del body
    made = []
    for column, kind, _ in columns:
        at = where[column]
        texts = canonical_column(parsed[at], kind, empty_text)
        if texts is None:
            return None
        made.append(texts)
        left[at] -= 1
        if not left[at]:
            del parsed[at]
    order = [c for c, _, _ in columns]
    return texts_columns(made, [order.index(c) for c in key_columns])


def canonical_texts(*args: Any) -> dict[str, str] | None:
    """{key text: record text}: ``canonical_columns`` as one dict."""
    found = canonical_columns(*args)
    if found is None:
        return None
    return dict(zip(found[0].to_pylist(), found[1].to_pylist(), strict=True))


def unmapped(data: Any) -> None:
    """Let a mapped file's pages go from this process once read (they stay
    in the page cache, and come back if the mapping is read again): the
    memory of a million records is mostly the arrays made from them."""
    import mmap

    if isinstance(data, mmap.mmap) and not data.closed:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            data.madvise(mmap.MADV_DONTNEED)


def _header(data: bytes, delimiter: str) -> list[str] | None:
    """The header's names, when it is one simple line."""
    import csv

    end = data.find(b"\n")
    first = bytes(data[: len(data) if end < 0 else end]).rstrip(b"\r")
    if first.count(b'"') % 2:
        return None
    try:
        return next(csv.reader([first.decode()], delimiter=delimiter, strict=True))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return None


def _utf8(data: bytes, encoding: str) -> bytes | None:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return None
    if name == "utf-8":
        return data[3:] if data[:3] == codecs.BOM_UTF8 else data
    try:
        return bytes(data).decode(name).encode("utf-8")
    except UnicodeError:
        return None


def _quotes_ok(data: bytes, delimiter: str, pa: Any, pc: Any) -> bool:
    """Every line follows the strict quote rules, and no quoted value spans
    lines (those files take the strict reader)."""
    lines = pa.array(bytes(data).split(b"\n"), pa.binary())
    if pc.any(pc.equal(pc.bit_wise_and(pc.count_substring(lines, b'"'), 1), 1)).as_py():
        return False
    field = _FIELD.format(d=delimiter)
    pattern = f"^{field}(?:{_DELIMITERS[delimiter]}{field})*\\r?$"
    return bool(pc.all(pc.match_substring_regex(lines, pattern)).as_py())
