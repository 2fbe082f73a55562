"""Where records live: CSV and JSON lines files, SQL tables and LDAP
directories, behind one small interface; ``open_place`` opens the place a
URL names.

A place reads all records of an entity (``read``: key -> fields, values
converted and checked) and applies a batch of changes (``apply``), each
change stating the record it expects to replace, so a record changed behind
our back is left alone and reported. The places themselves:
``accord.records.csvplace``, ``accord.records.jsonlplace``,
``accord.records.sqlplace`` and ``accord.records.ldap``.
"""

from __future__ import annotations

from typing import Any

from accord.errors import BadData, ConfigError
from accord.records.csvplace import CSVPlace
from accord.records.jsonlplace import JSONLPlace
from accord.records.mapping import Entity, PlaceSpec
from accord.records.sqlplace import SQLPlace

__all__ = ["DataError", "Records", "open_place", "writes_whole"]

Key = tuple[Any, ...]
Records = dict[Key, dict[str, Any]]

#: bad data in a place: every problem found, with where it is
DataError = BadData


def open_place(spec: PlaceSpec, entity: Entity, fields: tuple[str, ...]) -> Any:
    if spec.url.startswith("csv://"):
        return CSVPlace(spec, entity, fields)
    if spec.url.startswith("jsonl:"):
        return JSONLPlace(spec, entity, fields)
    if spec.url.startswith(("ldap://", "ldaps://")):
        from accord.records.ldap import LDAPPlace

        return LDAPPlace(spec, entity, fields)
    if "://" in spec.url:
        return SQLPlace(spec, entity, fields)
    raise ConfigError(f"unknown record place {spec.url!r}", hint="csv:/// or a SQL URL")


def writes_whole(spec: PlaceSpec) -> bool:
    """Whether the place is a file, rewritten whole when written."""
    return spec.url.startswith(("csv://", "jsonl:"))
