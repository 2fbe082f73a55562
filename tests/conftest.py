"""Shared fixtures: a private state directory for every test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def state_dir(tmp_path_factory, monkeypatch):
    """accord's state goes to a fresh folder, never the user's."""
    path = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("ACCORD_STATE_DIR", str(path))
    return path
