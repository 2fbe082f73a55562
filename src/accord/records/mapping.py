"""The mapping file: entities, their keys, fields, source and targets.

    [entities.students]
    key = ["student_id"]
    fields = ["student_id", "first_name", "last_name", "class", "active"]
    types = { active = "bool", birth_date = "date", year = "int" }

    [entities.students.source]
    url = "csv:///srv/sis/students.csv"
    columns = { student_id = "ID", first_name = "First name" }  # else same name

    [[entities.students.targets]]
    url = "sqlite:////srv/lms/lms.db"        # any SQLAlchemy URL
    table = "users"
    columns = { student_id = "id" }
    rules = { email = "on_create", nickname = "keep" }
    computed = { email = "{first_name}.{last_name}@school.example" }
    defaults = { active = "true" }

Rules per target field: ``force`` (default: the source value wins),
``keep`` (the target's value is kept once it has one), ``on_create`` (set
only when the record is created), ``merge`` (a multi-valued field keeps the
target's values and gains the source's). ``computed`` fields are built from other
fields; ``defaults`` fill a field the source leaves empty.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accord.errors import ConfigError

__all__ = ["Entity", "Mapping", "PlaceSpec", "load_mapping"]

TYPES = ("str", "int", "bool", "date", "list")
RULES = ("force", "keep", "on_create", "merge")


@dataclass(frozen=True)
class PlaceSpec:
    url: str
    table: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # field -> column
    rules: dict[str, str] = field(default_factory=dict)
    computed: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # place-specific

    def column(self, name: str) -> str:
        return self.columns.get(name, name)

    @property
    def label(self) -> str:
        where = self.url.split("?", 1)[0]
        return f"{where}#{self.table}" if self.table else where


@dataclass(frozen=True)
class Entity:
    name: str
    key: tuple[str, ...]
    fields: tuple[str, ...]
    types: dict[str, str]
    source: PlaceSpec
    targets: tuple[PlaceSpec, ...]
    handler: str | None = None  # "module:Class" called for each action
    mode: str = "one-way"  # or "two-way" (exactly one target)
    conflict: str = "skip"  # two-way: left, right, or skip (left for a person)
    empty: str = "null"  # an empty text value is no value (NULL), or "text"

    def target_fields(self, target: PlaceSpec) -> tuple[str, ...]:
        extra = tuple(f for f in target.computed if f not in self.fields)
        return self.fields + extra


@dataclass(frozen=True)
class Mapping:
    path: Path
    entities: dict[str, Entity]


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file; ConfigError says what is wrong where."""
    path = Path(path).expanduser()
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"mapping file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    entities = data.get("entities")
    if not isinstance(entities, dict) or not entities:
        raise ConfigError(
            f"{path} names no entities",
            hint="add an [entities.NAME] table with key, fields, source, targets",
        )
    base = path.parent
    return Mapping(
        path, {n: _entity(n, spec, base, path) for n, spec in entities.items()}
    )


def _entity(name: str, spec: Any, base: Path, path: Path) -> Entity:
    where = f"{path}: entity '{name}'"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a table")
    key = spec.get("key")
    fields = spec.get("fields")
    if isinstance(key, str):
        key = [key]
    if not key or not isinstance(key, list):
        raise ConfigError(f"{where} has no key", hint='key = ["id"]')
    if not fields or not isinstance(fields, list):
        raise ConfigError(f"{where} lists no fields", hint='fields = ["id", "name"]')
    missing = [k for k in key if k not in fields]
    if missing:
        raise ConfigError(f"{where}: key fields {missing} are not in fields")
    types = dict(spec.get("types", {}))
    for field_name, kind in types.items():
        if kind not in TYPES:
            raise ConfigError(
                f"{where}: unknown type {kind!r} for {field_name}",
                hint="types: " + ", ".join(TYPES),
            )
    source = _place(spec.get("source"), f"{where}, source", base)
    targets = spec.get("targets") or []
    if not targets:
        raise ConfigError(f"{where} has no targets", hint="add [[entities.X.targets]]")
    places = tuple(
        _place(t, f"{where}, target {i + 1}", base) for i, t in enumerate(targets)
    )
    for target in places:
        for field_name, rule in target.rules.items():
            if rule not in RULES:
                raise ConfigError(
                    f"{where}: unknown rule {rule!r} for {field_name}",
                    hint="rules: " + ", ".join(RULES),
                )
    empty = spec.get("empty", "null")
    if empty not in ("null", "text"):
        raise ConfigError(
            f'{where}: empty must be "null" or "text"',
            hint='"null": an empty field is no value (NULL in SQL); "text": an '
            "empty text",
        )
    conflict = spec.get("conflict", "skip")
    if conflict not in ("skip", "left", "right"):
        raise ConfigError(f"{where}: conflict must be skip, left or right")
    mode = spec.get("mode", "one-way")
    if mode not in ("one-way", "two-way"):
        raise ConfigError(f"{where}: mode must be one-way or two-way")
    if mode == "two-way" and len(places) != 1:
        raise ConfigError(f"{where}: a two-way entity has exactly one target")
    return Entity(
        name,
        tuple(key),
        tuple(fields),
        types,
        source,
        places,
        spec.get("handler"),
        mode,
        conflict,
        empty,
    )


def _place(spec: Any, where: str, base: Path) -> PlaceSpec:
    if not isinstance(spec, dict) or not spec.get("url"):
        raise ConfigError(f"{where} needs a url")
    url = os.path.expandvars(str(spec["url"]))
    for scheme in ("csv://", "jsonl://"):  # a file's path: from the mapping's folder
        if url.startswith(scheme) and not url.startswith(scheme + "/"):
            path = (base / url[len(scheme) :]).resolve()
            url = scheme + "/" + str(path).lstrip("/")
    return PlaceSpec(
        url,
        spec.get("table"),
        dict(spec.get("columns", {})),
        dict(spec.get("rules", {})),
        dict(spec.get("computed", {})),
        {k: str(v) for k, v in spec.get("defaults", {}).items()},
        {k: v for k, v in spec.items() if k not in _COMMON},
    )


_COMMON = ("url", "table", "columns", "rules", "computed", "defaults")
