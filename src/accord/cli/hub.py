"""``accord hub ...`` and ``accord login``: run a hub and manage its accounts.

Each command is a thin call: ``accord.hub`` (init, serve) on the server's
machine, ``accord.replicas.hub_client`` (login, users, grants, nodes,
status) from any machine.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

import click

from accord.cli import cli, handle_errors
from accord.errors import ConfigError, InvalidInput

__all__ = ["hub", "login"]

_HUB_OPTION = click.option(
    "--hub",
    "hub_url",
    envvar="ACCORD_HUB",
    metavar="URL",
    help="The hub, e.g. http://127.0.0.1:8470 (default: $ACCORD_HUB, or the "
    "hub this machine is logged in to).",
)
_CA_OPTION = click.option(
    "--ca",
    metavar="FILE",
    envvar="ACCORD_HUB_CA",
    help="CA certificate (PEM) that signed the hub's TLS certificate.",
)


def _client(hub_url: str | None, ca: str | None) -> Any:
    from accord.replicas import hub_client

    if not hub_url:
        hub_url = _only_hub()
    return hub_client.HubClient(hub_url, ca=ca, admin=True)


def _only_hub() -> str:
    from accord.replicas import hub_client

    path = hub_client.credentials_path()
    try:
        saved = json.loads(path.read_text()).get("nodes", {})
    except (OSError, ValueError):
        saved = {}
    if len(saved) == 1:
        return str(next(iter(saved.values()))["url"])
    raise InvalidInput(
        "which hub? none was given",
        hint="add --hub http://HOST:PORT (or set ACCORD_HUB)",
    )


@cli.group()
def hub() -> None:
    """Run an accord hub, a server a team syncs through, and manage it.

    \b
    accord hub init /srv/hub                      make the store; prints an admin token
    accord hub serve /srv/hub --port 8470         serve it (TLS: --tls-cert/--tls-key)
    accord hub user add alice --hub URL           prints alice's enrolment code
    accord hub grant alice papers --write --hub URL
    accord hub status --hub URL
    accord hub node revoke NODE --hub URL
    accord hub place add /srv/hub backup sftp://nas/srv/papers --user alice

    A collection is a place: accord sync ~/papers hub://HOST:PORT/papers

    The web dashboard is at http://HOST:PORT/ (log in with a password set
    by accord hub user password NAME).
    """


@hub.command("init")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--db", metavar="URL", help="PostgreSQL URL (default: SQLite in FOLDER).")
@click.option(
    "--blobs",
    metavar="URL",
    help="Where content goes: s3://bucket/prefix[?endpoint_url=...] "
    "(default: FOLDER/blobs).",
)
@handle_errors
def hub_init(folder: str, db: str | None, blobs: str | None) -> None:
    """Create a hub's store in FOLDER and its first user, admin.

    Prints the admin token once (it is stored hashed). It is also kept for
    this machine's user in the hub credentials file, so `accord hub user
    add` works here at once; elsewhere, log in with
    `accord login URL --user admin --code TOKEN` or set ACCORD_HUB_TOKEN.
    """
    from accord.hub import init_hub
    from accord.replicas import hub_client

    hub_id, token = init_hub(folder, db=db, blobs=blobs)
    hub_client.save_token(hub_id, token)
    click.echo(f"hub store created in {folder} (hub id {hub_id})")
    click.echo(f"admin token (shown once, keep it safe): {token}")
    click.echo(f"next: accord hub serve {folder} --host 127.0.0.1 --port 8470")


@hub.command("serve")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on."
)
@click.option(
    "--port", default=8470, show_default=True, type=int, help="Port to listen on."
)
@click.option(
    "--tls-cert", metavar="FILE", help="TLS certificate chain (PEM): serve HTTPS."
)
@click.option("--tls-key", metavar="FILE", help="The certificate's private key (PEM).")
@click.option("--db", metavar="URL", help="PostgreSQL URL (overrides hub.toml).")
@click.option("--blobs", metavar="URL", help="s3://bucket/prefix (overrides hub.toml).")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Log detail (JSON lines on stderr).",
)
@handle_errors
def hub_serve(folder: str, **options: Any) -> None:
    """Serve the hub in FOLDER until stopped (SIGTERM or Ctrl-C stop it
    cleanly: requests in flight finish, nothing acknowledged is lost).

    Several processes may serve one store over PostgreSQL (--db) and S3
    (--blobs), each with the same hub.key.

    SyncML devices (phones, SyncEvolution) sync a collection at /syncml:
    their remote database names the collection, they log in as hub users
    (see accord hub user password --syncml-md5).
    """
    from accord.hub.serve import serve

    serve(folder, **options)


@hub.group("user")
def hub_user() -> None:
    """Users of a hub (admin)."""


@hub_user.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the user an admin.")
@_HUB_OPTION
@_CA_OPTION
@handle_errors
def user_add(name: str, admin: bool, hub_url: str | None, ca: str | None) -> None:
    """Add user NAME; prints a one-time enrolment code for their first machine."""
    with _client(hub_url, ca) as client:
        found = client.add_user(name, admin)
        _show_code(client.base, found)


def _show_code(base: str, found: dict[str, Any]) -> None:
    click.echo(f"enrolment code for {found['user']} (one use, {found['days']} days):")
    click.echo(f"  {found['code']}")
    click.echo(
        f"on their machine: accord login {base} --user {found['user']} "
        f"--code {found['code']}"
    )


@hub_user.command("code")
@click.argument("name")
@_HUB_OPTION
@_CA_OPTION
@handle_errors
def user_code(name: str, hub_url: str | None, ca: str | None) -> None:
    """A new one-time enrolment code for NAME (another machine)."""
    with _client(hub_url, ca) as client:
        _show_code(client.base, client.new_code(name))


@hub_user.command("password")
@click.argument("name")
@click.option(
    "--syncml-md5",
    is_flag=True,
    help="Also keep the digest SyncML's MD5 login needs, b64(md5(NAME:PASSWORD)): "
    "a fast hash that logs in over SyncML as NAME (without it, SyncML devices "
    "use Basic, over HTTPS).",
)
@_HUB_OPTION
@_CA_OPTION
@handle_errors
def user_password(
    name: str, syncml_md5: bool, hub_url: str | None, ca: str | None
) -> None:
    """Set NAME's password for the hub's web login and SyncML (asked, or
    read from $ACCORD_HUB_PASSWORD; never on the command line)."""
    password = os.environ.get("ACCORD_HUB_PASSWORD")
    if not password:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    with _client(hub_url, ca) as client:
        client.set_password(name, password, syncml_md5=syncml_md5)
    md5 = " (and its SyncML MD5 digest)" if syncml_md5 else ""
    click.echo(f"password set for {name}{md5}")


@hub_user.command("list")
@_HUB_OPTION
@_CA_OPTION
@handle_errors
def user_list(hub_url: str | None, ca: str | None) -> None:
    """Every user, and their grants."""
    with _client(hub_url, ca) as client:
        for user in client.users():
            grants = ", ".join(f"{c}:{a}" for c, a in sorted(user["grants"].items()))
            role = " (admin)" if user["admin"] else ""
            click.echo(f"{user['name']}{role}  {grants or 'no grants'}")


@hub.command("grant")
@click.argument("user")
@click.argument("collection")
@click.option("--read", "access", flag_value="read", help="May read and sync from it.")
@click.option("--write", "access", flag_value="write", help="May also change it.")
@click.option("--none", "access", flag_value="none", help="Remove the grant.")
@_HUB_OPTION
@_CA_OPTION
@handle_errors
def hub_grant(
    user: str, collection: str, access: str | None, hub_url: str | None, ca: str | None
) -> None:
    """Give USER read or write access to COLLECTION (made if new), or none."""
    if access is None:
        raise InvalidInput("say which access: --read, --write or --none")
    with _client(hub_url, ca) as client:
        client.grant(user, collection, access)
    click.echo(f"{user}: {access} on {collection}")


@hub.group("node")
def hub_node() -> None:
    """The machines registered with a hub."""


@hub_node.command("revoke")
@click.argument("node")
@_HUB_OPTION
@_CA_OPTION
@handle_errors
def node_revoke(node: str, hub_url: str | None, ca: str | None) -> None:
    """Revoke NODE: its next request is refused (an admin any node, a
    user their own)."""
    with _client(hub_url, ca) as client:
        client.revoke_node(node)
    click.echo(f"node {node} revoked")


@hub_node.command("list")
@_HUB_OPTION
@_CA_OPTION
@handle_errors
def node_list(hub_url: str | None, ca: str | None) -> None:
    """The nodes, their users, and when each was last seen."""
    with _client(hub_url, ca) as client:
        for node in client.status()["nodes"]:
            click.echo(_node_line(node))


def _when(stamp: float | None) -> str:
    if not stamp:
        return "never"
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


def _node_line(node: dict[str, Any]) -> str:
    state = f"revoked {_when(node['revoked'])}" if node["revoked"] else "active"
    return (
        f"{node['id']}  {node['user']:<12} {node['name']:<20} "
        f"last seen {_when(node['last_seen'])}  {state}"
    )


@hub.group("place")
def hub_place() -> None:
    """Places the web dashboard may sync, besides the hub's collections
    (run on the hub's machine; the URL and its credentials stay there)."""


@hub_place.command("add")
@click.argument("folder", type=click.Path(file_okay=False))
@click.argument("name")
@click.argument("url")
@click.option(
    "--user",
    "users",
    multiple=True,
    metavar="USER",
    help="A user who may use it (repeat; '*' for everyone; admins always may).",
)
@handle_errors
def place_add(folder: str, name: str, url: str, users: tuple[str, ...]) -> None:
    """Name URL as place NAME of the hub in FOLDER, for the given users."""
    from accord.hub.places import add_place

    place = add_place(folder, name, url, list(users))
    who = ", ".join(place.users) or "admins only"
    click.echo(f"place {place.name} ({place.kind}) for {who}")


@hub_place.command("list")
@click.argument("folder", type=click.Path(file_okay=False))
@handle_errors
def place_list(folder: str) -> None:
    """The places named for the hub in FOLDER."""
    from accord.hub.places import load_places

    places = load_places(folder)
    for place in sorted(places.values()):
        who = ", ".join(place.users) or "admins only"
        click.echo(f"{place.name}  {place.url}  ({who})")
    if not places:
        click.echo("no places (accord hub place add FOLDER NAME URL --user USER)")


@hub_place.command("remove")
@click.argument("folder", type=click.Path(file_okay=False))
@click.argument("name")
@handle_errors
def place_remove(folder: str, name: str) -> None:
    """Forget place NAME (nothing in it is touched)."""
    from accord.hub.places import remove_place

    remove_place(folder, name)
    click.echo(f"place {name} removed")


@hub.command("status")
@_HUB_OPTION
@_CA_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@handle_errors
def hub_status(hub_url: str | None, ca: str | None, as_json: bool) -> None:
    """The hub at a glance: collections and sizes, nodes and when each was
    last seen."""
    with _client(hub_url, ca) as client:
        found = client.status()
        base = client.base
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    click.echo(
        f"hub {found['hub']} at {base} "
        f"(metadata: {found['db']}, content: {found['blobs']})"
    )
    click.echo(f"you: {found['user']}{' (admin)' if found['admin'] else ''}")
    click.echo("collections:")
    for col in found["collections"] or []:
        click.echo(
            f"  {col['name']:<20} {col['items']:>8} items {col['bytes']:>14,} bytes"
        )
    if not found["collections"]:
        click.echo("  none yet (accord hub grant USER NAME --write makes one)")
    click.echo("nodes:")
    for node in found["nodes"]:
        click.echo("  " + _node_line(node))


@cli.command("login")
@click.argument("url")
@click.option("--user", required=True, help="Your user name on the hub.")
@click.option("--code", required=True, help="The enrolment code the admin gave you.")
@click.option(
    "--name", "node_name", help="A name for this machine (default: its host name)."
)
@_CA_OPTION
@handle_errors
def login(
    url: str, user: str, code: str, node_name: str | None, ca: str | None
) -> None:
    """Register this machine with the hub at URL as a node of USER.

    Its secret goes to the hub credentials file in your config folder
    (mode 0600); every request after this is signed with it.
    """
    from accord.replicas import hub_client

    if not code.strip():
        raise ConfigError("an empty enrolment code")
    found = hub_client.login(url, user, code, node_name=node_name, ca=ca)
    click.echo(f"logged in to {found['url']} as {found['user']} (node {found['node']})")
    click.echo(f"credentials saved in {found['path']}")
