"""Keyed records reconciled between CSV files and SQL tables.

    accord records plan  mapping.toml      # what would change, per target
    accord records sync  mapping.toml -y   # apply it

A mapping file names entities, each with its key fields, one source of
truth and one or more targets (see ``docs/records.md``). The pipeline is
the engine's: read both sides, a pure reconcile into a plan (data, JSON),
guards, then apply with conditions so a row changed behind our back is not
overwritten.
"""

from accord.records.mapping import Entity, Mapping, load_mapping
from accord.records.plan import RecordAction, RecordPlan
from accord.records.run import apply_plan, make_plan

__all__ = [
    "Entity",
    "Mapping",
    "RecordAction",
    "RecordPlan",
    "apply_plan",
    "load_mapping",
    "make_plan",
]
