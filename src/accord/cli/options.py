"""The options the commands share, and what they become: two places, a
policy, an FSDB mode. Declared once, so ``sync``, ``mirror`` and ``watch``
take a guard under the same name, type and help.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from accord.config import config_path, load_profile
from accord.engine.policy import Policy
from accord.fsdb.hook import FSDBHook

__all__ = [
    "ItemCount",
    "Percent",
    "accept_rules_option",
    "allow_empty_option",
    "can_ask",
    "endpoint_url_option",
    "exclude_option",
    "fsdb_hook",
    "marker_option",
    "max_delete_option",
    "max_delete_percent_option",
    "no_trash_option",
    "output_options",
    "policy_from",
    "profile_endpoint",
    "profile_hook",
    "profile_option",
    "run_options",
    "two_places",
    "workers_option",
]

# -- option types ---------------------------------------------------------------


class ItemCount(click.ParamType):
    """--max-delete: a whole number of items, 0 or more."""

    name = "N"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        text = str(value).strip()
        if not text.isdigit():
            hint = " (a percentage goes in --max-delete-percent)" if "%" in text else ""
            self.fail(
                f"{value!r} is not a number of items: give a whole number, "
                f"0 or more (e.g. 100){hint}",
                param,
                ctx,
            )
        return int(text)


class Percent(click.ParamType):
    """--max-delete-percent: a number from 0 to 100, with or without '%'."""

    name = "P"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        text = str(value).strip().removesuffix("%")
        try:
            percent = float(text)
        except ValueError:
            percent = math.nan
        if not 0 <= percent <= 100:  # also refuses nan
            self.fail(
                f"{value!r} is not a percentage: give a number from 0 to 100 "
                "(e.g. 50 or 12.5%)",
                param,
                ctx,
            )
        return percent


# -- output and profile -----------------------------------------------------------


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--json",
        "json_lines",
        is_flag=True,
        help="One JSON object per line, for scripts.",
    )(func)
    func = click.option("-q", "--quiet", is_flag=True, help="Print errors only.")(func)
    return click.option(
        "-v",
        "--verbose",
        count=True,
        help="List every action (-v), with reasons (-vv).",
    )(func)


profile_option = click.option(
    "-p", "--profile", metavar="NAME", help="Use the pair NAME from accord.toml."
)

# -- the guards and choices of a run (sync, mirror, watch) --------------------

exclude_option = click.option(
    "--exclude",
    multiple=True,
    metavar="PATTERN",
    help="Ignore paths matching PATTERN (gitignore syntax); repeatable. "
    "Accepted rules in .accordignore apply too.",
)
max_delete_option = click.option(
    "--max-delete",
    type=ItemCount(),
    default=None,
    metavar="N",
    help="Mass-deletion guard: a number of items, 0 or more (default 100).",
)
max_delete_percent_option = click.option(
    "--max-delete-percent",
    type=Percent(),
    default=None,
    metavar="P",
    help="Mass-deletion guard: percent of a side, 0 to 100, e.g. 50 or "
    "12.5% (default 50).",
)
allow_empty_option = click.option(
    "--allow-empty",
    is_flag=True,
    help="Let a side that became empty delete everything on the other.",
)
accept_rules_option = click.option(
    "--accept-rules",
    is_flag=True,
    help="Apply a changed .accordignore (yours or a peer's): its rules "
    "apply, and the file syncs, from this run on.",
)
workers_option = click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Transfers in flight at once (default 4).",
)
no_trash_option = click.option(
    "--no-trash",
    is_flag=True,
    help="Delete and overwrite for good instead of keeping a copy.",
)
marker_option = click.option(
    "--marker",
    metavar="NAME",
    default=None,
    help="Refuse to run unless both roots hold the file NAME "
    "(a file-system database's marker, e.g. romidb).",
)


def _endpoint_given(ctx: click.Context, param: Any, value: str | None) -> None:
    if value:
        use_endpoint(value)
        ctx.meta["accord.endpoint_url"] = value


#: ``--endpoint-url`` of every command that opens places: in effect as soon
#: as it is read (a profile's ``endpoint_url``: ``profile_endpoint``)
endpoint_url_option = click.option(
    "--endpoint-url",
    metavar="URL",
    expose_value=False,
    callback=_endpoint_given,
    help="S3-compatible endpoint for s3:// places (else AWS_ENDPOINT_URL).",
)


def profile_endpoint(profile: dict[str, Any]) -> None:
    """A profile's ``endpoint_url``, unless ``--endpoint-url`` gave one."""
    ctx = click.get_current_context(silent=True)
    given = ctx is not None and ctx.meta.get("accord.endpoint_url")
    if profile.get("endpoint_url") and not given:
        use_endpoint(profile["endpoint_url"])


def run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options of sync and mirror, and the output options."""
    options = [
        click.option(
            "-n",
            "--dry-run",
            is_flag=True,
            help="Show the plan; change nothing (exit 6 if changes are pending).",
        ),
        click.option(
            "-y",
            "--yes",
            is_flag=True,
            help="Answer every question (for cron); guards still abort.",
        ),
        exclude_option,
        max_delete_option,
        max_delete_percent_option,
        allow_empty_option,
        accept_rules_option,
        click.option(
            "--break-lock",
            is_flag=True,
            help="Remove a lock left by a run that is gone for good.",
        ),
        workers_option,
        no_trash_option,
        marker_option,
        click.option(
            "--db-lock",
            metavar="NAME",
            default=None,
            help="Create the database's lock file NAME at both roots for the "
            "run; refuse if either exists (busy). Removed on every exit.",
        ),
        click.option(
            "--fsdb/--no-fsdb",
            "fsdb",
            default=None,
            help="plantdb FSDB mode: only scans move (not users.json, .locks/, "
            "webcache/), plantdb's scan locks are honoured, new scans appear "
            "whole. Default: on when both roots hold 'romidb'.",
        ),
        click.option(
            "--scan",
            "scans",
            multiple=True,
            metavar="NAME",
            help="FSDB: sync only the scan NAME (repeatable); a name that does "
            "not exist is an error.",
        ),
        click.option(
            "--scan-filter",
            metavar="REGEX",
            default=None,
            help="FSDB: sync only the scans whose names match REGEX.",
        ),
        click.option(
            "--lock-timeout",
            type=click.FloatRange(0),
            default=None,
            metavar="SECONDS",
            help="FSDB: how long to wait for a scan plantdb holds (default 30).",
        ),
        click.option(
            "--no-scan-locks",
            is_flag=True,
            help="FSDB: take no plantdb scan locks (plain SFTP cannot); only "
            "when no plantdb program uses the database during the run.",
        ),
        endpoint_url_option,
        profile_option,
    ]
    for option in reversed(options):
        func = option(func)
    return output_options(func)


# -- what the options become --------------------------------------------------------


def two_places(
    first: str | None, second: str | None, profile: str | None
) -> tuple[str, str, dict[str, Any]]:
    """Two places from the arguments or a profile."""
    if profile is None and first is not None and second is None:
        if _looks_like_a_place(first):
            raise click.UsageError(
                f"give two places (LEFT RIGHT): only one was given, {first}"
            )
        profile = first
        first = None
    options: dict[str, Any] = load_profile(profile) if profile else {}
    left = first or options.get("left")
    right = second or options.get("right")
    if not left or not right:
        raise click.UsageError("give two places (LEFT RIGHT) or a profile name")
    return left, right, options


def _looks_like_a_place(word: str) -> bool:
    """Whether a lone argument is a place (a path, a URL; a folder here
    when there is no profile file) rather than a profile's name (``notes``,
    ``work.papers``)."""
    if "/" in word or word.startswith(("~", ".")):
        return True
    return config_path() is None and os.path.isdir(word)


def policy_from(mode: str, profile: dict[str, Any], **cli: Any) -> Policy:
    """The run's policy: the profile's settings, overridden by the options given."""
    values: dict[str, Any] = {
        "on_conflict": profile.get("conflict"),
        "max_delete": profile.get("max_delete"),
        "max_delete_percent": profile.get("max_delete_percent"),
        "allow_empty": profile.get("allow_empty"),
        "accept_rules": profile.get("accept_rules"),
        "workers": profile.get("workers"),
        "delete": profile.get("delete"),
        "checksum": profile.get("checksum"),
        "trash_days": profile.get("trash_days"),
        "marker": profile.get("marker"),
        "db_lock": profile.get("db_lock"),
    }
    values.update({k: v for k, v in cli.items() if v not in (None, False)})
    if cli.get("no_trash"):
        values["trash"] = False
    values.pop("no_trash", None)
    return Policy(mode=mode, **{k: v for k, v in values.items() if v is not None})


def use_endpoint(url: str | None) -> None:
    """``--endpoint-url``: the S3 endpoint, the way the AWS tools take it."""
    if url:
        os.environ["AWS_ENDPOINT_URL"] = url


def can_ask() -> bool:
    """Whether there is a terminal to ask a question on."""
    return sys.stdin.isatty()


def profile_hook(profile: dict[str, Any]) -> FSDBHook:
    """The FSDB mode of a command that only looks (status, plan)."""
    fsdb = profile.get("fsdb")
    return FSDBHook(
        mode="auto" if fsdb is None else "on" if fsdb else "off",
        scans=profile.get("scans", []),
        scan_filter=profile.get("scan_filter"),
    )


def fsdb_hook(opts: dict[str, Any], profile: dict[str, Any]) -> FSDBHook:
    """The FSDB mode from the options and the profile (auto by default)."""
    fsdb = opts.pop("fsdb")
    if fsdb is None:
        fsdb = profile.get("fsdb")
    timeout = opts.pop("lock_timeout")
    if timeout is None:
        timeout = profile.get("lock_timeout", 30.0)
    no_locks = opts.pop("no_scan_locks") or profile.get("scan_locks") is False
    return FSDBHook(
        mode="auto" if fsdb is None else "on" if fsdb else "off",
        scans=[*profile.get("scans", []), *opts.pop("scans")],
        scan_filter=opts.pop("scan_filter") or profile.get("scan_filter"),
        lock_timeout=float(timeout),
        scan_locks=not no_locks,
    )
