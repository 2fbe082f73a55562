"""Kill the real CLI at every journal step of a sync; the next run converges.

``ACCORD_KILL_AT_STEP=k`` makes the process SIGKILL itself at its k-th
journal step (intent written, each action performed, each batch recorded).
For every k we start from the same two trees and archive, kill the run at k,
run again without the fault, and check that:

- both sides end identical (accord's own ``.accord`` folders aside);
- every content that existed on either side before the sync is still on a
  side, in a conflict copy, or in a trash (nothing was deliberately deleted
  in between but what the user deleted before the sync);
- no temporary file is left under a real name, and a third run has nothing
  to do.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ACCORD = [sys.executable, "-m", "accord"]
MAX_STEPS = 200


FORK_MIN = {"in-process": "1000000", "child-processes": "1"}


@pytest.fixture(params=sorted(FORK_MIN), autouse=True)
def copier(request, monkeypatch):
    """Run each test with copies done in this process, and in child processes
    (the engine forks copiers for big local copies; ACCORD_FORK_MIN lowers
    the threshold so this small scenario takes that path too)."""
    monkeypatch.setenv("ACCORD_FORK_MIN", FORK_MIN[request.param])
    return request.param


def accord(state: Path, *args: str, kill_at: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "ACCORD_STATE_DIR": str(state)}
    env.pop("ACCORD_KILL_AT_STEP", None)
    if kill_at:
        env["ACCORD_KILL_AT_STEP"] = str(kill_at)
    return subprocess.run(
        [*ACCORD, *args], capture_output=True, text=True, timeout=120, env=env
    )


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def contents(root: Path, *, with_meta: bool = False) -> dict[str, str]:
    """relative path -> sha256 (files) or '-> target' (links); dirs as '/'."""
    found: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        rel_folder = os.path.relpath(folder, root)
        if not with_meta and rel_folder.split(os.sep)[0] == ".accord":
            continue
        for name in dirs + files:
            path = Path(folder) / name
            rel = os.path.normpath(os.path.join(rel_folder, name))
            if not with_meta and rel.split(os.sep)[0] == ".accord":
                continue
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                found[rel] = "/"
            else:
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture
def template(tmp_path_factory) -> Path:
    """Two synced trees, then changes on both sides, before the sync under test."""
    base = tmp_path_factory.mktemp("template")
    left, right, state = base / "L", base / "R", base / "state"
    for i in range(6):
        write(left / f"keep/k{i}.txt", f"kept {i}\n")
    write(left / "edit-left.txt", "v1\n")
    write(left / "edit-right.txt", "v1\n")
    write(left / "both.txt", "base\n")
    write(left / "gone-left.txt", "delete me on the left\n")
    write(left / "gone-right.txt", "delete me on the right\n")
    write(left / "rename-me.txt", "content that moves\n" * 50)
    write(left / "old-folder/inner.txt", "folder deleted on the right\n")
    write(left / "del-vs-edit.txt", "base\n")
    done = accord(state, "sync", str(left), str(right), "--yes", "-q")
    assert done.returncode == 0, done.stderr
    # changes on the left
    write(left / "edit-left.txt", "v2 from the left\n")
    write(left / "new-left/a.txt", "new on the left\n")
    write(left / "new-left/deep/b.txt", "deep new\n")
    (left / "gone-left.txt").unlink()
    (left / "rename-me.txt").rename(left / "renamed.txt")
    write(left / "both.txt", "left's version\n")
    os.symlink("keep/k1.txt", left / "link-to-k1")
    (left / "del-vs-edit.txt").unlink()
    # changes on the right
    write(right / "edit-right.txt", "v2 from the right, longer\n")
    write(right / "new-right.txt", "new on the right\n")
    (right / "gone-right.txt").unlink()
    shutil.rmtree(right / "old-folder")
    write(right / "both.txt", "right's version, different\n")
    write(right / "del-vs-edit.txt", "edited on the right\n")
    return base


def copy_case(template: Path) -> tuple[Path, Path, Path]:
    """A fresh copy of the template, at the template's own path: the pair's
    archive is keyed by the roots' paths, so the pristine template is moved
    aside once and each case is copied back from it."""
    work = template.parent / (template.name + "-pristine")
    if not work.exists():
        template.rename(work)
    if template.exists():
        shutil.rmtree(template)
    shutil.copytree(work, template, symlinks=True)
    return template / "L", template / "R", template / "state"


def must_survive(left: Path, right: Path) -> set[str]:
    """Digests of every file content on either side before the sync."""
    return {
        digest
        for root in (left, right)
        for digest in contents(root).values()
        if digest != "/" and not digest.startswith("-> ")
    }


def test_killed_at_every_step_converges_and_loses_nothing(template, tmp_path):
    steps = 0
    for k in range(1, MAX_STEPS + 1):
        left, right, state = copy_case(template)
        survive = must_survive(left, right)
        killed = accord(state, "sync", str(left), str(right), "--yes", "-q", kill_at=k)
        if killed.returncode != -signal.SIGKILL:
            assert killed.returncode == 0, (k, killed.stderr, killed.stdout)
            steps = k - 1
            break
        again = accord(state, "sync", str(left), str(right), "--yes", "-q")
        assert again.returncode == 0, f"step {k}: {again.stderr}"
        assert "Traceback" not in again.stderr
        check_converged(left, right, state, survive, f"killed at step {k}")
    else:
        pytest.fail(f"the sync took more than {MAX_STEPS} steps")
    print(f"killed at each of {steps} journal steps")
    assert steps >= 10, "the scenario should have many journal steps"


def check_converged(left: Path, right: Path, state: Path, survive, where: str):
    left_now, right_now = contents(left), contents(right)
    assert left_now == right_now, f"{where}: sides differ"
    everything = set(contents(left, with_meta=True).values()) | set(
        contents(right, with_meta=True).values()
    )
    lost = survive - everything
    assert not lost, f"{where}: {len(lost)} contents lost"
    for name in left_now:
        assert ".accord-tmp" not in name, f"{where}: temp file {name} left"
    assert (left / "del-vs-edit.txt").read_text() == "edited on the right\n"
    assert (left / "renamed.txt").exists() and not (left / "rename-me.txt").exists()
    conflicts = [n for n in left_now if n.startswith("both.conflict-")]
    assert len(conflicts) == 1, f"{where}: conflict copies {conflicts}"
    status = accord(state, "status", str(left), str(right))
    assert status.returncode == 0, f"{where}: not in agreement: {status.stdout}"


def test_uninterrupted_sync_gives_the_same_result(template, tmp_path):
    left, right, state = copy_case(template)
    survive = must_survive(left, right)
    done = accord(state, "sync", str(left), str(right), "--yes", "-q")
    assert done.returncode == 0, done.stderr
    check_converged(left, right, state, survive, "uninterrupted")


def test_a_first_copy_killed_before_its_flush_leaves_no_half_file(tmp_path):
    """Files are written without an fsync each and flushed once before the
    archive records them: killed midway, the target holds only whole files
    under their names (the rest in accord's temporary folder), the archive
    claims none that is not there, and the next run completes the copy."""
    left, right, state = tmp_path / "L", tmp_path / "R", tmp_path / "state"
    for i in range(600):
        write(left / f"d{i % 9}" / f"f{i:03}.txt", f"content {i}\n" * (i + 1))
    killed = accord(state, "sync", str(left), str(right), "--yes", "-q", kill_at=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    source = contents(left)
    landed = contents(right)
    assert landed, "the run was killed before it copied anything"
    for name, digest in landed.items():
        assert digest == source[name], f"{name}: not whole under its name"
    again = accord(state, "sync", str(left), str(right), "--yes", "-q")
    assert again.returncode == 0, again.stderr
    assert contents(right) == source
    left_over = [p for p in (right / ".accord" / "tmp").rglob("*") if p.is_file()]
    assert not left_over, f"temporary files left: {left_over}"
    status = accord(state, "status", str(left), str(right))
    assert status.returncode == 0, status.stdout
