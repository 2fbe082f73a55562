"""A SQL row's values as JSON, and back: what the trash keeps of a row.

A deleted row is kept whole (``SQLPlace.keep_whole``), every column, so
that a restore gives back the columns the mapping does not name too. JSON
holds None, booleans, numbers and text as they are; every other value the
drivers give is a one-key object naming its type (``{"date":
"2024-09-01"}``, ``{"bytes": BASE64}``), read back to the same Python
value, which SQLAlchemy writes as the column's type. Pure functions.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import uuid
from typing import Any

__all__ = ["decoded", "encoded"]


def encoded(value: Any) -> Any:
    """``value`` (as a driver gave it) as JSON data."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, dt.datetime):  # before date: a datetime is a date
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, dt.time):
        return {"time": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"interval": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if isinstance(value, (list, tuple)):
        return {"list": [encoded(item) for item in value]}
    if isinstance(value, dict):  # a JSON column's object
        return {"object": {str(k): encoded(v) for k, v in value.items()}}
    return {"text": str(value)}


_READ = {
    "bytes": lambda text: base64.b64decode(text),
    "decimal": decimal.Decimal,
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "interval": lambda parts: dt.timedelta(*parts),
    "uuid": uuid.UUID,
    "list": lambda items: [decoded(item) for item in items],
    "object": lambda items: {k: decoded(v) for k, v in items.items()},
    "text": str,
}


def decoded(data: Any) -> Any:
    """The Python value ``encoded`` made ``data`` of."""
    if not isinstance(data, dict):
        return data
    ((kind, value),) = data.items()
    return _READ[kind](value)
