"""Profiles: named pairs and their options in an ``accord.toml``.

Looked up in ``$ACCORD_CONFIG``, then ``./accord.toml``, then
``$XDG_CONFIG_HOME/accord/accord.toml`` (``~/.config/accord/accord.toml``)::

    [pairs.notes]
    left = "~/notes"
    right = "/mnt/backup/notes"
    conflict = "newer"  # keep-both, newer, older, larger, left, right or ask
    exclude = ["*.tmp", "build/"]
    max_delete = 50
    max_delete_percent = 20

    [pairs.photos]
    mode = "mirror"
    left = "~/Pictures"
    right = "/mnt/nas/pictures"
    delete = true

A profile may also group pairs, one table each (``accord watch --profile
work`` watches both; ``accord sync work.papers`` syncs one)::

    [pairs.work.papers]
    left = "~/papers"
    right = "hub://hub.example.org:8470/papers"

    [pairs.work.code]
    left = "~/code"
    right = "sftp://server/home/me/code"
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from accord.errors import ConfigError, InvalidInput

__all__ = [
    "PROFILE_KEYS",
    "config_path",
    "default_state_dir",
    "load_profile",
    "load_profiles",
]


def default_state_dir() -> Path:
    """``$ACCORD_STATE_DIR``, else ``$XDG_STATE_HOME/accord``, else ~/.local/state."""
    explicit = os.environ.get("ACCORD_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state"
    return base / "accord"


#: each option: its type(s), and what is expected, as said in an error
PROFILE_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "left": (str, "a place (a folder or URL) as a string"),
    "right": (str, "a place (a folder or URL) as a string"),
    "mode": (str, 'a string: "sync" or "mirror"'),
    "conflict": (str, 'a string, e.g. "keep-both" or "newer"'),
    "exclude": (list, 'a list of strings, e.g. ["*.tmp", "build/"]'),
    "max_delete": (int, "a whole number of items, 0 or more"),
    "max_delete_percent": ((int, float), "a number from 0 to 100"),
    "delete": (bool, "true or false"),
    "checksum": (bool, "true or false"),
    "workers": (int, "a whole number from 1 to 64"),
    "allow_empty": (bool, "true or false"),
    "accept_rules": (bool, "true or false"),
    "trash_days": ((int, float), "a number of days, 0 or more"),
    "marker": (str, 'a file name, e.g. "romidb"'),
    "db_lock": (str, 'a file name, e.g. "lock"'),
    "fsdb": (bool, "true or false (default: found by the romidb marker)"),
    "scans": (list, 'a list of scan names, e.g. ["arabido_1"]'),
    "scan_filter": (str, 'a regular expression, e.g. "^arabido"'),
    "lock_timeout": ((int, float), "a number of seconds, 0 or more"),
    "scan_locks": (bool, "true or false"),
    "endpoint_url": (str, 'a URL, e.g. "http://127.0.0.1:9000"'),
}

_RANGES = {
    "max_delete": (0, None),
    "max_delete_percent": (0, 100),
    "workers": (1, 64),
    "trash_days": (0, None),
    "lock_timeout": (0, None),
}


def config_path() -> Path | None:
    """The profile file in use, or None."""
    explicit = os.environ.get("ACCORD_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    local = Path("accord.toml")
    if local.is_file():
        return local
    xdg = os.environ.get("XDG_CONFIG_HOME")
    home = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    user = home / "accord" / "accord.toml"
    return user if user.is_file() else None


def _read(path: Path) -> dict[str, Any]:
    import tomllib  # only runs that use a profile need it

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"profile file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(
            f"{path} is not valid TOML: {exc}",
            hint="fix the syntax at the line named above",
        ) from exc


def load_profile(name: str) -> dict[str, Any]:
    """The options of profile ``name``, checked."""
    path, pairs = _pairs(name)
    group, _, member = name.partition(".")
    if member and name not in pairs and isinstance(pairs.get(group), dict):
        return _profile(path, name, pairs[group].get(member), pairs)
    return _profile(path, name, pairs.get(name), pairs)


def load_profiles(name: str) -> list[tuple[str, dict[str, Any]]]:
    """Each pair of profile ``name`` with its options, checked: the profile
    itself, or each table of a group (named ``group.member``)."""
    path, pairs = _pairs(name)
    found = pairs.get(name)
    if not _is_group(found):
        return [(name, _profile(path, name, found, pairs))]
    return [
        (f"{name}.{member}", _profile(path, f"{name}.{member}", table, pairs))
        for member, table in found.items()
    ]


def _is_group(table: Any) -> bool:
    return (
        isinstance(table, dict)
        and bool(table)
        and all(isinstance(value, dict) for value in table.values())
    )


def _pairs(name: str) -> tuple[Path, dict[str, Any]]:
    path = config_path()
    if path is None:
        raise ConfigError(
            f"no profile named '{name}': there is no accord.toml",
            hint="create ./accord.toml or ~/.config/accord/accord.toml with "
            f"a [pairs.{name}] table, or give two places",
        )
    pairs = _read(path).get("pairs", {})
    if not isinstance(pairs, dict):
        raise InvalidInput(
            f"'pairs' in {path} is not a table",
            hint=f"write each profile as a table: [pairs.{name}]",
        )
    return path, pairs


def _profile(
    path: Path, name: str, table: Any, pairs: dict[str, Any]
) -> dict[str, Any]:
    if table is None:
        known = ", ".join(sorted(pairs)) or "none"
        raise ConfigError(
            f"no profile named '{name}' in {path}", hint=f"profiles there: {known}"
        )
    if _is_group(table):
        members = ", ".join(f"{name}.{member}" for member in table)
        raise InvalidInput(
            f"profile '{name}' in {path} is a group of pairs",
            hint=f"name one of them ({members}); accord watch takes the group",
        )
    if not isinstance(table, dict):
        raise InvalidInput(
            f"profile '{name}' in {path} is not a table",
            hint=f'write it as a table: [pairs.{name}] with left = "..." and '
            'right = "..." under it',
        )
    profile = dict(table)
    for key, value in profile.items():
        _check_option(path, name, key, value)
    for key in ("left", "right"):
        if key not in profile:
            raise InvalidInput(
                f"profile '{name}' in {path} has no '{key}'",
                hint=f'add {key} = "..." (a folder or URL) to [pairs.{name}]',
            )
    return profile


def _check_option(path: Path, name: str, key: str, value: Any) -> None:
    """Refuse an unknown option, or a value of the wrong type or range."""
    if key not in PROFILE_KEYS:
        raise InvalidInput(
            f"unknown option '{key}' in profile '{name}' ({path})",
            hint="known: " + ", ".join(sorted(PROFILE_KEYS)),
        )
    types, expected = PROFILE_KEYS[key]
    if not _fits(value, types) or not _in_range(key, value):
        raise InvalidInput(
            f"option '{key}' in profile '{name}' ({path}) is {value!r}; "
            f"expected {expected}",
            hint=f"fix '{key}' in [pairs.{name}] of {path}",
        )


def _fits(value: Any, types: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool) and types is not bool:
        return False  # TOML true/false is not a number
    if not isinstance(value, types):
        return False
    return not isinstance(value, list) or all(isinstance(i, str) for i in value)


def _in_range(key: str, value: Any) -> bool:
    low, high = _RANGES.get(key, (None, None))
    if low is not None and not value >= low:  # also refuses nan
        return False
    return high is None or value <= high
