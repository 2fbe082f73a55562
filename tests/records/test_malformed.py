"""A malformed source never writes: a short row, a long row, an open quote,
bad bytes, a bad value. Each is refused with its file, line and column, and
no target changes, in a real PostgreSQL table and a real slapd directory."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from accord.errors import BadData, ConfigError, Unreachable
from accord.records import apply_plan, load_mapping, make_plan

sqlalchemy = pytest.importorskip("sqlalchemy")

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
HEADER = "student_id,first_name,last_name,class,email\n"
ROSTER = HEADER + (
    "S1030,Niklaus,Kuhn,6A,niklaus.kuhn1030@school.example\n"
    "S1031,Margaret,Wirth,6B,margaret.wirth1031@school.example\n"
    "S1032,Edsger,Hoare,6B,edsger.hoare1032@school.example\n"
)


@pytest.fixture
def pg_table():
    """A students table in the shared PostgreSQL, under a name of its own."""
    table = f"students_{uuid.uuid4().hex[:10]}"
    engine = sqlalchemy.create_engine(PG)
    try:
        with engine.begin() as conn:
            conn.execute(
                sqlalchemy.text(
                    f"CREATE TABLE {table} (student_id VARCHAR(10) PRIMARY KEY,"
                    " first_name VARCHAR(50), last_name VARCHAR(50),"
                    " class VARCHAR(10), email VARCHAR(100))"
                )
            )
    except sqlalchemy.exc.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable: {exc}")
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    yield table
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"DROP TABLE {table}"))
    engine.dispose()


@pytest.fixture
def ldap_ou(slapd, monkeypatch):
    ou_name = f"roster-{uuid.uuid4().hex[:8]}"
    ou = f"ou={ou_name},{slapd.base}"
    conn = slapd.connection()
    assert conn.add(ou, ["organizationalUnit"], {"ou": ou_name})
    monkeypatch.setenv("ROSTER_LDAP_PASSWORD", slapd.password)
    yield ou, conn
    conn.search(ou, "(objectClass=inetOrgPerson)", attributes=["uid"])
    for entry in list(conn.entries):
        conn.delete(entry.entry_dn)
    conn.delete(ou)
    conn.unbind()


def roster_mapping(folder: Path, table: str, slapd, ou: str) -> Path:
    path = folder / "roster.toml"
    path.write_text(f'''
[entities.students]
key = ["student_id"]
fields = ["student_id", "first_name", "last_name", "class", "email"]

[entities.students.source]
url = "csv://roster.csv"

[[entities.students.targets]]
url = "{PG}"
table = "{table}"

[[entities.students.targets]]
url = "{slapd.url}"
base = "{ou}"
rdn = "uid"
object_classes = ["inetOrgPerson"]
bind_dn = "{slapd.bind_dn}"
password_env = "ROSTER_LDAP_PASSWORD"
computed = {{ cn = "{{first_name}} {{last_name}}" }}

[entities.students.targets.columns]
student_id = "uid"
first_name = "givenName"
last_name = "sn"
class = "departmentNumber"
email = "mail"
''')
    return path


def table_rows(table: str) -> dict[str, tuple]:
    engine = sqlalchemy.create_engine(PG)
    with engine.connect() as conn:
        found = {
            row[0]: tuple(row[1:])
            for row in conn.execute(sqlalchemy.text(f"SELECT * FROM {table}"))
        }
    engine.dispose()
    return found


def directory(conn, ou: str) -> dict[str, tuple]:
    conn.search(
        ou,
        "(objectClass=inetOrgPerson)",
        attributes=["uid", "givenName", "sn", "departmentNumber", "mail"],
    )
    return {
        e.uid.value: (
            e.givenName.value,
            e.sn.value,
            e.departmentNumber.value,
            e.mail.value,
        )
        for e in conn.entries
    }


def test_a_short_row_never_erases_an_email(
    pg_table, ldap_ou, slapd, tmp_path: Path
) -> None:
    """The roster's row ``S1031,Margaret,Wirth,6B`` lost its last field.
    Before, it was read as an empty email: the email was set to NULL in
    PostgreSQL and ``mail`` deleted from the directory entry."""
    ou, conn = ldap_ou
    mapping = roster_mapping(tmp_path, pg_table, slapd, ou)
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    assert apply_plan(make_plan(load_mapping(mapping))).ok
    before_sql, before_ldap = table_rows(pg_table), directory(conn, ou)
    assert before_sql["S1031"][3] == "margaret.wirth1031@school.example"
    assert before_ldap["S1031"][3] == "margaret.wirth1031@school.example"

    roster.write_text(
        ROSTER.replace("6B,margaret.wirth1031@school.example", "6B").replace(
            "Edsger,Hoare,6B", "Edsger,Hoare,7C"
        )
    )
    with pytest.raises(BadData) as caught:
        make_plan(load_mapping(mapping))
    message = caught.value.message
    assert f"{roster}:3: column 5 ('email'): missing" in message
    assert "the row has 4 fields, the header 5" in message
    assert "nothing was written" in message
    assert table_rows(pg_table) == before_sql
    assert directory(conn, ou) == before_ldap

    # the command line says the same, exits 1, and writes nothing either
    done = subprocess.run(
        [sys.executable, "-m", "accord", "records", "sync", str(mapping), "--yes"],
        capture_output=True,
        text=True,
        env={**os.environ, "ROSTER_LDAP_PASSWORD": slapd.password},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "roster.csv:3: column 5 ('email'): missing" in done.stderr
    assert "Traceback" not in done.stderr
    assert table_rows(pg_table) == before_sql
    assert directory(conn, ou) == before_ldap

    # an explicit empty field is an empty value: the email goes, as asked
    roster.write_text(ROSTER.replace("6B,margaret.wirth1031@school.example", "6B,"))
    assert apply_plan(make_plan(load_mapping(mapping))).ok
    assert table_rows(pg_table)["S1031"][3] is None
    assert directory(conn, ou)["S1031"][3] is None


BROKEN = {
    "long row": (
        ROSTER.replace("6A,niklaus", "6A,extra,niklaus"),
        ":2: column 6: one field too many",
    ),
    "open quote": (
        ROSTER.replace(",Wirth,", ',"Wirth,'),
        ":3: column 3: the quote at character 16 is never closed",
    ),
    "text after a closing quote": (
        ROSTER.replace(",Wirth,", ',"Wir"th,'),
        ":3: column 3: text after the closing quote at character 20",
    ),
    "bad value": (
        ROSTER.replace("S1032,", ",", 1),
        ":4: no value for the key student_id",
    ),
    "duplicate header": (
        ROSTER.replace("class,email", "class,class,email")
        .replace("6A,", "6A,6A,")
        .replace("6B,", "6B,6B,"),
        ":1: column 5: the header names 'class' twice (first in column 4)",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_malformed_roster_writes_nothing(
    case: str, pg_table, ldap_ou, slapd, tmp_path: Path
) -> None:
    ou, conn = ldap_ou
    mapping = roster_mapping(tmp_path, pg_table, slapd, ou)
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    assert apply_plan(make_plan(load_mapping(mapping))).ok
    before_sql, before_ldap = table_rows(pg_table), directory(conn, ou)
    text, expected = BROKEN[case]
    roster.write_text(text.replace("Kuhn,6A", "Kuhn,5A"))
    with pytest.raises(BadData) as caught:
        make_plan(load_mapping(mapping))
    assert f"{roster}{expected}" in caught.value.message
    assert table_rows(pg_table) == before_sql
    assert directory(conn, ou) == before_ldap


def _people_mapping(folder: Path, target: str, more: str = 'table = "t"') -> Path:
    """``m.toml``: people.csv (id, name) into ``target`` (the table ``t``
    of a database, unless ``more`` says otherwise)."""
    path = folder / "m.toml"
    path.write_text(f'''
[entities.people]
key = ["id"]
fields = ["id", "name"]
[entities.people.source]
url = "csv://people.csv"
[[entities.people.targets]]
url = "{target}"
{more}
''')
    return path


def test_bytes_that_are_not_the_declared_encoding(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'lms.db'}"
    engine = sqlalchemy.create_engine(db)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE t (id TEXT PRIMARY KEY, name TEXT)"))
    engine.dispose()
    _people_mapping(tmp_path, db)
    source = tmp_path / "people.csv"
    source.write_bytes("id,name\n1,Zoë\n2,Ren\xe9e\n".encode("latin-1"))
    with pytest.raises(BadData) as caught:
        make_plan(load_mapping(tmp_path / "m.toml"))
    assert f"{source}:2: byte 5 (0xeb) is not valid utf-8 text" in caught.value.message
    assert 'encoding = "latin-1"' in (caught.value.hint or "")
    (tmp_path / "m.toml").write_text(
        (tmp_path / "m.toml")
        .read_text()
        .replace(
            'url = "csv://people.csv"', 'url = "csv://people.csv"\nencoding = "latin-1"'
        )
    )
    assert apply_plan(make_plan(load_mapping(tmp_path / "m.toml"))).ok
    engine = sqlalchemy.create_engine(db)
    with engine.connect() as conn:
        names = sorted(
            r[0] for r in conn.execute(sqlalchemy.text("SELECT name FROM t"))
        )
    engine.dispose()
    assert names == ["Renée", "Zoë"]


def test_bad_data_counts_its_problems_in_words() -> None:
    one = BadData("people.csv", ["people.csv:2: column 4: missing"])
    assert one.message.startswith("people.csv: 1 problem in the data;")
    two = BadData("people.csv", ["a", "b"])
    assert two.message.startswith("people.csv: 2 problems in the data;")


def test_a_sqlite_target_that_is_not_there_is_named_and_not_made(
    tmp_path: Path,
) -> None:
    # connecting to a missing SQLite file makes it, empty: a typo in the
    # path left a new empty database behind and said "no table"
    db = tmp_path / "no-such.db"
    (tmp_path / "people.csv").write_text("id,name\n1,Ada\n")
    _people_mapping(tmp_path, f"sqlite:///{db}")
    with pytest.raises(ConfigError) as caught:
        make_plan(load_mapping(tmp_path / "m.toml"))
    assert f"no SQLite database at '{db}'" in caught.value.message
    assert not db.exists()
    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:  # the database, without the table
        conn.execute(sqlalchemy.text("CREATE TABLE other (id TEXT)"))
    engine.dispose()
    with pytest.raises(ConfigError) as caught:
        make_plan(load_mapping(tmp_path / "m.toml"))
    assert "no table 't'" in caught.value.message
    assert "create 't' (with the mapped columns id, name)" in (caught.value.hint or "")


def test_a_database_that_does_not_answer_is_told_in_its_own_words(
    tmp_path: Path,
) -> None:
    """The driver's one line, not SQLAlchemy's wrapping and its link."""
    (tmp_path / "people.csv").write_text("id,name\n1,Ada\n")
    _people_mapping(tmp_path, "postgresql://postgres@127.0.0.1:1/nothing")
    with pytest.raises(ConfigError) as caught:
        make_plan(load_mapping(tmp_path / "m.toml"))
    message = caught.value.message
    assert "port 1 failed: Connection refused" in message, message
    assert "\n" not in message and "sqlalche.me" not in message
    assert "the server runs" in (caught.value.hint or "")


def test_a_directory_that_does_not_answer_is_told_in_the_systems_words(
    tmp_path: Path, monkeypatch
) -> None:
    """ldap3 only quotes the system's error ("... [Errno 111] Connection
    refused"): accord says "Connection refused"."""
    (tmp_path / "people.csv").write_text("id,name\n1,Ada\n")
    directory = (
        'base = "ou=people,dc=example"\nrdn = "uid"\n'
        'object_classes = ["inetOrgPerson"]\nbind_dn = "cn=admin,dc=example"\n'
        'password_env = "ACCORD_TEST_LDAP_PW"\n'
        'columns = { id = "uid", name = "sn" }\ncomputed = { cn = "{name}" }'
    )
    _people_mapping(tmp_path, "ldap://127.0.0.1:1", directory)
    monkeypatch.setenv("ACCORD_TEST_LDAP_PW", "x")
    with pytest.raises(Unreachable) as caught:
        make_plan(load_mapping(tmp_path / "m.toml"))
    said = caught.value.message
    assert said.startswith("cannot reach ldap://127.0.0.1:1: Connection refused"), said


@pytest.mark.parametrize(("sep", "said"), [(";", '";"'), ("\t", '"\\t"'), ("|", '"|"')])
def test_a_file_separated_otherwise_is_told_its_delimiter(
    tmp_path: Path, sep: str, said: str
) -> None:
    """An export written with ";" (or a tab) read with ",": one problem that
    names the delimiter to set, not one per column."""
    (tmp_path / "people.csv").write_text(f"id{sep}name\n1{sep}Ada\n")
    _people_mapping(tmp_path, "csv://out.csv", "")
    with pytest.raises(BadData) as caught:
        make_plan(load_mapping(tmp_path / "m.toml"))
    (problem,) = caught.value.problems
    assert f"the file is separated by {sep!r}, not ','" in problem
    assert f"delimiter = {said}" in (caught.value.hint or "")


@pytest.mark.parametrize("text", ["", "\n"])
def test_a_source_without_a_header_is_one_problem(tmp_path: Path, text: str) -> None:
    (tmp_path / "people.csv").write_text(text)
    _people_mapping(tmp_path, "csv://out.csv", "")
    with pytest.raises(BadData) as caught:
        make_plan(load_mapping(tmp_path / "m.toml"))
    (problem,) = caught.value.problems
    assert problem.endswith(":1: no header: the first line names no column")
    assert "(id, name)" in (caught.value.hint or "")
    assert not (tmp_path / "out.csv").exists()


def test_a_jsonl_object_missing_a_field_is_refused(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text(
        '{"id": 1, "name": "Ada"}\n{"id": 2}\n{"id": 3, "name": null}\n'
    )
    target = tmp_path / "out.csv"
    target.write_text("id,name\n2,Alan\n")
    (tmp_path / "m.toml").write_text(f"""
[entities.people]
key = ["id"]
fields = ["id", "name"]
types = {{ id = "int" }}
[entities.people.source]
url = "jsonl://{tmp_path / "in.jsonl"}"
[[entities.people.targets]]
url = "csv://{target}"
""")
    with pytest.raises(BadData) as caught:
        make_plan(load_mapping(tmp_path / "m.toml"))
    assert "in.jsonl:2: no 'name' (a missing field is not an empty value" in (
        caught.value.message
    )
    assert target.read_text() == "id,name\n2,Alan\n"


def test_attributes_the_directory_refuses_are_found_before_writing(
    pg_table, ldap_ou, slapd, tmp_path: Path
) -> None:
    ou, conn = ldap_ou
    mapping = roster_mapping(tmp_path, pg_table, slapd, ou)
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    text = mapping.read_text()
    cases = {
        'class = "departmentNumber"': (
            'class = "classOfStudent"',
            "field class: the directory has no attribute 'classOfStudent'",
        ),
        'last_name = "sn"': (
            'last_name = "dc"',
            "entries of person need the attribute 'sn'",
        ),
        'email = "mail"': (
            'email = "associatedDomain"',
            "field email: attribute 'associatedDomain' is not allowed in entries "
            "of inetOrgPerson",
        ),
    }
    for old, (new, expected) in cases.items():
        mapping.write_text(text.replace(old, new))
        with pytest.raises(BadData) as caught:
            make_plan(load_mapping(mapping))
        assert expected in caught.value.message
    assert table_rows(pg_table) == {} and directory(conn, ou) == {}
    # a value the attribute's syntax refuses (mail is ASCII only)
    mapping.write_text(text)
    roster.write_text(ROSTER.replace("edsger.hoare", "edsgér.hoare"))
    with pytest.raises(BadData) as caught:
        make_plan(load_mapping(mapping))
    assert "S1032: field email: 'edsgér.hoare1032@school.example' is not ASCII" in (
        caught.value.message
    )
    assert table_rows(pg_table) == {} and directory(conn, ou) == {}


def test_values_a_table_refuses_are_found_before_writing(
    pg_table, ldap_ou, slapd, tmp_path: Path
) -> None:
    ou, conn = ldap_ou
    mapping = roster_mapping(tmp_path, pg_table, slapd, ou)
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER.replace("6B,edsger", "a class name far too long,edsger"))
    with pytest.raises(BadData) as caught:
        make_plan(load_mapping(mapping))
    assert (
        "S1032: field class: 25 characters, and column 'class' holds at most 10"
        in caught.value.message
    )
    mapping.write_text(
        mapping.read_text().replace(
            'fields = ["student_id", "first_name", "last_name", "class", "email"]',
            'fields = ["student_id", "first_name", "last_name", "class", "email",'
            ' "nickname"]',
        )
    )
    roster.write_text(
        ROSTER.replace("email\n", "email,nickname\n").replace("example\n", "example,\n")
    )
    with pytest.raises(BadData) as caught:
        make_plan(load_mapping(mapping))
    assert "the table has no column 'nickname'" in caught.value.message
    assert table_rows(pg_table) == {} and directory(conn, ou) == {}
