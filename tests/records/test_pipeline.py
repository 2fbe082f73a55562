"""Records through the engine, as files go: a saved plan applied later with
stale actions skipped, a run killed at every journal step resuming without
loss, ``accord log``, the trash (a deleted directory entry restored), and
the same guards."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy")

HEADER = "id,name,room\n"
PEOPLE = HEADER + "".join(f"{i},Person {i},R{i % 7}\n" for i in range(1, 41))


def mapping(folder: Path) -> Path:
    db = folder / "lms.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, room TEXT)"
        )
    path = folder / "m.toml"
    path.write_text(f"""
[entities.people]
key = ["id"]
fields = ["id", "name", "room"]
types = {{ id = "int" }}
[entities.people.source]
url = "csv://people.csv"
[[entities.people.targets]]
name = "lms"
url = "sqlite:///{db}"
table = "people"
""")
    (folder / "people.csv").write_text(PEOPLE)
    return path


def table(folder: Path) -> dict[int, tuple]:
    with sqlite3.connect(folder / "lms.db") as conn:
        return {r[0]: r[1:] for r in conn.execute("SELECT * FROM people")}


def accord(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "accord", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        **kw,
    )


def test_a_saved_plan_is_applied_later_and_skips_what_changed(tmp_path) -> None:
    m = mapping(tmp_path)
    assert accord("records", "sync", str(m), "--yes").returncode == 0
    (tmp_path / "people.csv").write_text(
        PEOPLE.replace("3,Person 3,R3", "3,Person 3,Z9").replace(
            "4,Person 4,R4", "4,Person 4,Z8"
        )
    )
    plan = tmp_path / "plan.json"
    made = accord("records", "plan", str(m), "-o", str(plan))
    assert made.returncode == 6, made.stderr
    assert "~ 3" in made.stdout and "room: 'R3' -> 'Z9'" in made.stdout
    with sqlite3.connect(tmp_path / "lms.db") as conn:
        conn.execute("UPDATE people SET room = 'Q1' WHERE id = 4")
    done = accord("apply", str(plan), "--yes")
    assert done.returncode == 3, done.stdout + done.stderr  # one skipped
    assert "Traceback" not in done.stderr
    rows = table(tmp_path)
    assert rows[3] == ("Person 3", "Z9"), "the planned change was applied"
    assert rows[4] == ("Person 4", "Q1"), "a record changed since the plan is left"
    log = accord("log", f"records://{m}#people/lms/source", f"records://{m}#people/lms")
    assert log.returncode == 0, log.stderr
    assert "records sync" in log.stdout and "apply" in log.stdout


@pytest.mark.slow
def test_a_run_killed_at_any_step_resumes_and_loses_nothing(
    tmp_path, monkeypatch
) -> None:
    m = mapping(tmp_path)
    small = HEADER + "".join(f"{i},Person {i},R{i % 7}\n" for i in range(1, 9))
    (tmp_path / "people.csv").write_text(small)
    assert accord("records", "sync", str(m), "--yes").returncode == 0
    changed = small.replace(",R1\n", ",R11\n").replace(",R2\n", ",NEW\n")
    changed = "\n".join(
        line for line in changed.splitlines() if not line.startswith("5,")
    )
    (tmp_path / "people.csv").write_text(changed + "\n41,Person 41,R0\n")
    expected = None
    step = 1
    while True:
        killed = accord(
            "records", "sync", str(m), "--yes", env={"ACCORD_KILL_AT_STEP": str(step)}
        )
        if killed.returncode == 0:
            break  # the run finished before that step: all steps were tried
        assert killed.returncode == -9, killed.stderr
        done = accord("records", "sync", str(m), "--yes")
        assert done.returncode == 0, done.stderr
        rows = table(tmp_path)
        if expected is None:
            expected = rows
        assert rows == expected, f"killed at step {step}"
        assert accord("records", "plan", str(m)).returncode == 0, "nothing left to do"
        # back to the state before the run, for the next step
        with sqlite3.connect(tmp_path / "lms.db") as conn:
            conn.execute("DELETE FROM people")
        monkeypatch.setenv("ACCORD_STATE_DIR", str(tmp_path / f"state-{step}"))
        (tmp_path / "people.csv").write_text(small)
        assert accord("records", "sync", str(m), "--yes").returncode == 0
        (tmp_path / "people.csv").write_text(changed + "\n41,Person 41,R0\n")
        step += 1
    assert step > 3
    assert 5 not in expected and expected[41] == ("Person 41", "R0")
    assert expected[1] == ("Person 1", "R11") and expected[2] == ("Person 2", "NEW")


def test_guards_are_the_engines(tmp_path) -> None:
    m = mapping(tmp_path)
    assert accord("records", "sync", str(m), "--yes").returncode == 0
    (tmp_path / "people.csv").write_text(HEADER + "1,Person 1,R1\n")
    refused = accord("records", "sync", str(m), "--yes")
    assert refused.returncode == 4, refused.stderr
    assert "this would delete 39 of 40 items (98%) on the right side" in refused.stderr
    assert len(table(tmp_path)) == 40
    (tmp_path / "people.csv").write_text(HEADER)
    empty = accord("records", "sync", str(m), "--yes")
    assert empty.returncode == 4
    assert "is empty, but it held 40 items at the last sync" in empty.stderr
    assert accord("records", "sync", str(m), "--yes", "--no-delete").returncode == 0
    assert len(table(tmp_path)) == 40


def test_a_deleted_directory_entry_is_restored_from_the_trash(
    slapd, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("TRASH_LDAP_PASSWORD", slapd.password)
    with slapd.new_ou("trash") as (ou, conn):
        m = tmp_path / "m.toml"
        m.write_text(f'''
[entities.people]
key = ["id"]
fields = ["id", "first", "last", "mail"]
[entities.people.source]
url = "csv://people.csv"
[[entities.people.targets]]
name = "directory"
url = "{slapd.url}"
base = "{ou}"
rdn = "uid"
object_classes = ["inetOrgPerson"]
bind_dn = "{slapd.bind_dn}"
password_env = "TRASH_LDAP_PASSWORD"
computed = {{ cn = "{{first}} {{last}}" }}
[entities.people.targets.columns]
id = "uid"
first = "givenName"
last = "sn"
mail = "mail"
        ''')
        rows = "id,first,last,mail\n" + "".join(
            f"u{i},First{i},Last{i},u{i}@school.example\n" for i in range(1, 6)
        )
        (tmp_path / "people.csv").write_text(rows)
        assert accord("records", "sync", str(m), "--yes").returncode == 0
        (tmp_path / "people.csv").write_text(
            rows.replace("u3,First3,Last3,u3@school.example\n", "")
        )
        done = accord("records", "sync", str(m), "--yes")
        assert done.returncode == 0, done.stderr
        assert not conn.search(ou, "(uid=u3)", attributes=["mail"])
        place = f"records://{m}#people/directory"
        listed = accord("trash", "list", place)
        assert listed.returncode == 0, listed.stderr
        assert "u3" in listed.stdout
        restored = accord("trash", "restore", place, "u3")
        assert restored.returncode == 0, restored.stderr
        # the size the trash listed, not the 0 B of a record's entry
        size = " ".join(listed.stdout.split("u3")[0].split()[-2:])
        assert size != "0 B" and f"restored u3 ({size}) from run" in restored.stdout
        assert conn.search(ou, "(uid=u3)", attributes=["mail", "cn"])
        assert conn.entries[0].mail.value == "u3@school.example"
        assert conn.entries[0].cn.value == "First3 Last3"
