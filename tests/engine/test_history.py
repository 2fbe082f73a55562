"""Shared history: runs made by others through a shared place show in ``log``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from accord.engine import history
from accord.model import Side


def accord(tmp: Path, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ACCORD_USER": user,
        "ACCORD_STATE_DIR": str(tmp / f"state-{user}"),
    }
    return subprocess.run(
        [sys.executable, "-m", "accord", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_log_shows_who_changed_the_shared_place(tmp_path: Path) -> None:
    alice, bob, shared = tmp_path / "alice", tmp_path / "bob", tmp_path / "shared"
    alice.mkdir(), bob.mkdir()
    (alice / "plan.txt").write_text("alice's plan\n")
    assert (
        accord(tmp_path, "alice", "sync", str(alice), str(shared), "-y").returncode == 0
    )
    (bob / "notes.txt").write_text("bob's notes\n")
    assert accord(tmp_path, "bob", "sync", str(bob), str(shared), "-y").returncode == 0

    log = accord(tmp_path, "alice", "log", str(alice), str(shared), "-v")
    assert log.returncode == 0, log.stderr
    bob_line = next(line for line in log.stdout.splitlines() if "  bob  " in line)
    assert f"1 changed in {shared}" in bob_line
    assert "copy      notes.txt" in log.stdout

    lines = accord(tmp_path, "alice", "log", str(alice), str(shared), "--json")
    runs = [json.loads(line) for line in lines.stdout.splitlines()]
    elsewhere = [r for r in runs if r.get("elsewhere")]
    assert [r["who"] for r in elsewhere] == ["bob"]


def test_log_of_a_shared_place_works_before_a_first_sync(tmp_path: Path) -> None:
    shared, newcomer = tmp_path / "shared", tmp_path / "new"
    seed = tmp_path / "seed"
    seed.mkdir(), newcomer.mkdir()
    (seed / "a.txt").write_text("a\n")
    assert (
        accord(tmp_path, "carol", "sync", str(seed), str(shared), "-y").returncode == 0
    )
    log = accord(tmp_path, "dave", "log", str(newcomer), str(shared))
    assert log.returncode == 0, log.stderr
    assert "carol" in log.stdout


def test_record_counts_everything_and_lists_a_bounded_number() -> None:
    changes = [("copy", f"f{i}", None) for i in range(history.MAX_CHANGES + 5)]
    changes.append(("move", "a", "b"))
    data = history.record(
        run="r1",
        who="w",
        command="sync",
        started=1.0,
        finished=2.0,
        status="ok",
        side=Side.RIGHT,
        other="/x",
        changes=changes,
    )
    assert data["counts"] == {"copy": history.MAX_CHANGES + 5, "move": 1}
    assert len(data["changes"]) == history.MAX_CHANGES
