"""Keyed records in places: CSV and JSON lines files, SQL tables, LDAP
directories, each read strictly and compared as canonical texts.

    accord records plan  mapping.toml      # what would change, per target
    accord records sync  mapping.toml -y   # apply it

A mapping file names entities, each with its key fields, one source of
truth and one or more targets (see ``docs/records.md``). Each source and
target is a place behind the Replica contract (``records://`` URLs,
``accord.records.replica``), and the engine syncs them as it syncs files:
``accord.mappings`` pairs them up, plans and applies.
"""

from __future__ import annotations

from typing import Any

from accord.records.mapping import Entity, Mapping, load_mapping
from accord.records.plan import RecordAction, RecordPlan

__all__ = [
    "Entity",
    "Mapping",
    "RecordAction",
    "RecordPlan",
    "apply_plan",
    "load_mapping",
    "make_plan",
]


def __getattr__(name: str) -> Any:
    """``make_plan`` and ``apply_plan`` live in ``accord.mappings`` (they
    run the engine); kept here under their old names."""
    if name in ("make_plan", "apply_plan"):
        import accord.mappings

        return getattr(accord.mappings, name)
    raise AttributeError(name)
