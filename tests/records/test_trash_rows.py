"""A row deleted from a target file is kept whole in the trash (the columns
the mapping does not name too), and a restore puts it back as the file
held it, where it was."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import ldap3
import pytest
import sqlalchemy

from accord.errors import ConfigError
from accord.records import apply_plan, load_mapping, make_plan
from accord.records.meta import PlaceStore
from accord.records.replica import RecordReplica, record_url
from accord.sqlurls import driver_url

ROWS = [("1", "Zoë", "VIP"), ("2", "Bob", '"owes 5;00"'), ("3", "Al", "")]


def mapping(folder: Path, target: str) -> Path:
    path = folder / "m.toml"
    path.write_text(f"""
[entities.people]
key = ["id"]
fields = ["id", "name"]
[entities.people.source]
url = "csv://src.csv"
[[entities.people.targets]]
name = "out"
{target}
""")
    return path


def source(folder: Path, ids: list[str]) -> None:
    rows = "".join(f"{i},{name}\n" for i, name, _ in ROWS if i in ids)
    (folder / "src.csv").write_text("id,name\n" + rows)


def sync(path: Path) -> None:
    assert apply_plan(make_plan(load_mapping(path))).ok


def restore(path: Path, key: str, replaced: bool = False) -> None:
    """``accord trash restore``, as its command does it: the last run's
    (``replaced``: the record a restore wrote over, which the trash kept)."""
    place = RecordReplica.from_url(record_url(path, "people", "out"))
    items = [
        item
        for item in place.trash_list()
        if item.key == key and item.run.endswith("-replaced") == replaced
    ]
    place.trash_restore(items[-1], key)
    place.close()


def csv_target(folder: Path) -> tuple[Path, bytes]:
    """A latin-1 ``;`` file with a column the mapping does not name."""
    target = folder / "dst.csv"
    data = "id;name;notes\n" + "".join(f"{i};{n};{x}\n" for i, n, x in ROWS)
    target.write_bytes(data.encode("latin-1"))
    return target, target.read_bytes()


CSV = 'url = "csv://dst.csv"\ndelimiter = ";"\nencoding = "latin-1"'


def test_a_restored_csv_row_comes_back_whole_where_it_was(tmp_path: Path) -> None:
    target, before = csv_target(tmp_path)
    path = mapping(tmp_path, CSV)
    source(tmp_path, ["1", "3"])
    sync(path)
    assert b"owes" not in target.read_bytes()
    restore(path, "2")
    assert target.read_bytes() == before


@pytest.mark.parametrize("order", [["2", "3"], ["3", "2"]])
def test_rows_deleted_together_come_back_in_their_order(
    tmp_path: Path, order: list[str]
) -> None:
    target, before = csv_target(tmp_path)
    path = mapping(tmp_path, CSV)
    source(tmp_path, ["1"])
    sync(path)
    for key in order:
        restore(path, key)
    assert target.read_bytes() == before


def test_a_row_put_back_over_a_new_one_is_kept_in_the_trash_too(
    tmp_path: Path,
) -> None:
    """The key made again meanwhile: the restore puts the old row, whole,
    in place of the new one, which goes to the trash, whole too."""
    target, _ = csv_target(tmp_path)
    path = mapping(tmp_path, CSV)
    source(tmp_path, ["1", "3"])
    sync(path)
    source(tmp_path, ["1", "2", "3"])
    sync(path)
    made_again = target.read_bytes()
    assert made_again.endswith(b"2;Bob;\n")
    restore(path, "2")
    assert target.read_bytes() == made_again.replace(
        b"2;Bob;\n", b'2;Bob;"owes 5;00"\n'
    )
    restore(path, "2", replaced=True)  # the row the restore replaced
    assert target.read_bytes() == made_again


def test_a_restored_json_line_comes_back_whole_where_it_was(tmp_path: Path) -> None:
    target = tmp_path / "dst.jsonl"
    target.write_text(
        '{"id": "1", "name": "Zoë", "tags": ["vip"]}\n'
        '{"name": "Bob",  "id": "2", "owes": 5.0, "tags": []}\n'
        '{"id": "3", "name": "Al"}\n'
    )
    before = target.read_bytes()
    path = mapping(tmp_path, 'url = "jsonl://dst.jsonl"')
    source(tmp_path, ["1", "3"])
    sync(path)
    assert b"owes" not in target.read_bytes()
    restore(path, "2")
    assert target.read_bytes() == before


def test_a_file_with_the_mapped_columns_only_gets_the_row_back_in_place(
    tmp_path: Path,
) -> None:
    target = tmp_path / "dst.csv"
    target.write_text("id,name\n1,Zoë\n2,Bob\n3,Al\n")
    before = target.read_bytes()
    path = mapping(tmp_path, 'url = "csv://dst.csv"')
    source(tmp_path, ["1", "3"])
    sync(path)
    restore(path, "2")
    assert target.read_bytes() == before


def test_the_command_restores_the_row_whole(tmp_path: Path) -> None:
    target, before = csv_target(tmp_path)
    path = mapping(tmp_path, CSV)
    source(tmp_path, ["1", "3"])

    def accord(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "accord", *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, done.stderr

    accord("records", "sync", str(path), "--yes")
    accord("trash", "restore", record_url(path, "people", "out"), "2")
    assert target.read_bytes() == before


def test_a_trash_made_before_rows_were_kept_takes_them(tmp_path: Path) -> None:
    store = PlaceStore("records:old#people", tmp_path)
    store.path.parent.mkdir(parents=True)
    with sqlite3.connect(store.path) as db:
        db.execute(
            "CREATE TABLE trash (run TEXT NOT NULL, key TEXT NOT NULL, record TEXT "
            "NOT NULL, at REAL NOT NULL, PRIMARY KEY (run, key))"
        )
        db.execute("INSERT INTO trash VALUES ('r1', 'a', 'old', 0)")
    db.close()
    assert store.kept("r1", "a") is None
    store.trash("r2", "b", "new")
    store.keep_row("r2", "b", '{"row": "x"}')
    store.keep_row("r2", "b", '{"row": "y"}')  # the first one kept stays
    assert store.kept("r2", "b") == '{"row": "x"}'
    assert [run for run, _, _ in store.trashed()] == ["r1", "r2"]
    store.close()


def test_a_row_is_not_restored_without_a_column_it_had(tmp_path: Path) -> None:
    target, _ = csv_target(tmp_path)
    path = mapping(tmp_path, CSV)
    source(tmp_path, ["1", "3"])
    sync(path)
    target.write_bytes("id;name\n1;Zoë\n3;Al\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="columns the file no longer has: 'notes'"):
        restore(path, "2")
    target.write_bytes("id;name;notes\n1;Zoë;\n3;Al;\n".encode("latin-1"))
    restore(path, "2")  # still in the trash
    assert (
        target.read_bytes()
        == 'id;name;notes\n1;Zoë;\n2;Bob;"owes 5;00"\n3;Al;\n'.encode("latin-1")
    )


# -- tables and directories: what the mapping does not name is kept too -------
TYPED = {
    "postgresql": (
        "born DATE, paid NUMERIC(8,2), seen TIMESTAMP, photo BYTEA, "
        "active BOOLEAN, score DOUBLE PRECISION, note TEXT"
    ),
    "mariadb": (
        "born DATE, paid DECIMAL(8,2), seen DATETIME(6), photo BLOB, "
        "active BOOLEAN, score DOUBLE, note TEXT"
    ),
    "sqlite": (
        "born DATE, paid NUMERIC, seen TIMESTAMP, photo BLOB, active BOOLEAN, "
        "score REAL, note TEXT"
    ),
}
EXTRA = {
    "born": dt.date(2011, 9, 1),
    "paid": decimal.Decimal("12.50"),
    "seen": dt.datetime(2026, 12, 7, 8, 9, 10, 123456),
    "photo": bytes(range(256)),
    "active": True,
    "score": 0.1,
    "note": "owes 5;00 ✓",
}


def _table_row(url: str, key: str) -> dict | None:
    engine = sqlalchemy.create_engine(driver_url(url))
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sqlalchemy.text("SELECT * FROM t WHERE id = :id"), {"id": key}
            )
            row = found.mappings().first()
            return None if row is None else dict(row)
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["postgresql", "mariadb", "sqlite"])
def test_a_restored_table_row_comes_back_with_every_column(
    tmp_path: Path, new_database, kind: str
) -> None:
    # as a user writes it (mysql://, postgresql://): accord picks the driver
    url = new_database(kind)
    engine = sqlalchemy.create_engine(driver_url(url))
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text(
                f"CREATE TABLE t (id VARCHAR(10) PRIMARY KEY, name VARCHAR(50), "
                f"{TYPED[kind]})"
            )
        )
    engine.dispose()
    path = mapping(tmp_path, f'url = "{url}"\ntable = "t"')
    source(tmp_path, ["1", "2", "3"])
    sync(path)
    engine = sqlalchemy.create_engine(driver_url(url))
    with engine.begin() as conn:  # what the school's other tools wrote
        conn.execute(
            sqlalchemy.text(
                "UPDATE t SET born = :born, paid = :paid, seen = :seen, "
                "photo = :photo, active = :active, score = :score, note = :note "
                "WHERE id = '2'"
            ),
            # SQLite's driver binds no Decimal: the text, which the column
            # stores as its number
            {**EXTRA, "paid": "12.50"} if kind == "sqlite" else EXTRA,
        )
    engine.dispose()
    whole = _table_row(url, "2")
    assert whole is not None and whole["photo"] == EXTRA["photo"]
    source(tmp_path, ["1", "3"])
    sync(path)
    assert _table_row(url, "2") is None
    restore(path, "2")
    assert _table_row(url, "2") == whole
    # made again by the source meanwhile: put back over the new row, whose
    # own columns are kept, whole, in the trash in turn
    source(tmp_path, ["1", "3"])
    sync(path)
    source(tmp_path, ["1", "2", "3"])
    sync(path)
    engine = sqlalchemy.create_engine(driver_url(url))
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE t SET note = 'new one' WHERE id = '2'"))
    engine.dispose()
    again = _table_row(url, "2")
    assert again is not None and again["note"] == "new one"
    restore(path, "2")
    assert _table_row(url, "2") == whole
    # the row it wrote over went to the trash whole: nothing of it is lost
    restore(path, "2", replaced=True)
    assert _table_row(url, "2") == again


def test_a_row_that_cannot_be_read_whole_is_not_deleted(
    tmp_path: Path, new_database
) -> None:
    # a role that may delete rows but read only the mapped columns (a
    # column grant): the trash cannot keep the row whole, so the delete is
    # refused, said, and the row stays as it was
    url = new_database("postgresql")
    role = "accord_limited_" + uuid.uuid4().hex[:8]
    admin = sqlalchemy.create_engine(driver_url(url))
    with admin.begin() as conn:
        for statement in (
            "CREATE TABLE t (id VARCHAR(10) PRIMARY KEY, name VARCHAR(50), note TEXT)",
            f"CREATE ROLE {role} LOGIN",
            f"GRANT SELECT (id, name), INSERT, UPDATE, DELETE ON t TO {role}",
        ):
            conn.execute(sqlalchemy.text(statement))
    try:
        limited = url.replace("://postgres@", f"://{role}@")
        path = mapping(tmp_path, f'url = "{limited}"\ntable = "t"')
        source(tmp_path, ["1", "2", "3"])
        sync(path)
        with admin.begin() as conn:
            conn.execute(sqlalchemy.text("UPDATE t SET note = 'kept' WHERE id = '2'"))
        source(tmp_path, ["1", "3"])
        report = apply_plan(make_plan(load_mapping(path)))
        assert not report.ok
        said = " ".join(message for _, message in report.failed + report.skipped)
        assert "permission denied" in said, said
        assert _table_row(url, "2") == {"id": "2", "name": "Bob", "note": "kept"}
        place = RecordReplica.from_url(record_url(path, "people", "out"))
        assert [item.key for item in place.trash_list()] == []
        place.close()
    finally:
        with admin.begin() as conn:
            conn.execute(sqlalchemy.text(f"REVOKE ALL ON t FROM {role}"))
            conn.execute(sqlalchemy.text(f"DROP ROLE {role}"))
        admin.dispose()


def test_a_row_is_not_restored_into_a_table_without_a_column_it_had(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text(
                "CREATE TABLE t (id TEXT PRIMARY KEY, name TEXT, note TEXT)"
            )
        )
    path = mapping(tmp_path, f'url = "{url}"\ntable = "t"')
    source(tmp_path, ["1", "2"])
    sync(path)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE t SET note = 'kept' WHERE id = '2'"))
    source(tmp_path, ["1"])
    sync(path)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("ALTER TABLE t DROP COLUMN note"))
    engine.dispose()
    with pytest.raises(ConfigError, match="columns the table no longer has: 'note'"):
        restore(path, "2")
    assert _table_row(url, "2") is None
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("ALTER TABLE t ADD COLUMN note TEXT"))
    engine.dispose()
    restore(path, "2")  # still in the trash
    assert _table_row(url, "2") == {"id": "2", "name": "Bob", "note": "kept"}


def test_a_restored_directory_entry_comes_back_with_every_attribute(
    tmp_path: Path, slapd, monkeypatch
) -> None:
    monkeypatch.setenv("WHOLE_LDAP_PASSWORD", slapd.password)
    with slapd.new_ou("whole") as (ou, conn):
        path = mapping(
            tmp_path,
            f'url = "{slapd.url}"\nbase = "{ou}"\nrdn = "uid"\n'
            'object_classes = ["inetOrgPerson"]\n'
            f'bind_dn = "{slapd.bind_dn}"\npassword_env = "WHOLE_LDAP_PASSWORD"\n'
            'computed = { cn = "{name}", sn = "{name}" }\n'
            '[entities.people.targets.columns]\nid = "uid"\nname = "givenName"',
        )
        source(tmp_path, ["1", "2", "3"])
        sync(path)
        dn = f"uid=2,{ou}"
        photo = bytes(range(256))
        assert conn.modify(  # what the directory's other tools wrote
            dn,
            {
                "objectClass": [(ldap3.MODIFY_ADD, ["posixAccount"])],
                "uidNumber": [(ldap3.MODIFY_ADD, ["1002"])],
                "gidNumber": [(ldap3.MODIFY_ADD, ["100"])],
                "homeDirectory": [(ldap3.MODIFY_ADD, ["/home/bob"])],
                "telephoneNumber": [(ldap3.MODIFY_ADD, ["+1 555 0102", "+1 555 0103"])],
                "jpegPhoto": [(ldap3.MODIFY_ADD, [photo])],
            },
        ), conn.result
        whole = _entry(conn, dn)
        source(tmp_path, ["1", "3"])
        sync(path)
        assert _entry(conn, dn) is None
        restore(path, "2")
        assert _entry(conn, dn) == whole
        assert whole["jpegPhoto"] == [photo]
        # deleted, made again by the source (without what the other tools
        # wrote) and given attributes of its own: a restore writes over it,
        # and the entry is as it was, no more; the one written over is kept
        # whole in the trash in turn
        source(tmp_path, ["1", "3"])
        sync(path)
        source(tmp_path, ["1", "2", "3"])
        sync(path)
        assert conn.modify(
            dn,
            {
                "description": [(ldap3.MODIFY_ADD, ["made again"])],
                "mail": [(ldap3.MODIFY_ADD, ["bob@example.org"])],
            },
        ), conn.result
        again = _entry(conn, dn)
        assert again is not None and b"posixAccount" not in again["objectClass"]
        restore(path, "2")
        assert _entry(conn, dn) == whole
        restore(path, "2", replaced=True)
        assert _entry(conn, dn) == again


def _entry(conn, dn: str) -> dict | None:
    """An entry's user attributes (names in lower case, values sorted)."""
    if not conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["*"]):
        return None
    found = conn.response[0]["raw_attributes"]
    return {name: sorted(values) for name, values in found.items()}
