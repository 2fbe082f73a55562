"""Helpers for the hub's tests: users, their machines, raw requests."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from accord.replicas.hub_client import HubClient, login


def admin(hub) -> HubClient:
    return HubClient(hub.base, ca=hub.ca, admin=True)


@contextlib.contextmanager
def as_machine(credentials: Path) -> Iterator[None]:
    """Act as the machine whose hub credentials are in ``credentials``."""
    before = os.environ.get("ACCORD_HUB_CREDENTIALS")
    os.environ["ACCORD_HUB_CREDENTIALS"] = str(credentials)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("ACCORD_HUB_CREDENTIALS", None)
        else:
            os.environ["ACCORD_HUB_CREDENTIALS"] = before


def new_user(
    hub, folder: Path, collection: str | None = None, access: str = "write"
) -> tuple[str, Path]:
    """A new user with ``access`` to ``collection``, logged in on a machine
    of its own: its name and credentials file."""
    name = "u" + uuid.uuid4().hex[:8]
    with admin(hub) as client:
        code = client.add_user(name)["code"]
        if collection:
            client.grant(name, collection, access)
    credentials = folder / f"{name}.json"
    with as_machine(credentials):
        login(hub.base, name, code, node_name=name, ca=hub.ca)
    return name, credentials


def machine(credentials: Path) -> HubClient:
    """A client signing as the node saved in ``credentials``."""
    with as_machine(credentials):
        return HubClient(_url(credentials))


def _url(credentials: Path) -> str:
    import json

    (node,) = json.loads(credentials.read_text())["nodes"].values()
    return str(node["url"])
