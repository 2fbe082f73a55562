"""Bad input meets a clear error and the right exit code, never a traceback.

Paths that would leave a place, malformed accord.toml and plan files, bad
option values, a closed stdout, questions with no terminal, odd locks.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accord.registry import open_replica
from accord.state import lock


def accord(
    *args: str, env: dict | None = None, stdin: str | None = ""
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "accord", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        input=stdin,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert "unexpectedly" not in done.stderr, done.stderr
    return done


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    left, right = tmp_path / "left", tmp_path / "right"
    left.mkdir()
    (left / "a.txt").write_text("a\n")
    (left / "sub").mkdir()
    (left / "sub" / "b.txt").write_text("b\n")
    done = accord("sync", str(left), str(right), "--yes", "-q")
    assert done.returncode == 0, done.stderr
    return left, right


# -- 1. paths given by the user stay inside the place ------------------------
@pytest.fixture
def trashed(pair: tuple[Path, Path]) -> Path:
    """The right side, with a.txt in its trash."""
    left, right = pair
    (left / "a.txt").unlink()
    assert accord("sync", str(left), str(right), "-y", "-q").returncode == 0
    return right


OUTSIDE = ["../x", "../../x", "/tmp/accord-escape", "sub/../../x", "", ".", "a//b"]


@pytest.mark.parametrize("target", [*OUTSIDE, ".accord/x", "./x"])
def test_trash_restore_to_outside_the_place_is_refused(trashed, target) -> None:
    before = sorted(p.name for p in trashed.parent.iterdir())
    done = accord("trash", "restore", str(trashed), "a.txt", "--to", target)
    assert done.returncode == 2, done.stderr
    assert "is not a path inside the place" in done.stderr and "hint:" in done.stderr
    assert sorted(p.name for p in trashed.parent.iterdir()) == before
    assert not Path("/tmp/accord-escape").exists()
    assert "a.txt" in accord("trash", "list", str(trashed)).stdout  # untouched


@pytest.mark.parametrize("path", ["../a.txt", "/a.txt", "sub/../a.txt", "."])
def test_trash_restore_path_must_be_inside_the_place(trashed, path) -> None:
    done = accord("trash", "restore", str(trashed), path)
    assert done.returncode == 2 and "is not a path inside" in done.stderr
    assert not (trashed / "a.txt").exists()


def test_apply_refuses_a_plan_whose_keys_leave_the_place(pair, tmp_path) -> None:
    left, right = pair
    (left / "new.txt").write_text("new\n")
    plan = tmp_path / "plan.json"
    accord("plan", str(left), str(right), "-o", str(plan), "-q")
    data = json.loads(plan.read_text())
    data["actions"][0]["key"] = "../escaped.txt"
    plan.write_text(json.dumps(data))
    done = accord("apply", str(plan), "--yes")
    assert done.returncode == 2 and "not an accord plan" in done.stderr
    assert not (tmp_path / "escaped.txt").exists()
    assert not (right / "new.txt").exists()


# -- 2. malformed accord.toml -------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ("exclude = 3", "option 'exclude' in profile 'p'"),
        ('workers = "x"', "option 'workers' in profile 'p'"),
        ("workers = true", "expected a whole number"),
        ("max_delete_percent = 150", "expected a number from 0 to 100"),
        ("exclude = [1]", "expected a list of strings"),
        ("colour = 1", "unknown option 'colour' in profile 'p'"),
        ("[pairs.p", "is not valid TOML"),
    ],
)
def test_malformed_accord_toml_is_a_config_error(pair, tmp_path, extra, said) -> None:
    left, right = pair
    config = tmp_path / "accord.toml"
    config.write_text(f'[pairs.p]\nleft = "{left}"\nright = "{right}"\n{extra}\n')
    done = accord("sync", "p", "--yes", env={"ACCORD_CONFIG": str(config)})
    assert done.returncode == 2, done.stderr
    assert said in done.stderr and str(config) in done.stderr


@pytest.mark.parametrize(
    ("text", "said"),
    [("pairs = 3\n", "'pairs' in"), ("[pairs]\np = 3\n", "profile 'p' in")],
)
def test_accord_toml_of_the_wrong_shape(tmp_path, text, said) -> None:
    config = tmp_path / "accord.toml"
    config.write_text(text)
    done = accord("sync", "p", "--yes", env={"ACCORD_CONFIG": str(config)})
    assert done.returncode == 2 and said in done.stderr and "not a table" in done.stderr


# -- 3. a file that is not a plan ---------------------------------------------
@pytest.mark.parametrize(
    "content", ["[]", "3", "{}", "null", '{"actions": []}', "not json", "\xff"]
)
def test_apply_refuses_a_file_that_is_not_a_plan(pair, tmp_path, content) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(content, encoding="latin-1")
    done = accord("apply", str(plan), "--yes")
    assert done.returncode == 2, done.stderr
    assert f"{plan} is not" in done.stderr and "plan" in done.stderr
    assert "hint:" in done.stderr


@pytest.mark.parametrize(
    "opens", [{"middle": "/x"}, {"right": 3}, {"right": ""}, ["right"], "x"]
)
def test_apply_refuses_a_plan_that_opens_its_places_wrongly(
    pair, tmp_path, opens
) -> None:
    left, right = pair
    plan = tmp_path / "plan.json"
    made = accord("plan", str(left), str(right), "-o", str(plan))
    assert made.returncode in (0, 6), made.stderr
    data = json.loads(plan.read_text())
    data["open"] = opens
    plan.write_text(json.dumps(data))
    done = accord("apply", str(plan), "--yes")
    assert done.returncode == 2, done.stderr
    assert f"{plan} is not" in done.stderr and "'open'" in done.stderr


@pytest.mark.parametrize(
    "place",
    [
        "sftp://127.0.0.1:99999/x",
        "sftp://h:abc/x",
        "hub://127.0.0.1:99999/c",
        "plantdb+http://127.0.0.1:99999",
        "syncml+http://127.0.0.1:70000/x?store=notes",
    ],
)
def test_a_port_that_is_not_one_is_a_clear_error(pair, place) -> None:
    left, _ = pair
    done = accord("sync", str(left), place, "--yes")
    assert done.returncode in (1, 2), done.stderr
    assert f"bad port in '{place}'" in done.stderr, done.stderr
    assert "unexpectedly" not in done.stderr and "a whole number" in done.stderr


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:99999", "127.0.0.1:9000"])
def test_an_s3_endpoint_that_is_not_a_url_is_a_clear_error(pair, endpoint) -> None:
    left, _ = pair
    done = accord(
        "sync", str(left), "s3://bucket/p", "--endpoint-url", endpoint, "--yes",
        env={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"},
    )  # fmt: skip
    assert done.returncode in (1, 2), done.stderr
    assert f"cannot use the S3 endpoint '{endpoint}'" in done.stderr, done.stderr
    assert "unexpectedly" not in done.stderr


def test_a_plans_url_to_open_keeps_the_options_not_a_password() -> None:
    from accord.registry import reopen_url

    shown = "sftp://u@h:22/srv"
    typed = "sftp://u:secret@h:22/srv?identity=/k&known_hosts=/kh"
    assert reopen_url(typed, shown) == "sftp://u@h:22/srv?identity=/k&known_hosts=/kh"
    assert reopen_url("sftp://:pw@h/srv", shown) == "sftp://h/srv"
    assert reopen_url("sftp://u@[::1]:2/x?agent=off", shown).endswith("?agent=off")
    assert reopen_url("docs", "/abs/docs") == "/abs/docs"  # a local folder
    assert reopen_url("file:///abs/docs", "/abs/docs") == "/abs/docs"
    assert reopen_url(None, "s3://b/p") == "s3://b/p"  # opened from an object


# -- 4. --older-than ------------------------------------------------------------
@pytest.mark.parametrize("days", ["nan", "inf", "-inf", "-1", "abc", "", "1e400"])
def test_trash_purge_older_than_must_be_a_number_of_days(trashed, days) -> None:
    done = accord("trash", "purge", str(trashed), "--older-than", days, "--yes")
    assert done.returncode == 2, done.stderr
    assert "is not a number of days" in done.stderr and "e.g. 7" in done.stderr
    assert "a.txt" in accord("trash", "list", str(trashed)).stdout


def test_trash_purge_older_than_accepts_days(trashed) -> None:
    kept = accord("trash", "purge", str(trashed), "--older-than", "0.5", "--yes")
    assert kept.returncode == 0 and "nothing to purge" in kept.stdout
    time.sleep(1.1)  # run stamps count whole seconds
    done = accord("trash", "purge", str(trashed), "--older-than", "0", "--yes")
    assert done.returncode == 0, done.stderr
    assert "a.txt" not in accord("trash", "list", str(trashed)).stdout


# -- 5. each skipped item is reported once -----------------------------------
def test_a_skipped_item_is_reported_once(pair, tmp_path) -> None:
    left, right = pair
    (left / "a.txt").write_text("a edited\n")
    plan = tmp_path / "plan.json"
    accord("plan", str(left), str(right), "-o", str(plan), "-q")
    (left / "a.txt").write_text("edited again, behind accord's back\n")
    done = accord("apply", str(plan), "--yes")
    assert done.returncode == 3, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert output.count("skipped: ") == 1, output
    assert "1 skipped" in done.stdout


# -- 6. a reader that goes away ---------------------------------------------------
def test_a_closed_stdout_ends_quietly(tmp_path) -> None:
    left = tmp_path / "left"
    left.mkdir()
    for n in range(3000):  # more than a pipe holds
        (left / f"a-file-with-a-long-enough-name-{n}.txt").write_text("x")
    command = (
        f"set -o pipefail; {sys.executable} -m accord status "
        f"'{left}' '{tmp_path / 'right'}' | head -1"
    )
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.startswith("left:")
    assert done.stderr == ""
    assert done.returncode == 141


# -- 7. a guard question with no terminal ------------------------------------
@pytest.fixture
def mass_deletion(tmp_path: Path) -> tuple[Path, Path]:
    left, right = tmp_path / "left", tmp_path / "right"
    left.mkdir()
    (left / "kept.txt").write_text("a side that is not empty\n")
    for n in range(30):
        (left / f"f{n}").write_text("x")
    assert accord("sync", str(left), str(right), "-y", "-q").returncode == 0
    for n in range(30):
        (left / f"f{n}").unlink()
    return left, right


def test_guard_question_without_a_terminal_needs_a_human(mass_deletion) -> None:
    left, right = mass_deletion
    args = ("sync", str(left), str(right), "--max-delete", "10")
    asked = accord(*args)
    assert asked.returncode == 5, asked.stderr
    assert "needs a decision" in asked.stderr and "hint:" in asked.stderr
    assert len(list(right.glob("f*"))) == 30
    stopped = accord(*args, "--yes")
    assert stopped.returncode == 4 and "stopped by a guard" in stopped.stderr
    assert len(list(right.glob("f*"))) == 30


# -- 8. guard limits ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--max-delete", "abc"),
        ("--max-delete", "150%"),
        ("--max-delete", "-1"),
        ("--max-delete", "1.5"),
        ("--max-delete-percent", "150"),
        ("--max-delete-percent", "150%"),
        ("--max-delete-percent", "-5"),
        ("--max-delete-percent", "nan"),
        ("--max-delete-percent", "x"),
    ],
)
def test_bad_guard_limits_are_usage_errors(pair, option, value) -> None:
    left, right = pair
    done = accord("sync", str(left), str(right), "--yes", option, value)
    assert done.returncode == 2, done.stderr
    assert "give a" in done.stderr and "e.g." in done.stderr


def test_guard_limits_accept_their_forms(pair) -> None:
    left, right = pair
    args = ("sync", str(left), str(right), "--yes", "-q")
    assert accord(*args, "--max-delete", "0").returncode == 0
    assert accord(*args, "--max-delete-percent", "12.5%").returncode == 0


# -- 9. a lock with no readable owner ---------------------------------------------
def test_an_empty_lock_is_stale_after_a_grace(pair) -> None:
    left, right = pair
    (left / ".accord" / "lock").write_bytes(b"")
    (left / "new.txt").write_text("new\n")
    done = accord("sync", str(left), str(right), "--yes")
    assert done.returncode == 0, done.stderr
    assert "no readable owner" in done.stderr
    assert (right / "new.txt").exists()
    assert not (left / ".accord" / "lock").exists()


def test_a_lock_written_during_the_grace_is_respected(pair, monkeypatch) -> None:
    left, _ = pair
    path = left / ".accord" / "lock"
    path.write_bytes(b"")

    def its_run_writes_it(seconds: float) -> None:
        path.write_text(
            json.dumps(
                {
                    "who": "someone",
                    "host": socket.gethostname(),
                    "pid": os.getppid(),  # a live process, not this one
                    "since": time.time(),
                    "run": "r",
                }
            )
        )

    monkeypatch.setattr(lock.time, "sleep", its_run_writes_it)
    replica = open_replica(str(left))
    replica.open()
    try:
        with pytest.raises(lock.LockHeld, match="busy: locked by someone"):
            lock.acquire(replica, lock.LockInfo.mine("me", "mine"))
    finally:
        replica.close()
    assert "someone" in path.read_text()


def test_a_lock_this_process_left_behind_is_taken_over(pair) -> None:
    """A long-lived process (``accord watch``) whose run could not remove its
    lock (the place went away mid-run) takes it over at its next run; a lock
    another run of the same process holds now is still respected."""
    left, _ = pair
    replica = open_replica(str(left))
    replica.open()
    try:
        first = lock.LockInfo.mine("me", "first")
        lock.acquire(replica, first)
        with pytest.raises(lock.LockHeld, match="busy: locked by me"):
            lock.acquire(replica, lock.LockInfo.mine("me", "other"))  # held now
        lock._HELD.discard((first.run, replica.url))  # its release failed
        notices = lock.acquire(replica, lock.LockInfo.mine("me", "second"))
        assert any("removed a stale lock" in n for n in notices)
        assert json.loads((left / ".accord" / "lock").read_text())["run"] == "second"
        lock.release(replica, lock.LockInfo.mine("me", "second"))
    finally:
        replica.close()


# -- 10. reset and a live lock ----------------------------------------------------
def test_reset_refuses_while_a_run_holds_the_lock(pair) -> None:
    left, right = pair
    (right / ".accord" / "lock").write_text(
        json.dumps(
            {
                "who": "someone@here",
                "host": socket.gethostname(),
                "pid": os.getpid(),  # this test process is alive
                "since": time.time(),
                "run": "20260101T000000Z-abcdef",
            }
        )
    )
    for extra in ((), ("--places",)):
        busy = accord("reset", str(left), str(right), "--yes", *extra)
        assert busy.returncode == 1, busy.stderr
        assert "is busy: locked by someone@here" in busy.stderr
        assert "--break-lock" in busy.stderr
        assert (right / ".accord").exists()
    assert "first sync" not in accord("sync", str(left), str(right), "-n").stdout
    broken = accord("reset", str(left), str(right), "--yes", "--break-lock")
    assert broken.returncode == 0, broken.stderr
    assert not (right / ".accord" / "lock").exists()
    assert not (left / ".accord" / "lock").exists()
    assert "first sync" in accord("sync", str(left), str(right), "-n").stdout


# -- help ---------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["list", "restore", "purge"])
def test_trash_commands_show_examples(command) -> None:
    done = accord("trash", command, "--help")
    assert done.returncode == 0
    assert f"  accord trash {command} ~/notes" in done.stdout


# -- 11. an archive that cannot be opened is not one to throw away ---------------
def _archive_of_the_pair() -> Path:
    (found,) = Path(os.environ["ACCORD_STATE_DIR"]).glob("pairs/*.db")
    return found


def test_an_archive_that_cannot_be_opened_is_kept_and_reset_not_advised(pair) -> None:
    """No free inodes, no permission, a folder in its place: sqlite cannot
    open the archive, but the archive itself may be whole. The hint must not
    send the user to ``accord reset``, which would throw it away."""
    left, right = pair
    archive = _archive_of_the_pair()
    aside = archive.with_suffix(".aside")
    for extra in archive.parent.glob(archive.name + "-*"):
        extra.unlink()  # the WAL was checkpointed when the run closed it
    archive.rename(aside)
    archive.mkdir()  # what sqlite meets: it cannot open this as a file
    (left / "new.txt").write_text("new\n")
    done = accord("sync", str(left), str(right), "--yes")
    assert done.returncode != 0
    assert "cannot open the archive" in done.stderr
    assert "accord reset" not in done.stderr
    assert "df -i" in done.stderr
    assert not (right / "new.txt").exists()
    archive.rmdir()
    aside.rename(archive)
    again = accord("sync", str(left), str(right), "--yes", "-q")
    assert again.returncode == 0, again.stderr
    assert (right / "new.txt").read_text() == "new\n"


def test_an_archive_that_is_not_a_database_advises_reset(pair) -> None:
    left, right = pair
    archive = _archive_of_the_pair()
    for extra in archive.parent.glob(archive.name + "-*"):
        extra.unlink()
    archive.write_bytes(b"this is not a database, " * 100)
    done = accord("sync", str(left), str(right), "--yes")
    assert done.returncode != 0
    assert "cannot read the archive" in done.stderr
    assert "accord reset" in done.stderr
