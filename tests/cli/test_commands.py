"""The CLI as a user meets it: a real `accord` process per call.

Help on every command, the exit-code table, output modes (plain when piped,
quiet, JSON lines), plan/apply, trash, log, reset, profiles and locks, and
never a Python traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

COMMANDS = [
    ["sync"],
    ["mirror"],
    ["status"],
    ["plan"],
    ["apply"],
    ["log"],
    ["reset"],
    ["trash"],
    ["trash", "list"],
    ["trash", "restore"],
    ["trash", "purge"],
    ["syncml"],
    ["syncml", "serve"],
]


def accord(
    *args: str,
    cwd: Path | None = None,
    env: dict | None = None,
    stdin: str | None = None,
    prefix: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "accord", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=60,
        input=stdin,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    left, right = tmp_path / "left", tmp_path / "right"
    left.mkdir()
    (left / "a.txt").write_text("a\n")
    (left / "sub").mkdir()
    (left / "sub" / "b.txt").write_text("b\n")
    return left, right


def synced(pair: tuple[Path, Path]) -> tuple[Path, Path]:
    left, right = pair
    done = accord("sync", str(left), str(right), "--yes", "-q")
    assert done.returncode == 0, done.stderr
    return left, right


# -- help -------------------------------------------------------------------
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    done = accord(*command, "--help")
    assert done.returncode == 0
    assert "Usage: accord" in done.stdout
    assert "accord " + command[0] in done.stdout.split("Usage:", 1)[1]


def test_top_level_help_lists_exit_codes() -> None:
    done = accord("--help")
    assert done.returncode == 0
    assert "Exit codes" in done.stdout and "130 interrupted" in done.stdout


# -- exit codes and output ----------------------------------------------------
def test_first_sync_without_a_terminal_needs_a_human(pair) -> None:
    left, right = pair
    done = accord("sync", str(left), str(right), stdin="")
    assert done.returncode == 5
    assert "--yes" in done.stderr + done.stdout
    assert not right.exists(), "a refused first sync leaves nothing behind"


def test_done_then_nothing_to_do(pair) -> None:
    left, right = pair
    first = accord("sync", str(left), str(right), "--yes")
    assert first.returncode == 0
    assert (right / "sub" / "b.txt").read_text() == "b\n"
    again = accord("sync", str(left), str(right), "--yes")
    assert again.returncode == 0
    assert "nothing to do" in again.stdout


def test_plain_output_when_piped_and_quiet(pair) -> None:
    left, right = synced(pair)
    (left / "c.txt").write_text("c\n")
    done = accord("sync", str(left), str(right), "--yes", "-v")
    assert done.returncode == 0
    assert "\x1b[" not in done.stdout, "no colours when piped"
    assert "c.txt" in done.stdout
    (left / "d.txt").write_text("d\n")
    quiet = accord("sync", str(left), str(right), "--yes", "-q")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""


def test_dry_run_and_status_exit_6_when_changes_pend(pair) -> None:
    left, right = synced(pair)
    (right / "new.txt").write_text("new\n")
    dry = accord("sync", str(left), str(right), "--dry-run")
    assert dry.returncode == 6 and "new.txt" in dry.stdout
    assert not (left / "new.txt").exists()
    status = accord("status", str(left), str(right), "--why")
    assert status.returncode == 6
    assert "created on right" in status.stdout
    accord("sync", str(left), str(right), "--yes", "-q")
    assert accord("status", str(left), str(right)).returncode == 0


def test_json_lines_parse(pair) -> None:
    left, right = synced(pair)
    (left / "e.txt").write_text("e\n")
    done = accord("sync", str(left), str(right), "--yes", "--json")
    assert done.returncode == 0
    events = [json.loads(line) for line in done.stdout.splitlines() if line]
    assert events and all(isinstance(e, dict) for e in events)
    assert any("e.txt" in json.dumps(e) for e in events)


def test_errors_are_messages_with_hints(tmp_path: Path) -> None:
    missing = accord("sync", str(tmp_path / "nope"), str(tmp_path / "x"), "--yes")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error:") and "hint:" in missing.stderr
    assert "neither" in missing.stderr and not (tmp_path / "x").exists()
    (tmp_path / "file").write_text("not a folder")
    not_dir = accord("mirror", str(tmp_path / "file"), str(tmp_path / "y"), "--yes")
    assert not_dir.returncode == 1 and "not a folder" in not_dir.stderr
    usage = accord("sync", "--conflict", "sideways", "a", "b")
    assert usage.returncode == 2
    unknown = accord("sync", "gopher://x/y", str(tmp_path), "--yes")
    assert unknown.returncode == 1 and "unknown place type" in unknown.stderr


def test_mass_deletion_is_a_guard_under_yes(tmp_path: Path) -> None:
    left, right = tmp_path / "l", tmp_path / "r"
    left.mkdir()
    for i in range(30):
        (left / f"f{i}.txt").write_text(str(i))
    (left / "keep.txt").write_text("keep")
    assert accord("sync", str(left), str(right), "-y", "-q").returncode == 0
    for i in range(30):
        (left / f"f{i}.txt").unlink()
    done = accord(
        "sync",
        str(left),
        str(right),
        "-y",
        "--max-delete",
        "10",
        "--max-delete-percent",
        "10",
    )
    assert done.returncode == 4, done.stderr
    assert "stopped by a guard" in done.stderr
    assert len(list(right.iterdir())) >= 31


def test_partial_run_exits_3_and_the_next_run_completes(pair) -> None:
    """A folder nobody may write into (immutable, which binds root too):
    that item fails, the others are done, and the next run completes."""
    left, right = synced(pair)
    (left / "sub" / "new.txt").write_text("new\n")
    (left / "ok.txt").write_text("ok\n")
    frozen = subprocess.run(["chattr", "+i", str(right / "sub")], capture_output=True)
    if frozen.returncode != 0:
        if os.getuid() != 0:
            os.chmod(right / "sub", 0o555)
        else:
            pytest.fail(f"cannot make a folder read-only here: {frozen.stderr!r}")
    try:
        done = accord("sync", str(left), str(right), "--yes")
        assert done.returncode == 3, done.stdout + done.stderr
        assert (right / "ok.txt").exists()
        assert "sub/new.txt" in done.stdout + done.stderr
    finally:
        subprocess.run(["chattr", "-i", str(right / "sub")], capture_output=True)
        os.chmod(right / "sub", 0o755)
    assert accord("sync", str(left), str(right), "--yes").returncode == 0
    assert (right / "sub" / "new.txt").read_text() == "new\n"


def _bound_by_modes() -> tuple[str, ...]:
    """A command prefix under which a folder's mode binds this user: root
    without its capabilities to read and write past modes."""
    if os.getuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.fail(
            "setpriv (util-linux) is needed to run accord without root's override"
        )
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search")


def test_a_folder_that_cannot_be_listed_is_partial_and_loses_nothing(pair) -> None:
    """As rsync's exit 23: a folder the run cannot list leaves its items
    unsynced, so the run ends as partial (3) and deletes nothing of it on
    the other side, and ``status`` and ``--dry-run`` end with 3 too; a
    named pipe skipped is a notice, and the run is in agreement (0)."""
    left, right = synced(pair)
    os.mkfifo(left / "pipe")
    (left / "new.txt").write_text("new\n")
    done = accord("sync", str(left), str(right), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "notice: left pipe: skipped: a named pipe" in done.stdout + done.stderr
    assert "done: 1 changed (4 B), 1 notice in" in done.stdout
    assert "problem" not in done.stdout + done.stderr
    assert accord("status", str(left), str(right)).returncode == 0
    again = accord("sync", str(left), str(right), "--yes")  # only a notice: a no-op
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to do: both sides agree, apart from what is noted" in again.stdout
    (left / "sub" / "c.txt").write_text("c\n")
    os.chmod(left / "sub", 0)
    try:
        for verb in (["sync", "--yes"], ["mirror", "--delete", "--yes"]):
            done = accord(
                verb[0], str(left), str(right), *verb[1:], prefix=_bound_by_modes()
            )
            assert done.returncode == 3, done.stdout + done.stderr
            assert "sub: cannot list this folder" in done.stdout + done.stderr
            assert (right / "sub" / "b.txt").read_text() == "b\n"
            assert not (right / "sub" / "c.txt").exists()
        # a look that changes nothing cannot say the sides agree either
        for verb in (["status"], ["sync", "--dry-run"]):
            done = accord(
                verb[0], str(left), str(right), *verb[1:], prefix=_bound_by_modes()
            )
            assert done.returncode == 3, done.stdout + done.stderr
            assert "sub: cannot list this folder" in done.stdout + done.stderr
    finally:
        os.chmod(left / "sub", 0o755)
    done = accord("sync", str(left), str(right), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (right / "sub" / "c.txt").read_text() == "c\n"


# -- plan and apply -----------------------------------------------------------
def test_plan_then_apply_exactly_and_skip_what_went_stale(pair, tmp_path) -> None:
    left, right = synced(pair)
    (left / "a.txt").write_text("a edited\n")
    (left / "new.txt").write_text("new\n")
    plan = tmp_path / "plan.json"
    made = accord("plan", str(left), str(right), "-o", str(plan))
    assert made.returncode in (0, 6), made.stderr
    data = json.loads(plan.read_text())
    assert data["actions"]
    (right / "a.txt").write_text("edited on the right after planning\n")
    done = accord("apply", str(plan), "--yes")
    assert done.returncode == 3, done.stdout + done.stderr
    assert (right / "new.txt").read_text() == "new\n"
    assert (right / "a.txt").read_text() == "edited on the right after planning\n"


@pytest.mark.parametrize("files", [3, 3000])  # one by one; the forked copiers
def test_a_source_gone_since_the_plan_is_skipped_not_failed(
    pair, tmp_path, files: int
) -> None:
    """A file deleted after its copy was planned is left for the next run
    (as one that changed is), not failed as "not found"."""
    left, right = pair
    for n in range(files):
        (left / f"f{n}").write_text(f"{n}\n")
    plan = tmp_path / "plan.json"
    made = accord("plan", str(left), str(right), "-o", str(plan))
    assert made.returncode in (0, 6), made.stderr
    (left / "f1").unlink()
    (left / "f2").write_text("changed since the plan\n")
    done = accord("apply", str(plan), "--yes")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "skipped: the source is gone since it was listed" in done.stderr
    assert "f1 (in " in done.stderr and "failed" not in done.stderr
    assert "skipped: the source changed since it was listed" in done.stderr
    assert not (right / "f1").exists() and not (right / "f2").exists()
    assert (right / "f0").read_text() == "0\n"
    again = accord("sync", str(left), str(right), "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert (right / "f2").read_text() == "changed since the plan\n"


def test_a_file_with_no_permission_at_all_keeps_none(pair, sshd) -> None:
    """``chmod 000`` (``/etc/shadow`` on some systems) is copied as 000,
    by the listing (the scan, not only ``stat``) and every copier, never
    widened to the default 0644."""
    left, right = pair
    (left / "shadow").write_text("root:*:\n")
    (left / "shadow").chmod(0)
    (left / "open.txt").write_text("o\n")
    url = sshd.url()
    for target in (str(right), url, url + "&agent=off"):
        done = accord("mirror", str(left), target, "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        folder = right if target == str(right) else sshd.path(target)
        assert (folder / "shadow").stat().st_mode & 0o7777 == 0, target
        again = accord("mirror", str(left), target, "--yes")
        assert "nothing to do" in again.stdout, again.stdout + again.stderr
        if target != str(right):
            shutil.rmtree(folder)  # the next target is the same folder
            accord("reset", str(left), target, "--yes")


def test_applying_a_first_sync_shows_the_plan_it_asks_about(pair, tmp_path) -> None:
    # without --yes and without a terminal, a first sync is refused: the
    # plan the refusal tells the user to check is printed above it
    left, right = pair
    plan = tmp_path / "plan.json"
    made = accord("plan", str(left), str(right), "-o", str(plan))
    assert made.returncode in (0, 6), made.stderr
    refused = accord("apply", str(plan))
    assert refused.returncode == 5, refused.stdout + refused.stderr
    assert "check the plan above" in refused.stderr
    assert "-> copy" in refused.stdout and "a.txt" in refused.stdout
    assert not (right / "a.txt").exists()
    done = accord("apply", str(plan), "--yes", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""
    assert (right / "a.txt").read_text() == (left / "a.txt").read_text()


def test_a_conflict_kept_both_is_told_at_the_end(pair) -> None:
    # "done: 1 changed" alone hid that a second copy of the file now sits
    # beside it on both sides
    left, right = synced(pair)
    (left / "a.txt").write_text("left\n")
    (right / "a.txt").write_text("right\n")
    done = accord("sync", str(left), str(right), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 conflict kept both" in done.stdout
    (copy,) = [p.name for p in left.glob("a.conflict-*")]
    (told,) = [x for x in done.stdout.splitlines() if x.startswith("conflict: ")]
    assert told.startswith("conflict: a.txt: changed on both sides: ")
    assert told.endswith(f" version is kept as {copy}")
    (left / "a.txt").write_text("left again\n")
    (right / "a.txt").write_text("right again\n")
    as_json = accord("sync", str(left), str(right), "--yes", "--json")
    summary = json.loads(as_json.stdout.splitlines()[-1])
    assert summary["event"] == "summary" and summary["kept_both"] == 1


def test_one_place_alone_is_a_usage_error_not_a_missing_profile(pair, tmp_path) -> None:
    # a lone argument is a profile's name; a path given alone was answered
    # "no profile named '/x/left'" with advice to add a [pairs./x/left] table
    left, _ = pair
    for command in ("sync", "status", "log"):
        done = accord(command, str(left), cwd=tmp_path)
        assert done.returncode == 2, (command, done.stderr)
        assert f"only one was given, {left}" in done.stderr, done.stderr
    bare = accord("sync", "left", cwd=tmp_path)  # a folder here, no profiles
    assert bare.returncode == 2 and "only one was given, left" in bare.stderr
    named = accord("sync", "notes", cwd=tmp_path)  # no such folder: a profile
    assert named.returncode == 1 and "no profile named 'notes'" in named.stderr


def test_a_new_place_is_made_only_in_a_folder_that_is_there(pair, tmp_path) -> None:
    # like rsync: a mistyped path (or a disk not mounted) is not made, with
    # every folder above it, on whatever disk is there
    left, _ = pair
    target = tmp_path / "bakup" / "notes"
    for args in (["mirror"], ["sync", "--yes"], ["sync", "--dry-run"]):
        done = accord(*args, str(left), str(target))
        assert done.returncode == 1, (args, done.stdout + done.stderr)
        assert f"the folder {tmp_path / 'bakup'} does not exist" in done.stderr
        assert "make " in done.stderr and not (tmp_path / "bakup").exists()
    (tmp_path / "bakup").mkdir()
    made = accord("mirror", str(left), str(target))
    assert made.returncode == 0, made.stderr
    assert (target / "a.txt").read_text() == "a\n"


# -- trash, log, reset ----------------------------------------------------------
def test_trash_list_restore_purge(pair) -> None:
    left, right = synced(pair)
    (left / "a.txt").unlink()
    assert accord("sync", str(left), str(right), "-y", "-q").returncode == 0
    assert not (right / "a.txt").exists()
    listed = accord("trash", "list", str(right))
    assert listed.returncode == 0 and "a.txt" in listed.stdout
    restored = accord("trash", "restore", str(right), "a.txt")
    assert restored.returncode == 0, restored.stderr
    assert (right / "a.txt").read_text() == "a\n"
    purged = accord("trash", "purge", str(right), "--yes")
    assert purged.returncode == 0
    assert "a.txt" not in accord("trash", "list", str(right)).stdout


def test_log_lists_runs_and_one_run(pair) -> None:
    left, right = synced(pair)
    (left / "z.txt").write_text("z\n")
    accord("sync", str(left), str(right), "-y", "-q")
    log = accord("log", str(left), str(right))
    assert log.returncode == 0
    runs = [line.split()[0] for line in log.stdout.splitlines() if line.strip()]
    assert len(runs) == 2
    one = accord("log", str(left), str(right), "--run", runs[0])
    assert one.returncode == 0 and "z.txt" in one.stdout


def test_reset_asks_then_forgets(pair) -> None:
    left, right = synced(pair)
    refused = accord("reset", str(left), str(right), stdin="")
    assert refused.returncode == 5
    done = accord("reset", str(left), str(right), "--yes")
    assert done.returncode == 0
    again = accord("sync", str(left), str(right), "--dry-run")
    assert "first sync" in again.stdout


# -- profiles -------------------------------------------------------------------
def test_profile_from_accord_toml(pair, tmp_path) -> None:
    left, right = pair
    (left / "skip.tmp").write_text("tmp\n")
    config = tmp_path / "accord.toml"
    config.write_text(
        f'[pairs.notes]\nleft = "{left}"\nright = "{right}"\nexclude = ["*.tmp"]\n'
    )
    done = accord("sync", "notes", "--yes", env={"ACCORD_CONFIG": str(config)})
    assert done.returncode == 0, done.stderr
    assert (right / "a.txt").exists() and not (right / "skip.tmp").exists()
    missing = accord("sync", "other", "--yes", env={"ACCORD_CONFIG": str(config)})
    assert missing.returncode == 1 and "no profile" in missing.stderr
    config.write_text("[pairs.notes\n")
    broken = accord("sync", "notes", "--yes", env={"ACCORD_CONFIG": str(config)})
    assert broken.returncode == 2 and "not valid TOML" in broken.stderr


def test_a_database_mirror_profile(pair, tmp_path) -> None:
    """Every option the commands read from a profile is accepted there."""
    left, right = pair
    (left / "romidb").write_text("")
    right.mkdir(exist_ok=True)
    (right / "romidb").write_text("")
    config = tmp_path / "accord.toml"
    config.write_text(
        f'[pairs.db]\nleft = "{left}"\nright = "{right}"\nmode = "mirror"\n'
        'marker = "romidb"\ndb_lock = "lock"\n'
        'endpoint_url = "http://127.0.0.1:1"\n'
        "fsdb = false\nlock_timeout = 5\nscan_locks = true\n"
    )
    done = accord("mirror", "db", "--yes", env={"ACCORD_CONFIG": str(config)})
    assert done.returncode == 0, done.stderr
    assert (right / "a.txt").exists() and not (right / "lock").exists()


# -- locks ------------------------------------------------------------------------
def lock_file(place: Path, pid: int) -> None:
    (place / ".accord").mkdir(exist_ok=True)
    (place / ".accord" / "lock").write_text(
        json.dumps(
            {
                "who": "someone@elsewhere",
                "host": socket.gethostname(),
                "pid": pid,
                "since": time.time(),
                "run": "20260101T000000Z-abcdef",
            }
        )
    )


def test_stale_lock_is_removed_with_a_notice(pair) -> None:
    left, right = synced(pair)
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock_file(left, dead.pid)
    done = accord("sync", str(left), str(right), "--yes")
    assert done.returncode == 0
    assert "stale lock" in done.stdout + done.stderr


def test_live_lock_refuses_until_broken(pair) -> None:
    left, right = synced(pair)
    lock_file(left, os.getpid())  # this test process is alive
    busy = accord("sync", str(left), str(right), "--yes")
    assert busy.returncode == 1
    assert "busy" in busy.stderr and "--break-lock" in busy.stderr
    broken = accord("sync", str(left), str(right), "--yes", "--break-lock")
    assert broken.returncode == 0
    assert not (left / ".accord" / "lock").exists()


def test_reset_places_removes_accords_folder_too(pair) -> None:
    left, right = synced(pair)
    (left / "a.txt").unlink()
    accord("sync", str(left), str(right), "-y", "-q")
    assert (right / ".accord" / "trash").exists()
    refused = accord("reset", str(left), str(right), "--places", stdin="")
    assert refused.returncode == 5 and (right / ".accord").exists()
    done = accord("reset", str(left), str(right), "--places", "--yes")
    assert done.returncode == 0, done.stderr
    assert not (right / ".accord").exists() and not (left / ".accord").exists()
    assert (right / "sub" / "b.txt").exists(), "data is never touched"
