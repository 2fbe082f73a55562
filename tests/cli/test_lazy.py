"""A command imports only what it needs: ``accord sync`` does not load the
hub, records or SQL commands, and ``accord --version`` loads no engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from accord.cli import COMMAND_MODULES, cli, load_commands


def test_every_command_is_found_in_the_module_named_for_it() -> None:
    load_commands()
    assert set(cli.commands) == set(COMMAND_MODULES)
    for name, command in cli.commands.items():
        assert command.callback is not None
        assert command.callback.__module__ == f"accord.cli.{COMMAND_MODULES[name]}"


def _imported(*args: str, cwd: Path, env: dict[str, str]) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "accord", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return {
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }


def test_a_sync_imports_only_what_it_needs(tmp_path: Path) -> None:
    env = {**os.environ, "ACCORD_STATE_DIR": str(tmp_path / "state")}
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.txt").write_text("x")
    for _ in range(2):  # a first sync, then a no-op
        found = _imported("sync", "a", "b", "--yes", "-q", cwd=tmp_path, env=env)
        assert "accord.engine.session" in found
        unneeded = {
            "accord.cli.hub",
            "accord.cli.records",
            "accord.cli.db",
            "accord.cli.syncml",
            "accord.cli.watch",
            "accord.hub",
            "accord.records",
            "pathspec",  # no ignore rules
        }
        assert not found & unneeded
    # a no-op applies nothing: no executor, copies, forked copiers, threads
    assert not found & {
        "accord.engine.apply",
        "accord.engine.forked",
        "accord.engine.perform",
        "accord.engine.transfer",
    }


def test_the_version_loads_no_engine(tmp_path: Path) -> None:
    found = _imported("--version", cwd=tmp_path, env=dict(os.environ))
    assert not {name for name in found if name.startswith("accord.engine")}


def test_the_help_lists_every_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "accord", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0] for line in done.stdout.splitlines() if line[:2] == "  "}
    assert set(COMMAND_MODULES) <= listed
