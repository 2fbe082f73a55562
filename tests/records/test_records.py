"""Records: a school's CSV into SQL tables (SQLite, PostgreSQL, MariaDB)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from accord.errors import ConfigError, SafetyLimitExceeded
from accord.records import apply_plan, load_mapping, make_plan
from accord.records.places import DataError

sqlalchemy = pytest.importorskip("sqlalchemy")

HEADER = "ID,First name,Last name,Class,Born,Active\n"
ROUND_1 = HEADER + (
    "1,Ada,Lovelace,5A,2014-12-10,yes\n"
    "2,Alan,Turing,5B,2014-06-23,yes\n"
    "3,Grace,Hopper,5A,2014-12-09,yes\n"
)


def database_urls() -> list[str]:
    return ["sqlite", "postgresql", "mariadb"]


@pytest.fixture(params=database_urls())
def database(request, tmp_path: Path) -> str:
    """An empty users table in a real database; its SQLAlchemy URL."""
    kind = request.param
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'lms.db'}"
    elif kind == "postgresql":
        url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    else:
        url = "mysql+pymysql://root@127.0.0.1:3306/test"
    table = f"users_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sqlalchemy.text(
                    f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, first VARCHAR(50),"
                    " last VARCHAR(50), class VARCHAR(10), born DATE, active BOOLEAN,"
                    " email VARCHAR(100), nickname VARCHAR(50))"
                )
            )
    except sqlalchemy.exc.OperationalError as exc:
        message = f"{kind} is not reachable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    yield f"{url}#{table}"
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"DROP TABLE {table}"))
    engine.dispose()


def users_table(folder: Path) -> str:
    """A SQLite database with an empty users table; its URL."""
    db = f"sqlite:///{folder / 'lms.db'}"
    engine = sqlalchemy.create_engine(db)
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text(
                "CREATE TABLE users (id INTEGER PRIMARY KEY, first TEXT, last TEXT,"
                " class TEXT, born DATE, active BOOLEAN, email TEXT)"
            )
        )
    engine.dispose()
    return db


def write_mapping(folder: Path, database: str) -> Path:
    url, table = database.split("#")
    path = folder / "mapping.toml"
    path.write_text(f'''
[entities.students]
key = ["student_id"]
fields = ["student_id", "first_name", "last_name", "class", "born", "active"]
types = {{ student_id = "int", born = "date", active = "bool" }}

[entities.students.source]
url = "csv://students.csv"

[entities.students.source.columns]
student_id = "ID"
first_name = "First name"
last_name = "Last name"
class = "Class"
born = "Born"
active = "Active"

[[entities.students.targets]]
url = "{url}"
table = "{table}"
columns = {{ student_id = "id", first_name = "first", last_name = "last" }}
computed = {{ email = "{{first_name}}.{{last_name}}@school.example" }}
rules = {{ email = "on_create" }}
''')
    return path


def rows(database: str) -> dict[int, tuple]:
    url, table = database.split("#")
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        result = conn.execute(
            sqlalchemy.text(
                f"SELECT id, first, last, class, born, active, email FROM {table}"
            )
        )
        found = {row[0]: tuple(row[1:]) for row in result}
    engine.dispose()
    return found


def sync(mapping: Path, **options) -> object:
    return apply_plan(make_plan(load_mapping(mapping), **options))


def test_three_rounds_of_the_school_csv(database: str, tmp_path: Path) -> None:
    (tmp_path / "students.csv").write_text(ROUND_1)
    mapping = write_mapping(tmp_path, database)
    report = sync(mapping)
    assert report.ok
    got = rows(database)
    assert set(got) == {1, 2, 3}
    assert got[1][0:3] == ("Ada", "Lovelace", "5A")
    assert got[1][5] == "Ada.Lovelace@school.example"
    # round 2: a new student, a changed class
    (tmp_path / "students.csv").write_text(
        ROUND_1.replace("2,Alan,Turing,5B", "2,Alan,Turing,6B")
        + "4,Katherine,Johnson,5B,2014-08-26,yes\n"
    )
    plan = make_plan(load_mapping(mapping)).plan
    updates = [a for a in plan.actions if a.op == "update"]
    assert [(a.key, a.changes()) for a in updates] == [((2,), [("class", "5B", "6B")])]
    assert sync(mapping).ok
    got = rows(database)
    assert got[2][2] == "6B" and 4 in got
    # round 3: a student left
    (tmp_path / "students.csv").write_text(
        HEADER + "1,Ada,Lovelace,5A,2014-12-10,yes\n2,Alan,Turing,6B,2014-06-23,yes\n"
        "4,Katherine,Johnson,5B,2014-08-26,yes\n"
    )
    assert sync(mapping).ok
    assert set(rows(database)) == {1, 2, 4}
    assert make_plan(load_mapping(mapping)).plan.is_empty


def test_a_row_changed_behind_our_back_is_not_overwritten(database, tmp_path) -> None:
    (tmp_path / "students.csv").write_text(ROUND_1)
    mapping = write_mapping(tmp_path, database)
    sync(mapping)
    (tmp_path / "students.csv").write_text(ROUND_1.replace("5B", "6B"))
    prepared = make_plan(load_mapping(mapping))
    url, table = database.split("#")
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"UPDATE {table} SET class = '7C' WHERE id = 2"))
    engine.dispose()
    report = apply_plan(prepared)
    assert [a.key for a, _ in report.skipped] == [(2,)]
    assert rows(database)[2][2] == "7C"


def test_bad_data_is_reported_and_nothing_is_written(tmp_path: Path) -> None:
    db = users_table(tmp_path)
    mapping = write_mapping(tmp_path, f"{db}#users")
    (tmp_path / "students.csv").write_text(
        HEADER + "1,Ada,Lovelace,5A,2014-12-10,yes\n1,Alan,Turing,5B,2014-06-23,yes\n"
        ",Grace,Hopper,5A,2014-12-09,yes\n4,Kat,J,5B,not-a-date,maybe\n"
    )
    with pytest.raises(DataError) as caught:
        make_plan(load_mapping(mapping))
    text = caught.value.message
    assert "students.csv:3: duplicate key (1,) (first at" in text
    assert "students.csv:4: no value for the key" in text
    assert "not a date" in text and "not a yes/no value" in text
    assert rows(f"{db}#users") == {}


def test_an_empty_source_never_deletes_everything(tmp_path: Path) -> None:
    db = users_table(tmp_path)
    mapping = write_mapping(tmp_path, f"{db}#users")
    (tmp_path / "students.csv").write_text(ROUND_1)
    sync(mapping)
    (tmp_path / "students.csv").write_text(HEADER)
    with pytest.raises(SafetyLimitExceeded):
        sync(mapping)
    assert len(rows(f"{db}#users")) == 3
    assert sync(mapping, delete=False).ok


def test_mapping_errors_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text("[entities.x]\nfields = ['a']\n")
    with pytest.raises(ConfigError, match="has no key"):
        load_mapping(path)


def test_the_cli_plans_and_syncs(tmp_path: Path) -> None:
    db = users_table(tmp_path)
    mapping = write_mapping(tmp_path, f"{db}#users")
    (tmp_path / "students.csv").write_text(ROUND_1)
    run = [sys.executable, "-m", "accord", "records"]
    plan = subprocess.run([*run, "plan", str(mapping)], capture_output=True, text=True)
    assert plan.returncode == 6, plan.stderr
    assert "3 to create" in plan.stdout and "+ 1: " in plan.stdout
    refused = subprocess.run(
        [*run, "sync", str(mapping)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert refused.returncode == 5 and rows(f"{db}#users") == {}
    done = subprocess.run(
        [*run, "sync", str(mapping), "--yes"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert len(rows(f"{db}#users")) == 3
    again = subprocess.run([*run, "plan", str(mapping)], capture_output=True, text=True)
    assert again.returncode == 0
    assert "Traceback" not in plan.stderr + done.stderr + refused.stderr


def test_school_csv_into_sql_and_ldap(
    slapd, database: str, tmp_path: Path, monkeypatch
) -> None:
    """The school scenario: one CSV, a SQL table (SQLite, PostgreSQL, MariaDB)
    and the directory, three rounds of changes (new students, a changed
    class, a student who left)."""
    ou = f"ou=students-{uuid.uuid4().hex[:6]},{slapd.base}"
    conn = slapd.connection()
    assert conn.add(ou, ["organizationalUnit"], {"ou": ou.split(",")[0][3:]})
    monkeypatch.setenv("SCHOOL_LDAP_PASSWORD", slapd.password)
    mapping = write_mapping(tmp_path, database)
    mapping.write_text(
        mapping.read_text()
        + f'''
[[entities.students.targets]]
url = "{slapd.url}"
base = "{ou}"
rdn = "uid"
object_classes = ["inetOrgPerson"]
bind_dn = "{slapd.bind_dn}"
password_env = "SCHOOL_LDAP_PASSWORD"

[entities.students.targets.columns]
student_id = "uid"
first_name = "givenName"
last_name = "sn"
class = "departmentNumber"
born = "description"
active = "title"

[entities.students.targets.computed]
cn = "{{first_name}} {{last_name}}"
mail = "{{first_name}}.{{last_name}}@school.example"
'''
    )

    def directory() -> dict[str, tuple[str, str]]:
        conn.search(
            ou,
            "(objectClass=inetOrgPerson)",
            attributes=["uid", "departmentNumber", "mail"],
        )
        return {
            e.uid.value: (e.departmentNumber.value, e.mail.value) for e in conn.entries
        }

    (tmp_path / "students.csv").write_text(ROUND_1)
    assert sync(mapping).ok
    assert directory() == {
        "1": ("5A", "Ada.Lovelace@school.example"),
        "2": ("5B", "Alan.Turing@school.example"),
        "3": ("5A", "Grace.Hopper@school.example"),
    }
    (tmp_path / "students.csv").write_text(
        ROUND_1.replace("2,Alan,Turing,5B", "2,Alan,Turing,6B")
        + "4,Katherine,Johnson,5B,2014-08-26,yes\n"
    )
    assert sync(mapping).ok
    assert directory()["2"][0] == "6B" and "4" in directory()
    (tmp_path / "students.csv").write_text(
        HEADER + "1,Ada,Lovelace,5A,2014-12-10,yes\n2,Alan,Turing,6B,2014-06-23,yes\n"
        "4,Katherine,Johnson,5B,2014-08-26,yes\n"
    )
    assert sync(mapping).ok
    assert sorted(directory()) == ["1", "2", "4"]
    assert sorted(rows(database)) == [1, 2, 4]
    assert make_plan(load_mapping(mapping)).plan.is_empty
    # someone edits the directory behind our back: that record is left alone
    (tmp_path / "students.csv").write_text(
        HEADER + "1,Ada,Lovelace,7A,2014-12-10,yes\n2,Alan,Turing,6B,2014-06-23,yes\n"
        "4,Katherine,Johnson,5B,2014-08-26,yes\n"
    )
    prepared = make_plan(load_mapping(mapping))
    conn.modify(f"uid=1,{ou}", {"departmentNumber": [("MODIFY_REPLACE", ["9Z"])]})
    report = apply_plan(prepared)
    assert [a.key for a, _ in report.skipped] == [(1,)]
    assert directory()["1"][0] == "9Z"
    conn.unbind()


def test_handlers_are_called_before_or_instead_of_the_write(tmp_path: Path) -> None:
    db = users_table(tmp_path)
    (tmp_path / "hooks.py").write_text(
        "CALLS = []\n"
        "class Students:\n"
        "    def create(self, action):\n"
        "        CALLS.append(('create', action.key))\n"
        "        if action.key == (3,):\n"
        "            raise RuntimeError('mail server down')\n"
        "    def update(self, action):\n"
        "        CALLS.append(('update', action.key, action.changes()))\n"
        "    def delete(self, action):\n"
        "        CALLS.append(('delete', action.key))\n"
        "        return 'handled'\n"
        "    def failed(self, action, reason):\n"
        "        CALLS.append(('failed', action.key, reason))\n"
    )
    mapping = write_mapping(tmp_path, f"{db}#users")
    mapping.write_text(
        mapping.read_text().replace(
            "[entities.students]\n",
            '[entities.students]\nhandler = "hooks.py:Students"\n',
        )
    )
    (tmp_path / "students.csv").write_text(ROUND_1)
    prepared = make_plan(load_mapping(mapping))
    report = apply_plan(prepared)
    log = type(prepared.handlers["students"]).create.__globals__["CALLS"]
    assert ("create", (1,)) in log and ("create", (3,)) in log
    assert [a.key for a, _ in report.failed] == [(3,)]
    assert "mail server down" in report.failed[0][1]
    assert sorted(rows(f"{db}#users")) == [1, 2], "a failed record is not written"
    (tmp_path / "students.csv").write_text(
        HEADER + "1,Ada,Lovelace,6A,2014-12-10,yes\n3,Grace,Hopper,5A,2014-12-09,yes\n"
    )
    prepared = make_plan(load_mapping(mapping))
    report = apply_plan(prepared)
    assert report.handled == 1, "the deletion was done by the handler"
    assert [a.key for a, _ in report.failed] == [(3,)], "still failing, still reported"
    got = rows(f"{db}#users")
    assert sorted(got) == [1, 2], "the handler took the deletion over"
    assert got[1][2] == "6A", "the update went through after the handler ran"


def test_csv_into_a_jsonl_file(tmp_path: Path) -> None:
    (tmp_path / "students.csv").write_text(ROUND_1)
    target = tmp_path / "out.jsonl"
    target.write_text("")
    mapping = tmp_path / "m.toml"
    mapping.write_text(f"""
[entities.students]
key = ["student_id"]
fields = ["student_id", "first_name", "class", "born"]
types = {{ student_id = "int", born = "date" }}
[entities.students.source]
url = "csv://students.csv"
[entities.students.source.columns]
student_id = "ID"
first_name = "First name"
class = "Class"
born = "Born"
[[entities.students.targets]]
url = "jsonl://{target}"
""")
    assert sync(mapping).ok
    import json

    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert lines[0] == {
        "born": "2014-12-10",
        "class": "5A",
        "first_name": "Ada",
        "student_id": 1,
    }
    assert len(lines) == 3
    assert make_plan(load_mapping(mapping)).plan.is_empty


def test_a_refused_batch_writes_nothing_and_says_why(tmp_path: Path) -> None:
    from accord.errors import ReplicaError

    url = f"sqlite:///{tmp_path / 'strict.db'}"
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text(
                "CREATE TABLE users (id INTEGER PRIMARY KEY, first TEXT, last TEXT,"
                " class TEXT CHECK (class != '5B'), born DATE, active BOOLEAN,"
                " email TEXT)"
            )
        )
    engine.dispose()
    mapping = write_mapping(tmp_path, f"{url}#users")
    (tmp_path / "students.csv").write_text(ROUND_1)
    with pytest.raises(ReplicaError) as caught:
        sync(mapping)
    assert "refused the changes" in caught.value.message
    assert "rolled back" in (caught.value.hint or "")
    assert rows(f"{url}#users") == {}, "all or nothing for one table"
    report = apply_plan(make_plan(load_mapping(mapping)), keep_going=True)
    assert [a.key for a, _ in report.failed] == [(2,)], "the one refused record"
    assert "refused" in report.failed[0][1]
    assert sorted(rows(f"{url}#users")) == [1, 3], "the others were written"
