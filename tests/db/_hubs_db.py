"""A second user of the test hub, logged in from a credentials file of
its own (so the test acts as that user, not as the admin)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def as_user(hub, folder: Path, before=None) -> Iterator[str]:
    """``before(name)`` runs with the admin's credentials."""
    from accord.replicas.hub_client import HubClient, login

    name = "u" + uuid.uuid4().hex[:8]
    with HubClient(hub.base, admin=True) as admin:
        code = admin.add_user(name)["code"]
    if before is not None:
        before(name)
    before = os.environ["ACCORD_HUB_CREDENTIALS"]
    os.environ["ACCORD_HUB_CREDENTIALS"] = str(folder / f"{name}.json")
    try:
        login(hub.base, name, code, node_name=name)
        yield name
    finally:
        os.environ["ACCORD_HUB_CREDENTIALS"] = before
