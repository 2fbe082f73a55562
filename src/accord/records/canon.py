"""A record's canonical text: its field values, each in one canonical form,
joined. Records from any place (a CSV file, a SQL table, a directory)
compare by their text: equal texts, equal records.

    canonical value    str: the text; int: decimal ("007" -> "7");
                       bool: "true" / "false"; date: YYYY-MM-DD;
                       list: its items, trimmed, sorted, ";"-joined
    no value           NULL (an empty field, SQL NULL, an absent attribute;
                       with ``empty = "text"``, an empty str stays "")
    record text        the fields' canonical values joined by SEP, each
                       escaped so that the join can be undone

A value that does not convert to its field's type raises BadValue. These
functions are the one definition; ``accord.records.fastcsv`` does the same
column by column (pyarrow), and tests check both agree.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Sequence
from typing import Any

from accord.records.values import BadValue

__all__ = [
    "NULL",
    "SEP",
    "canonical",
    "decode",
    "encode",
    "escape",
    "typed",
    "typed_record",
    "typer",
]

SEP = "\x1f"  # between fields (the ASCII unit separator)
NULL = "\\N"  # no value (a backslash in a value is always doubled)
_TRUE = frozenset({"1", "true", "yes", "y", "t", "on"})
_FALSE = frozenset({"0", "false", "no", "n", "f", "off"})
_INT = re.compile(r"[ \t]*[+-]?[0-9]+[ \t]*")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
BLANK = " \t"


def escape(text: str) -> str:
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if SEP in text:
        text = text.replace(SEP, "\\u")
    return text


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append("\\" if nxt == "\\" else SEP if nxt == "u" else "\\" + nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def encode(values: Sequence[str]) -> str:
    """The record text of canonical values (already escaped, or NULL)."""
    return SEP.join(values)


def decode(text: str) -> list[str | None]:
    """The canonical values of a record text (None for no value)."""
    if "\\" not in text:  # no escape, and no NULL (it holds a backslash)
        return text.split(SEP)  # type: ignore[return-value]
    return [None if part == NULL else _unescape(part) for part in text.split(SEP)]


# -- one value: what a place holds -> its canonical text ---------------------------


def _str(value: Any) -> str:
    if value is None or value == "":
        return NULL
    if type(value) is str:
        return value if "\\" not in value and SEP not in value else escape(value)
    return escape(str(value))


def _text(value: Any) -> str:
    """A str field where an empty value stays an empty text."""
    if value is None:
        return NULL
    if type(value) is str:
        return value if "\\" not in value and SEP not in value else escape(value)
    return escape(str(value))


def _int(value: Any) -> str:
    kind = type(value)
    if kind is int:
        return str(value)
    if value is None or kind is bool:
        if value is None:
            return NULL
        raise BadValue(f"{value!r} is not an integer")
    text = value if kind is str else str(value)  # Decimal('5'), numpy ints
    if not text.strip(BLANK):
        return NULL
    if _INT.fullmatch(text):
        return str(int(text))
    raise BadValue(f"{value!r} is not an integer")


def _bool(value: Any) -> str:
    kind = type(value)
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return NULL
    if kind is int and value in (0, 1):
        return "true" if value else "false"
    if kind is str:
        text = value.strip(BLANK).lower()
        if not text:
            return NULL
        if text in _TRUE:
            return "true"
        if text in _FALSE:
            return "false"
    raise BadValue(f"{value!r} is not a yes/no value")


_DATES: dict[str, str] = {}  # texts already checked: dates repeat a lot


def _date(value: Any) -> str:
    if value is None:
        return NULL
    if type(value) is str:
        known = _DATES.get(value)
        if known is not None:
            return known
    if isinstance(value, datetime.datetime):
        return value.date().isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if type(value) is str:
        text = value.strip(BLANK)
        if not text:
            return NULL
        if _DATE.fullmatch(text):
            try:
                datetime.date.fromisoformat(text)
            except ValueError:
                pass
            else:
                if len(_DATES) > 100_000:
                    _DATES.clear()
                _DATES[value] = text
                return text
    raise BadValue(f"{value!r} is not a date (YYYY-MM-DD)")


def _list(value: Any) -> str:
    if value is None:
        return ""
    items = value if isinstance(value, list | tuple) else str(value).split(";")
    kept = sorted(text for text in (str(i).strip() for i in items) if text)
    return escape(";".join(kept))


def canonical(kind: str, empty_text: bool = False) -> Callable[[Any], str]:
    """The conversion of one value of a ``kind`` field to its canonical text
    (picked once per field, called for every value)."""
    if kind == "str":
        return _text if empty_text else _str
    try:
        return {"int": _int, "bool": _bool, "date": _date, "list": _list}[kind]
    except KeyError:
        raise BadValue(f"unknown type {kind}") from None


# -- canonical text -> a Python value ----------------------------------------------


def typed(kind: str, text: str | None) -> Any:
    """The Python value of a canonical text (None: no value)."""
    return typer(kind)(text)


def typer(kind: str) -> Callable[[str | None], Any]:
    """``typed`` for a ``kind`` field, picked once (called for each value)."""
    return _TYPERS.get(kind, _as_text)


def _as_text(text: str | None) -> Any:
    return text


def _as_int(text: str | None) -> Any:
    return None if text is None else int(text)


def _as_bool(text: str | None) -> Any:
    return None if text is None else text == "true"


def _as_date(text: str | None) -> Any:
    return None if text is None else datetime.date.fromisoformat(text)


def _as_list(text: str | None) -> Any:
    return tuple(text.split(";")) if text else ()


_TYPERS: dict[str, Callable[[str | None], Any]] = {
    "int": _as_int,
    "bool": _as_bool,
    "date": _as_date,
    "list": _as_list,
}


def typed_record(
    fields: Sequence[str], types: dict[str, str], text: str
) -> dict[str, Any]:
    """A record text as {field: Python value}."""
    return {
        name: typed(types.get(name, "str"), value)
        for name, value in zip(fields, decode(text), strict=True)
    }
