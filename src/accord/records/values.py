"""Field values: converted from what a place stores, compared as Python values."""

from __future__ import annotations

import datetime
from typing import Any

__all__ = ["BadValue", "convert", "converter", "to_text"]

_TRUE = {"1", "true", "yes", "y", "t", "on"}
_FALSE = {"0", "false", "no", "n", "f", "off", ""}


class BadValue(ValueError):
    """A value that does not convert to its field's type."""


def convert(value: Any, kind: str) -> Any:
    """``value`` as the field's type; None for an empty value."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None if kind != "list" else ()
    if kind == "str":
        return str(value)
    if kind == "int":
        if isinstance(value, bool):
            raise BadValue(f"{value!r} is not an integer")
        try:
            return int(str(value).strip())
        except ValueError:
            raise BadValue(f"{value!r} is not an integer") from None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise BadValue(f"{value!r} is not a yes/no value")
    if kind == "date":
        if isinstance(value, datetime.datetime):
            return value.date()
        if isinstance(value, datetime.date):
            return value
        try:
            return datetime.date.fromisoformat(str(value).strip())
        except ValueError:
            raise BadValue(f"{value!r} is not a date (YYYY-MM-DD)") from None
    if kind == "list":
        items = value if isinstance(value, list | tuple) else str(value).split(";")
        return tuple(sorted(str(i).strip() for i in items if str(i).strip()))
    raise BadValue(f"unknown type {kind}")


def _as_str(value: Any) -> Any:
    if value is None or value == "":
        return None
    return value if type(value) is str else str(value)


def _as_text(value: Any) -> Any:
    """A str field where an empty value is an empty text, not no value."""
    if value is None:
        return None
    return value if type(value) is str else str(value)


def _as_int(value: Any) -> Any:
    if type(value) is int:
        return value
    if type(value) is str and value.isdigit():
        return int(value)
    return convert(value, "int")


def _as_bool(value: Any) -> Any:
    if type(value) is bool:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    return convert(value, "bool")


def _as_date(value: Any) -> Any:
    if type(value) is datetime.date:
        return value
    if type(value) is str and len(value) == 10:
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            pass
    return convert(value, "date")


def converter(kind: str, empty_text: bool = False) -> Any:
    """The conversion for ``kind`` as one function, fast on common values:
    picked once per field, called for every value. With ``empty_text``, an
    empty str value stays an empty text (else it is no value: NULL)."""
    if kind == "str":
        return _as_text if empty_text else _as_str
    if kind == "int":
        return _as_int
    if kind == "bool":
        return _as_bool
    if kind == "date":
        return _as_date
    return lambda value: convert(value, kind)


def to_text(value: Any) -> str:
    """A value as a CSV cell / a plan line."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ";".join(value)
    return str(value)
