"""Places the hub can reach, besides its own collections, named by its admin.

The dashboard syncs two places the hub can reach: a collection of the hub,
or a place listed in ``places.toml`` in the hub's folder (``accord hub
place add FOLDER NAME URL --user alice``)::

    [places.backup]
    url = "sftp://backup@nas/srv/papers"
    users = ["alice"]          # who may use it ("*": everyone); admins always

The URL (and any credential in it, or in the server's own SSH or S3
configuration) stays on the server: a browser sees the name and the kind
of place only. Each server process reads the file when asked, so an edit
takes effect at once; several processes serving one store each need the
file (copy it like ``hub.key``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

from accord.errors import ConfigError, InvalidInput, NotFound, PermissionDenied
from accord.hub.accounts import Account
from accord.hub.items import check_collection_name
from accord.registry import split_url

__all__ = [
    "PLACES",
    "Place",
    "add_place",
    "allowed",
    "find_place",
    "load_places",
    "remove_place",
]

PLACES = "places.toml"


class Place(NamedTuple):
    """One place an admin named."""

    name: str
    url: str  # never sent to a browser
    users: tuple[str, ...]

    @property
    def kind(self) -> str:
        """What a browser may know of it: the kind of place."""
        return split_url(self.url)[0]


def load_places(folder: str | os.PathLike[str]) -> dict[str, Place]:
    """The places named in ``folder/places.toml`` (none when absent)."""
    import tomllib

    path = Path(folder) / PLACES
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    found: dict[str, Place] = {}
    for name, item in (data.get("places") or {}).items():
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            raise ConfigError(f"{path}: place {name!r} needs a url")
        users = item.get("users") or []
        found[name] = Place(name, item["url"], tuple(str(u) for u in users))
    return found


def _write(folder: Path, places: dict[str, Place]) -> None:
    lines = ["# places the hub's dashboard may sync (accord hub place add)\n"]
    for place in sorted(places.values()):
        lines.append(f"\n[places.{json.dumps(place.name)}]\n")
        lines.append(f"url = {json.dumps(place.url)}\n")
        lines.append(f"users = {json.dumps(list(place.users))}\n")
    path = folder / PLACES
    temp = path.with_name(f".{PLACES}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(lines))
    os.replace(temp, path)


def _hub_folder(folder: str | os.PathLike[str]) -> Path:
    path = Path(folder).expanduser()
    if not (path / "hub.toml").is_file():
        raise ConfigError(
            f"{path} is not an accord hub (no hub.toml)",
            hint=f"create one with: accord hub init {path}",
        )
    return path


def add_place(
    folder: str | os.PathLike[str], name: str, url: str, users: list[str]
) -> Place:
    """Name a place (replacing one of that name) for ``users``."""
    path = _hub_folder(folder)
    check_collection_name(name)
    if not url:
        raise InvalidInput("a place needs a URL")
    from accord.registry import replica_class

    replica_class(split_url(url)[0])  # an unknown scheme fails now, clearly
    places = load_places(path)
    places[name] = Place(name, url, tuple(users))
    _write(path, places)
    return places[name]


def remove_place(folder: str | os.PathLike[str], name: str) -> None:
    path = _hub_folder(folder)
    places = load_places(path)
    if places.pop(name, None) is None:
        raise NotFound(f"no place named {name!r}")
    _write(path, places)


def allowed(place: Place, account: Account) -> bool:
    return account.admin or "*" in place.users or account.user in place.users


def find_place(folder: str | os.PathLike[str], name: str, account: Account) -> Place:
    """The place ``name`` if ``account`` may use it (missing and not
    allowed answer alike)."""
    place = load_places(folder).get(name)
    if place is None or not allowed(place, account):
        raise PermissionDenied(
            f"no place {name!r} that {account.user} may use",
            hint="the hub's admin names places: accord hub place add",
        )
    return place
