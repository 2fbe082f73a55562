"""Columns of records as canonical texts, with pyarrow's compute kernels.

The column-at-a-time twin of ``accord.records.canon``: each function gives
exactly the texts that module gives value by value, or None when a value
does not convert (or comes in a type whose conversion could differ), so
that the caller falls back to the value-by-value reader, which is the
reference and says what is wrong where. Tests check both agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from accord.arrowfile import one_array
from accord.records.canon import NULL, SEP
from accord.replica import are_numbers, number_keys

__all__ = ["canonical_column", "one_array", "texts_by_key", "texts_columns"]

_TRUE = ["1", "true", "yes", "y", "t", "on"]
_DAY = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"  # a date's
_FALSE = ["0", "false", "no", "n", "f", "off"]


def texts_columns(columns: list[Any], key_at: Sequence[int]) -> tuple[Any, Any] | None:
    """(key texts, record texts) of canonical columns (in field order), as
    two Arrow string arrays; None when a key has no value or is repeated
    (the reference says where). It empties ``columns``, so that their
    memory goes as soon as it can."""
    import pyarrow.compute as pc

    if any(columns[i].null_count for i in key_at):
        return None
    keys = _join([columns[i] for i in key_at], pc)
    joined = _join(list(columns), pc)
    columns.clear()
    if not _unique(keys, pc):
        return None
    return keys, joined


def _unique(keys: Any, pc: Any) -> bool:
    """Whether no key is repeated: on int64 when the keys are numbers in
    their one spelling (a hash of ints is 2-3x faster than of strings, and
    keys in increasing order need none), else on the texts (``unique``:
    twice ``count_distinct``'s speed)."""
    ints = number_keys(keys)  # "007" and "7" are two keys: not numbers
    if ints is None:
        return len(pc.unique(keys)) == len(keys)
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with pandas, mostly
        return len(pc.unique(ints)) == len(ints)
    numbers = ints.to_numpy()
    if len(numbers) < 2 or bool(np.all(numbers[1:] > numbers[:-1])):
        return True
    return len(pc.unique(ints)) == len(ints)


def texts_by_key(columns: list[Any], key_at: Sequence[int]) -> dict[str, str] | None:
    """{key text: record text} of canonical columns (``texts_columns``)."""
    found = texts_columns(columns, key_at)
    if found is None:
        return None
    return dict(zip(found[0].to_pylist(), found[1].to_pylist(), strict=True))


def _join(columns: list[Any], pc: Any) -> Any:
    if len(columns) == 1:
        if not columns[0].null_count:
            return columns[0]  # the same array: what is known of it holds
        return pc.fill_null(columns[0], NULL)
    return pc.binary_join_element_wise(
        *columns, SEP, null_handling="replace", null_replacement=NULL
    )


def canonical_column(
    column: Any,
    kind: str,
    empty_text: bool,
    *,
    loose_bools: bool = False,
    by_value: bool = True,
) -> Any:
    """The canonical texts of one column (nulls: no value), or None.
    ``loose_bools``: the column's booleans may have been coerced from other
    values by the reader (SQLite), so they are not trusted. ``by_value``:
    a long bool or date column may be converted a distinct value at a
    time (``_by_value``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if hasattr(column, "combine_chunks"):
        column = one_array(column)
    kind_of = column.type
    if pa.types.is_large_string(kind_of):
        column = column.cast(pa.string())
    elif not pa.types.is_string(kind_of):
        return _typed(column, kind, empty_text, loose_bools, pa, pc)
    if kind == "str":
        return _text(column, empty_text, pa, pc)
    if kind in ("bool", "date") and by_value:
        return _by_value(column, kind, empty_text, pc)
    if kind in ("int", "date") and _spelled_alike(column, kind, pa, pc):
        return column
    trimmed = pc.utf8_trim(column, " \t")
    blank = pc.equal(trimmed, "")
    if kind == "int":
        good = pc.or_(blank, pc.match_substring_regex(trimmed, r"^[+-]?[0-9]+$"))
        if not pc.all(good).as_py():
            return None
        digits = pc.if_else(blank, "0", trimmed)
        if pc.any(pc.match_substring(digits, "+")).as_py():
            digits = pc.replace_substring_regex(digits, r"^\+", "")
        try:
            numbers = pc.cast(digits, pa.int64())
        except pa.ArrowInvalid:
            return None  # beyond 64 bits: the reference copes
        return _blank_null(blank, pc.cast(numbers, pa.string()), pa, pc)
    if kind == "bool":
        lowered = pc.utf8_lower(trimmed)
        yes = pc.is_in(lowered, value_set=pa.array(_TRUE))
        no = pc.is_in(lowered, value_set=pa.array(_FALSE))
        if not pc.all(pc.or_(blank, pc.or_(yes, no))).as_py():
            return None
        return _blank_null(blank, pc.if_else(yes, "true", "false"), pa, pc)
    if kind == "date":
        shaped = pc.match_substring_regex(trimmed, _DAY)
        if not pc.all(pc.or_(blank, shaped)).as_py():
            return None
        try:  # a strict cast: 2014-02-30 is refused
            days = pc.cast(pc.if_else(blank, "2000-01-01", trimmed), pa.date32())
        except pa.ArrowInvalid:
            return None
        if _before_year_one(days, pa, pc):
            return None
        return _blank_null(blank, trimmed, pa, pc)
    return None  # lists: the reference


#: a column shorter than this is converted as it is
_BY_VALUE_FROM = 4096


def _by_value(column: Any, kind: str, empty_text: bool, pc: Any) -> Any:
    """A bool or date column's texts, made of its distinct values: a few
    (a date column of a million rows holds some thousands of days, a bool
    column a handful of spellings), converted and checked as a column by
    ``canonical_column`` itself, then put back in the rows' places. Each
    text depends on its value alone and every check holds for all values
    exactly when it holds for the distinct ones, so the texts are those
    of the whole column: in a tenth of the time, where hashing the
    values is cheaper than parsing them again. A column whose values
    mostly differ, or that has none or nulls, is converted as it is."""
    if len(column) < _BY_VALUE_FROM or column.null_count:
        return canonical_column(column, kind, empty_text, by_value=False)
    encoded = pc.dictionary_encode(column)
    values = encoded.dictionary
    if len(values) > len(column) // 4:
        return canonical_column(column, kind, empty_text, by_value=False)
    texts = canonical_column(values, kind, empty_text, by_value=False)
    if texts is None:
        return None
    if texts is values:
        return column  # every value already its text: no new texts
    return texts.take(encoded.indices)


def _spelled_alike(column: Any, kind: str, pa: Any, pc: Any) -> bool:
    """Whether every value of an int or date column is already its
    canonical text (no blank, no sign or zero in front, no spaces), as it
    mostly is: one regular expression over the column (and for dates the
    strict cast that refuses 2014-02-30), making no new texts."""
    if len(column) == 0 or column.null_count:
        return False
    if kind == "int":  # remembered for the array: a key column is asked again
        return are_numbers(column)
    if not pc.all(pc.match_substring_regex(column, _DAY)).as_py():
        return False
    try:  # a strict cast: 2014-02-30 is refused
        days = pc.cast(column, pa.date32())
    except pa.ArrowInvalid:
        return False
    return not _before_year_one(days, pa, pc)


def _text(column: Any, empty_text: bool, pa: Any, pc: Any) -> Any:
    data = column.buffers()[2]  # every value's bytes, in one buffer
    if data is not None and _holds(data, (b"\\", SEP.encode())):
        column = pc.replace_substring(column, "\\", "\\\\")
        column = pc.replace_substring(column, SEP, "\\u")
    if not empty_text:
        return _blank_null(pc.equal(column, ""), column, pa, pc)
    return column


def _before_year_one(days: Any, pa: Any, pc: Any) -> bool:
    """Whether a date is before 0001-01-01 (Arrow reads 0000-01-01; Python,
    the reference, has no year 0)."""
    import datetime

    first = pa.scalar(datetime.date(1, 1, 1), pa.date32())
    return bool(pc.any(pc.less(days, first)).as_py())


def _holds(data: Any, needles: tuple[bytes, ...]) -> bool:
    """Whether a buffer holds any of ``needles`` (a plain byte search: a
    tenth of ``match_substring``'s time; a buffer may hold bytes beyond a
    sliced array's values, which only sends it the longer way)."""
    found = bytes(data)
    return any(needle in found for needle in needles)


def _blank_null(blank: Any, column: Any, pa: Any, pc: Any) -> Any:
    if not pc.any(blank).as_py():
        return column
    return pc.if_else(blank, pa.scalar(None, pa.string()), column)


def _typed(
    column: Any, kind: str, empty_text: bool, loose_bools: bool, pa: Any, pc: Any
) -> Any:
    """A column a database typed: only conversions known to match the
    reference exactly; None for the rest."""
    kind_of = column.type
    if pa.types.is_integer(kind_of):
        if kind in ("int", "str"):
            return column.cast(pa.string())
        if kind == "bool":
            if not pc.all(pc.is_in(column, value_set=pa.array([0, 1]))).as_py():
                return None
            return pc.if_else(pc.equal(column, 1), "true", "false")
        return None
    if pa.types.is_boolean(kind_of) and kind == "bool" and not loose_bools:
        return pc.if_else(column, "true", "false")
    if pa.types.is_date32(kind_of) and kind in ("date", "str"):
        return column.cast(pa.string())
    return None
