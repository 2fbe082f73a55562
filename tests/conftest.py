"""Shared fixtures: a private state directory for every test.

Fixtures that start real servers on 127.0.0.1 (sshd, S3, slapd) live in
``tests/fixtures/``, one module per server, and are loaded here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = sorted(
    f"fixtures.{path.stem}"
    for path in (Path(__file__).parent / "fixtures").glob("[!_]*.py")
)


@pytest.fixture(autouse=True)
def state_dir(tmp_path_factory, monkeypatch):
    """accord's state (and its cache) go to fresh folders, never the user's."""
    path = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("ACCORD_STATE_DIR", str(path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    return path
