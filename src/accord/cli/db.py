"""``accord db ...``: an app's database kept in step with a central one
through a hub. Each command is one call to ``accord.db``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from accord.cli import cli, handle_errors
from accord.errors import InvalidInput

__all__ = ["db"]

_HUB = click.option(
    "--hub",
    "hub_url",
    envvar="ACCORD_HUB",
    required=True,
    metavar="URL",
    help="The hub, e.g. http://127.0.0.1:8470 (default: $ACCORD_HUB).",
)
_JSON = click.option("--json", "json_out", is_flag=True, help="Output JSON.")


@cli.group()
def db() -> None:
    """Keep apps' own databases in step with a central one, through a hub.

    Every write is captured by triggers (also writes made directly on the
    central database); each accepted push is one version; a push is refused
    until the node has pulled the newer ones.

    \b
    accord db init postgresql://127.0.0.1/central --hub URL --tables customers,orders
    accord db attach sqlite:///app.db --hub URL --node shop-17
    accord db sync sqlite:///app.db          pull, merge, push (again if refused)
    accord db push | pull | status | repair sqlite:///app.db
    accord db query sqlite:///app.db customers --where city=Lyon
    """


def _tables(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise InvalidInput("name the tables to replicate", hint="--tables a,b,c")
    return names


def _progress(event: dict[str, Any]) -> None:
    if event["stage"] == "snapshot":
        click.echo(f"  copying {event['table']}: {event['rows']} rows", err=True)


def _policies(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        table, sep, policy = item.partition("=")
        if not sep:
            raise InvalidInput(f"not TABLE=POLICY: {item!r}")
        out[table.strip()] = policy.strip()
    return out


_POLICY = click.option(
    "--policy",
    multiple=True,
    metavar="TABLE=POLICY",
    help="Conflict policy of a table: local-wins (default), server-wins, "
    "field-merge, field-merge/server-wins (repeatable).",
)


@db.command("init")
@click.argument("url")
@_HUB
@click.option("--tables", required=True, metavar="A,B,C", help="Tables to replicate.")
@click.option("--name", metavar="NAME", help="The database's name on the hub.")
@click.option(
    "--expire-days",
    type=float,
    metavar="DAYS",
    help="A node not seen for this long no longer holds the log's trim back "
    "(default 30).",
)
@handle_errors
def db_init(
    url: str, hub_url: str, tables: str, name: str | None, expire_days: float | None
) -> None:
    """Register the central database URL on the hub and capture its tables.

    The hub connects to URL itself (admins only). Run again to change the
    tables.
    """
    import accord.db

    done = accord.db.init(
        url, hub=hub_url, tables=_tables(tables), name=name, expire_days=expire_days
    )
    click.echo(
        f"database {done['name']} registered: {', '.join(done['tables'])} "
        f"(version {done['version']})"
    )


@db.command("drop")
@click.argument("name")
@_HUB
@handle_errors
def db_drop(name: str, hub_url: str) -> None:
    """Remove capture from the central database NAME and forget it (admins)."""
    from accord.replicas.hub_client import HubClient

    with HubClient(hub_url, admin=True) as client:
        client.api("DELETE", f"/db/{name}")
    click.echo(f"database {name} removed from the hub; its capture is gone")


@db.command("grant")
@click.argument("user")
@click.argument("name")
@_HUB
@click.option("--tables", required=True, metavar="A,B,C")
@click.option("--access", type=click.Choice(["read", "write", "none"]), default="write")
@handle_errors
def db_grant(user: str, name: str, hub_url: str, tables: str, access: str) -> None:
    """Give USER read or write on tables of database NAME (admins)."""
    import accord.db

    accord.db.grant(hub_url, name, user, _tables(tables), access)
    click.echo(f"{user}: {access} on {tables}")


@db.command("attach")
@click.argument("url")
@_HUB
@click.option("--node", required=True, metavar="NAME", help="This node's name.")
@click.option("--db", "db_name", metavar="NAME", help="Which database of the hub.")
@_POLICY
@click.option(
    "--discard-local", is_flag=True, help="Replace rows the tables hold already."
)
@handle_errors
def db_attach(
    url: str,
    hub_url: str,
    node: str,
    db_name: str | None,
    policy: tuple[str, ...],
    discard_local: bool,
) -> None:
    """Attach the database URL: register it as a node, set up change
    capture, copy the server's rows (tables missing here are created)."""
    import accord.db

    done = accord.db.attach(
        url,
        hub=hub_url,
        node=node,
        db=db_name,
        policies=_policies(policy),
        discard_local=discard_local,
        on_progress=_progress,
    )
    click.echo(f"attached as {node}: {done['rows']} rows at version {done['version']}")


@db.command("detach")
@click.argument("url")
@handle_errors
def db_detach(url: str) -> None:
    """Remove change capture and accord's tables from URL."""
    import accord.db

    if accord.db.detach(url):
        click.echo(f"{url} detached")
    else:
        click.echo(f"{url} was not attached: nothing to remove")


@db.command("push")
@click.argument("url")
@handle_errors
def db_push(url: str) -> None:
    """Push local changes as one version (refused while the hub has newer)."""
    import accord.db

    done = accord.db.push(url)
    click.echo(f"pushed {done['pushed']} change(s); at version {done['version']}")


@db.command("pull")
@click.argument("url")
@_POLICY
@handle_errors
def db_pull(url: str, policy: tuple[str, ...]) -> None:
    """Pull newer versions and merge them here (one transaction)."""
    import accord.db

    done = accord.db.pull(url, policies=_policies(policy) or None)
    click.echo(
        f"pulled {done['pulled']} change(s), {done['conflicts']} conflict(s); "
        f"at version {done['version']}"
    )


@db.command("sync")
@click.argument("url")
@_POLICY
@click.option(
    "--retries", default=8, show_default=True, help="Pushes refused, at most."
)
@handle_errors
def db_sync(url: str, policy: tuple[str, ...], retries: int) -> None:
    """Pull, merge, push; again, with growing pauses, while pushes are refused."""
    import accord.db

    done = accord.db.sync(url, policies=_policies(policy) or None, retries=retries)
    click.echo(
        f"pulled {done['pulled']}, pushed {done['pushed']} change(s), "
        f"{done['conflicts']} conflict(s); at version {done['version']}"
    )


@db.command("repair")
@click.argument("url")
@click.option("--discard-local", is_flag=True, help="Lose un-pushed local changes.")
@handle_errors
def db_repair(url: str, discard_local: bool) -> None:
    """Local tracked rows := the server's. Refused while un-pushed changes
    exist, unless --discard-local."""
    import accord.db

    done = accord.db.repair(url, discard_local=discard_local, on_progress=_progress)
    click.echo(f"repaired: {done['rows']} rows at version {done['version']}")


@db.command("query")
@click.argument("url")
@click.argument("table")
@click.option("--where", multiple=True, metavar="COL=VALUE", help="Repeatable.")
@_JSON
@handle_errors
def db_query(url: str, table: str, where: tuple[str, ...], json_out: bool) -> None:
    """The server's rows of TABLE whose columns equal the --where values."""
    import accord.db
    from accord.replication.values import encode_row

    filters = _policies(where)
    rows = accord.db.query(url, table, filters)
    for row in rows:
        if json_out:
            click.echo(json.dumps(encode_row(row), sort_keys=True))
        else:
            click.echo("  ".join(f"{k}={v}" for k, v in row.items()))
    if not json_out:
        click.echo(f"({len(rows)} rows)", err=True)


@db.command("status")
@click.argument("url")
@_JSON
@click.option("--offline", is_flag=True, help="Do not ask the hub.")
@handle_errors
def db_status(url: str, json_out: bool, offline: bool) -> None:
    """Un-pushed changes, the last version, and every conflict with how it
    was resolved."""
    import accord.db

    done = accord.db.status(url, remote=not offline)
    if json_out:
        click.echo(json.dumps(done, default=str, indent=2))
        return
    click.echo(f"node {done['node']} of {done['db']} on {done['hub']}")
    behind = ""
    if "hub_version" in done and done["hub_version"] > done["version"]:
        behind = f" (the hub is at {done['hub_version']}: pull)"
    click.echo(f"version {done['version']}{behind}")
    click.echo(f"un-pushed changes: {len(done['pending'])}")
    for item in done["pending"][:50]:
        click.echo(f"  {item['op']} {item['table']} {item['key']}")
    click.echo(f"conflicts: {len(done['conflicts'])}")
    for item in done["conflicts"]:
        when = datetime.fromtimestamp(item["at"]).strftime("%Y-%m-%d %H:%M")
        click.echo(
            f"  {when} {item['kind']} {item['tbl']} {item['pk']}: {item['resolution']}"
        )
