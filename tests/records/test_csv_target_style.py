"""A CSV target accord rewrites keeps its delimiter, encoding, line ends and
byte order mark; a value its encoding cannot hold is refused before any
target is written."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
import sqlalchemy

from accord.errors import BadData, ConfigError
from accord.records import apply_plan, load_mapping, make_plan


def mapping(folder: Path, target: str, extra: str = "") -> Path:
    path = folder / "m.toml"
    path.write_text(f'''
[entities.people]
key = ["id"]
fields = ["id", "name"]
[entities.people.source]
url = "csv://src.csv"
delimiter = ";"
[[entities.people.targets]]
name = "out"
url = "csv://dst.csv"
{target}
{extra}
''')
    return path


def sync(path: Path) -> None:
    assert apply_plan(make_plan(load_mapping(path))).ok
    assert make_plan(load_mapping(path)).plan.is_empty, "the next plan is not empty"


def test_a_semicolon_latin1_target_is_rewritten_as_it_was(tmp_path: Path) -> None:
    (tmp_path / "src.csv").write_text("id;name\n1;Zoë\n2;Bob\n", encoding="utf-8")
    (tmp_path / "dst.csv").write_bytes("id;name\n1;Zoe\n".encode("latin-1"))
    sync(mapping(tmp_path, 'delimiter = ";"\nencoding = "latin-1"'))
    assert (tmp_path / "dst.csv").read_bytes() == "id;name\n1;Zoë\n2;Bob\n".encode(
        "latin-1"
    )


def test_crlf_and_a_byte_order_mark_are_kept(tmp_path: Path) -> None:
    (tmp_path / "src.csv").write_text("id;name\n1;Zoë\n", encoding="utf-8")
    (tmp_path / "dst.csv").write_bytes(codecs.BOM_UTF8 + b"id,name\r\n1,Zoe\r\n")
    sync(mapping(tmp_path, ""))
    assert (tmp_path / "dst.csv").read_bytes() == (
        codecs.BOM_UTF8 + "id,name\r\n1,Zoë\r\n".encode()
    )


def test_a_tab_separated_target_quotes_as_its_delimiter_needs(tmp_path: Path) -> None:
    (tmp_path / "src.csv").write_text('id;name\n1;"a;b"\n2;"c\td"\n')
    (tmp_path / "dst.csv").write_bytes(b"id\tname\n")
    sync(mapping(tmp_path, 'delimiter = "\\t"'))
    assert (tmp_path / "dst.csv").read_bytes() == b'id\tname\n1\ta;b\n2\t"c\td"\n'


def test_a_value_the_encoding_cannot_hold_writes_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'lms.db'}"
    engine = sqlalchemy.create_engine(db)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE t (id TEXT PRIMARY KEY, name TEXT)"))
    engine.dispose()
    (tmp_path / "src.csv").write_text("id;name\n1;Zoë\n2;日本\n", encoding="utf-8")
    before = "id;name\n1;Zoe\n".encode("latin-1")
    (tmp_path / "dst.csv").write_bytes(before)
    path = mapping(
        tmp_path,
        'delimiter = ";"\nencoding = "latin-1"',
        f'[[entities.people.targets]]\nname = "lms"\nurl = "{db}"\ntable = "t"',
    )
    with pytest.raises(BadData) as caught:
        make_plan(load_mapping(path))
    said = "2: field name: '日本' cannot be written in the file's encoding (latin-1)"
    assert said in caught.value.message
    assert (tmp_path / "dst.csv").read_bytes() == before
    engine = sqlalchemy.create_engine(db)
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT count(*) FROM t")).scalar() == 0
    engine.dispose()


def test_columns_the_mapping_does_not_name_are_kept(tmp_path: Path) -> None:
    (tmp_path / "src.csv").write_text("id;name\n1;Zoë\n2;Bob\n4;Al\n")
    (tmp_path / "dst.csv").write_text(
        "name;id;notes\nZoe;1;VIP customer\nCarl;3;left\nAl;4;\"a;b\"\n"
    )
    sync(mapping(tmp_path, 'delimiter = ";"'))
    assert (tmp_path / "dst.csv").read_text() == (
        'name;id;notes\nZoë;1;VIP customer\nAl;4;"a;b"\nBob;2;\n'
    )


def test_a_jsonl_target_keeps_the_members_it_does_not_map(tmp_path: Path) -> None:
    (tmp_path / "src.csv").write_text("id;name\n1;Zoë\n2;Bob\n4;Al\n")
    (tmp_path / "dst.jsonl").write_text(
        '{"id": "1", "name": "Zoe", "tags": ["vip"]}\n'
        '{"id": "3", "name": "Carl"}\n'
        '{"name": "Al",   "id": "4", "note": null}\n'
    )
    path = mapping(tmp_path, "")
    path.write_text(path.read_text().replace("csv://dst.csv", "jsonl://dst.jsonl"))
    sync(path)
    assert (tmp_path / "dst.jsonl").read_text() == (
        '{"id": "1", "name": "Zo\\u00eb", "tags": ["vip"]}\n'
        '{"name": "Al",   "id": "4", "note": null}\n'
        '{"id": "2", "name": "Bob"}\n'
    )


def test_an_empty_target_file_is_filled_with_a_header(tmp_path: Path) -> None:
    (tmp_path / "src.csv").write_text("id;name\n1;Zoë\n")
    path = mapping(tmp_path, 'delimiter = ";"')
    with pytest.raises(ConfigError) as caught:
        make_plan(load_mapping(path))
    assert f"file not found: {tmp_path / 'dst.csv'}" in caught.value.message
    assert "create it empty" in (caught.value.hint or "")
    (tmp_path / "dst.csv").write_bytes(b"")
    sync(path)
    assert (tmp_path / "dst.csv").read_bytes() == "id;name\r\n1;Zoë\r\n".encode()
    (tmp_path / "src.csv").write_bytes(b"")  # an empty source is not "no records"
    with pytest.raises(BadData):
        make_plan(load_mapping(path))
