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
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from accord.errors import ConfigError

__all__ = ["PROFILE_KEYS", "config_path", "load_profile"]

PROFILE_KEYS = {
    "left": str,
    "right": str,
    "mode": str,
    "conflict": str,
    "exclude": list,
    "max_delete": int,
    "max_delete_percent": (int, float),
    "delete": bool,
    "checksum": bool,
    "workers": int,
    "allow_empty": bool,
    "trash_days": (int, float),
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
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def load_profile(name: str) -> dict[str, Any]:
    """The options of profile ``name``, checked."""
    path = config_path()
    if path is None:
        raise ConfigError(
            f"no profile named '{name}': there is no accord.toml",
            hint="create ./accord.toml or ~/.config/accord/accord.toml with "
            f"a [pairs.{name}] table, or give two places",
        )
    pairs = _read(path).get("pairs", {})
    if name not in pairs:
        known = ", ".join(sorted(pairs)) or "none"
        raise ConfigError(
            f"no profile named '{name}' in {path}", hint=f"profiles there: {known}"
        )
    profile = dict(pairs[name])
    for key, value in profile.items():
        expected = PROFILE_KEYS.get(key)
        if expected is None:
            raise ConfigError(
                f"unknown option '{key}' in profile '{name}' ({path})",
                hint="known: " + ", ".join(sorted(PROFILE_KEYS)),
            )
        if not isinstance(value, expected):  # type: ignore[arg-type]
            raise ConfigError(f"option '{key}' in profile '{name}' has the wrong type")
    for key in ("left", "right"):
        if key not in profile:
            raise ConfigError(f"profile '{name}' in {path} has no '{key}'")
    return profile
