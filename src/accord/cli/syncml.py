"""``accord syncml serve``: accord's SyncML server for one folder of notes."""

from __future__ import annotations

from typing import Any

import click

from accord.cli import cli, handle_errors
from accord.cli.places import password_from
from accord.errors import ConfigError, MissingDependency
from accord.registry import url_host

__all__ = ["syncml"]


@cli.group()
def syncml() -> None:
    """SyncML: serve a folder of notes to phones and PIM tools."""


@syncml.command()
@click.argument("folder")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on."
)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option(
    "--path", default="/syncml", show_default=True, help="URL path of the endpoint."
)
@click.option(
    "--store",
    "store_name",
    default="notes",
    show_default=True,
    help="The store name clients sync (their Alert target, ?store=).",
)
@click.option(
    "--user", required=True, metavar="NAME", help="The account clients log in as."
)
@click.option(
    "--password-env", metavar="VAR", help="Read its password from variable VAR."
)
@click.option("--password-file", metavar="FILE", help="Read its password from FILE.")
@click.option(
    "-c",
    "--conflict",
    type=click.Choice(["keep-both", "client-wins", "server-wins"]),
    default="keep-both",
    show_default=True,
    help="When a client and the folder changed the same note (after a line merge "
    "was tried): keep both (a conflict copy), or let one side win.",
)
@click.option(
    "--session-timeout",
    type=click.FloatRange(5, 86400),
    default=300,
    show_default=True,
    help="Seconds before an idle session expires.",
)
@handle_errors
def serve(
    folder: str,
    host: str,
    port: int,
    path: str,
    store_name: str,
    user: str,
    password_env: str | None,
    password_file: str | None,
    conflict: str,
    session_timeout: float,
) -> None:
    """Serve FOLDER's notes over SyncML (HTTP) until stopped.

    Clients authenticate with syncml:auth-basic or syncml:auth-md5 (nonces
    chained session to session). Notes are files; writes are atomic,
    deletes and overwrites go to the folder's trash (accord trash list).
    Put it behind an HTTPS proxy to use it beyond this machine.

    \b
    NOTES_PW=... accord syncml serve ~/notes --port 8080 --user me \\
        --password-env NOTES_PW
    # a client syncs http://HOST:8080/syncml with store "notes"
    """
    try:
        import uvicorn
    except ImportError as exc:
        raise MissingDependency(
            f"the SyncML server needs {exc.name}", hint="pip install 'accord[syncml]'"
        ) from None
    from accord.syncml.app import syncml_app
    from accord.syncml.store import FolderStore, SingleUser

    password = password_from(password_env, password_file)
    if password is None:
        raise ConfigError(
            "the server needs the account's password",
            hint="give --password-env VAR or --password-file FILE",
        )
    store = FolderStore(folder, store_name)
    app = syncml_app(
        store,
        SingleUser(user, password),
        store.state,
        policy=conflict,
        session_timeout=session_timeout,
        store_names=(store_name,),
    )
    root = _at(path.rstrip("/"), app)
    click.echo(
        f"serving {folder} as SyncML store '{store_name}' at "
        f"http://{url_host(host)}:{port}{path} (Ctrl-C stops)",
        err=True,
    )
    try:
        uvicorn.run(root, host=host, port=port, log_level="warning")
    finally:
        store.close()


def _at(prefix: str, app: Any) -> Any:
    """An ASGI app serving ``app`` at ``prefix`` (with or without a final
    slash) and 404 elsewhere."""

    async def root(scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] == "lifespan"
            or path == prefix
            or path.startswith(prefix + "/")
        ):
            await app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": b"not found\n"})

    return root
