"""A row deleted from a target file is kept whole in the trash (the columns
the mapping does not name too), and a restore puts it back as the file
held it, where it was."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from accord.errors import ConfigError
from accord.records import apply_plan, load_mapping, make_plan
from accord.records.meta import PlaceStore
from accord.records.replica import RecordReplica, record_url

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


def restore(path: Path, key: str) -> None:
    """``accord trash restore``, as its command does it: the last run's."""
    place = RecordReplica.from_url(record_url(path, "people", "out"))
    items = [item for item in place.trash_list() if item.key == key]
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
    restore(path, "2")  # the row the restore replaced
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
