"""Row values on the wire, lossless: JSON with a tag for what JSON lacks.

==========  =====================================  ==========================
Python      wire                                   notes
==========  =====================================  ==========================
None, bool  null, true/false
int, str    as is                                  any size of integer
float       as is
Decimal     ``{"$dec": "12.30"}``                  digits and scale kept
date        ``{"$date": "2024-05-01"}``
time        ``{"$time": "10:30:00+02:00"}``        with its offset, if any
datetime    ``{"$dt": "2024-05-01T10:30:00+02:00"}``  with its offset, if any
bytes       ``{"$b64": "..."}``
JSON        ``{"$json": value}``                   dicts and lists
==========  =====================================  ==========================

A key travels as the JSON text of the list of its column values (in the
table's primary-key order), the same text the capture triggers write.
Pure: no I/O.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal
from typing import Any

__all__ = ["decode", "decode_row", "encode", "encode_row", "key_text", "key_values"]


def encode(value: Any) -> Any:
    """One value as JSON-ready data."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dt.time):
        return {"$time": value.isoformat()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, (dict, list)):
        return {"$json": value}
    raise TypeError(f"cannot send a {type(value).__name__} value")


_DECODE = {
    "$dec": Decimal,
    "$dt": dt.datetime.fromisoformat,
    "$date": dt.date.fromisoformat,
    "$time": dt.time.fromisoformat,
    "$b64": base64.b64decode,
    "$json": lambda value: value,
}


def decode(data: Any) -> Any:
    """The value ``encode`` made ``data`` from."""
    if isinstance(data, dict) and len(data) == 1:
        ((tag, value),) = data.items()
        convert = _DECODE.get(tag)
        if convert is not None:
            return convert(value)
    return data


def encode_row(row: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if row is None else {name: encode(v) for name, v in row.items()}


def decode_row(data: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if data is None else {name: decode(v) for name, v in data.items()}


def key_text(values: list[Any] | tuple[Any, ...]) -> str:
    """A key as text: the JSON list of its values, compact."""
    if len(values) == 1 and type(values[0]) is int:
        return f"[{values[0]}]"  # the common case, without the JSON encoder
    return json.dumps([encode(v) for v in values], separators=(",", ":"))


def key_values(text: str) -> list[Any]:
    """The values of a key from its text."""
    return [decode(v) for v in json.loads(text)]
