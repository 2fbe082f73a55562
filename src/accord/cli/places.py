"""Options some places take besides their URL: a user, a password, a mode.

A place class lists what it takes (``takes``, e.g. ``{"user", "password",
"sync_mode"}`` for a SyncML server); the CLI offers ``--user``,
``--password-env``, ``--password-file`` and ``--mode`` to whichever side
takes them, and refuses them when no side does. Passwords are never read
from the command line itself: an environment variable or a file names them.

``--mode`` is a SyncML sync mode; its direction becomes the engine's policy
(``MODE_POLICY``): a refresh is a mirror with deletion, a one-way sync a
sync in which only one side's changes travel.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from accord.errors import ConfigError, InvalidInput
from accord.registry import replica_class, split_url
from accord.replica import Replica

__all__ = ["MODE_POLICY", "login_options", "open_places", "password_from"]

#: mode -> (policy fields, which side is the source: "client" or "server")
MODE_POLICY: dict[str, tuple[dict[str, Any], str | None]] = {
    "two-way": ({"mode": "sync"}, None),
    "slow": ({"mode": "sync"}, None),
    "one-way-from-client": ({"mode": "sync", "one_way": "client"}, None),
    "one-way-from-server": ({"mode": "sync", "one_way": "server"}, None),
    "refresh-from-client": ({"mode": "mirror", "delete": True}, "client"),
    "refresh-from-server": ({"mode": "mirror", "delete": True}, "server"),
}


def login_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--user",
            metavar="NAME",
            default=None,
            help="User name for a place that logs in (SyncML, plantdb).",
        ),
        click.option(
            "--password-env",
            metavar="VAR",
            default=None,
            help="Read the password from environment variable VAR.",
        ),
        click.option(
            "--password-file",
            metavar="FILE",
            default=None,
            help="Read the password from the first line of FILE.",
        ),
        click.option(
            "--mode",
            "sync_mode",
            type=click.Choice(list(MODE_POLICY)),
            default=None,
            metavar="MODE",
            help="SyncML sync mode: two-way (default), slow (compare everything), "
            "refresh-from-client|server (replace the other side), "
            "one-way-from-client|server (carry one side's changes only).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def password_from(env: str | None, file: str | None) -> str | None:
    """The password an environment variable or a file holds (None: neither given)."""
    if env and file:
        raise InvalidInput("give --password-env or --password-file, not both")
    if env:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(
                f"the environment variable {env} is not set",
                hint=f"export {env}=... first (--password-env names the variable)",
            )
        return value
    if file:
        try:
            text = Path(file).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read the password file {file}: {exc.strerror}"
            ) from None
        return text.splitlines()[0] if text else ""
    return None


def open_places(
    left: str, right: str, opts: dict[str, Any]
) -> tuple[str | Replica, str | Replica, dict[str, Any]]:
    """Both places, with the login options given to the side that takes them;
    and the policy fields ``--mode`` implies. Pops its options from ``opts``."""
    offered = {
        "user": opts.pop("user", None),
        "password": password_from(
            opts.pop("password_env", None), opts.pop("password_file", None)
        ),
        "sync_mode": opts.pop("sync_mode", None),
    }
    given = {name: value for name, value in offered.items() if value is not None}
    if not given:
        return left, right, {}
    sides: list[str | Replica] = [left, right]
    server: int | None = None
    for index, url in enumerate((left, right)):
        takes = getattr(replica_class(split_url(url)[0]), "takes", frozenset())
        mine = {name: value for name, value in given.items() if name in takes}
        if mine:
            sides[index] = replica_class(split_url(url)[0]).from_url(url, **mine)  # type: ignore[attr-defined]
            server = index if "sync_mode" in takes else server
    unused = [n for n in given if all(n not in _takes(u) for u in (left, right))]
    if unused:
        names = ", ".join(
            "--" + n.replace("_", "-").replace("sync-", "") for n in unused
        )
        raise InvalidInput(
            f"{names}: neither place takes this option",
            hint="it is for places that log in, such as syncml+https://...",
        )
    return _oriented(sides, server, offered["sync_mode"])


def _takes(url: str) -> frozenset[str]:
    return getattr(replica_class(split_url(url)[0]), "takes", frozenset())


def _oriented(
    sides: list[str | Replica], server: int | None, mode: str | None
) -> tuple[str | Replica, str | Replica, dict[str, Any]]:
    if mode is None or server is None:
        return sides[0], sides[1], {}
    fields, source = MODE_POLICY[mode]
    fields = dict(fields)
    names = {"server": "left" if server == 0 else "right"}
    names["client"] = "right" if server == 0 else "left"
    if "one_way" in fields:
        fields["one_way"] = names[fields["one_way"]]
    if source is not None and names[source] == "right":
        return sides[1], sides[0], fields  # a mirror runs left to right
    return sides[0], sides[1], fields
