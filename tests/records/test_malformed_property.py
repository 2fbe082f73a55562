"""Property: a ragged or malformed CSV around valid rows is refused, with the
line of the fault, and no target changes; a valid one round-trips."""

from __future__ import annotations

import csv
import io
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.errors import BadData
from accord.records import apply_plan, load_mapping, make_plan

pytest.importorskip("sqlalchemy")

HEADER = ["id", "name", "class", "year"]
text = st.text(alphabet=st.sampled_from(list("abcXYZ é,\"';-")), min_size=0, max_size=8)
row = st.tuples(text, st.sampled_from(["5A", "6B", "7C", ""]), st.integers(0, 9999))
rows = st.lists(row, min_size=1, max_size=8)
FAULTS = ("short", "long", "open quote", "bad bytes", "not an int", "duplicate key")


def csv_line(values: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue().encode()


def roster(records: list[tuple[str, str, int]], year_shift: int = 0) -> list[list[str]]:
    return [
        [str(i + 1), name, klass, str(year + year_shift)]
        for i, (name, klass, year) in enumerate(records)
    ]


def write(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(csv_line(HEADER) + b"".join(lines))


def setup(folder: Path) -> Path:
    db = folder / "lms.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, class TEXT, year INT)"
        )
    (folder / "copy.csv").write_text(",".join(HEADER) + "\n")
    mapping = folder / "m.toml"
    mapping.write_text(f"""
[entities.pupils]
key = ["id"]
fields = ["id", "name", "class", "year"]
types = {{ id = "int", year = "int" }}
empty = "text"
[entities.pupils.source]
url = "csv://roster.csv"
[[entities.pupils.targets]]
url = "sqlite:///{db}"
table = "t"
[[entities.pupils.targets]]
url = "csv://copy.csv"
""")
    return mapping


def targets(folder: Path) -> tuple[list[tuple], bytes]:
    with sqlite3.connect(folder / "lms.db") as conn:
        table = sorted(conn.execute("SELECT * FROM t"))
    return table, (folder / "copy.csv").read_bytes()


def corrupt(lines: list[list[str]], at: int, fault: str) -> tuple[list[bytes], int]:
    """The file's lines with one fault in row ``at``; the line it is on."""
    out = [csv_line(values) for values in lines]
    values = list(lines[at])
    if fault == "short":
        out[at] = csv_line(values[:-1])
    elif fault == "long":
        out[at] = csv_line([*values, "extra"])
    elif fault == "open quote":
        at = len(lines) - 1  # a quote that opens on the last row stays open
        out[at] = csv_line(lines[at][:-1]).rstrip(b"\n") + b',"' + b"12\n"
    elif fault == "bad bytes":
        out[at] = out[at].replace(b",", b",\xff", 1)
    elif fault == "not an int":
        out[at] = csv_line([*values[:3], "twelve"])
    else:
        at = len(lines)
        out.append(csv_line(lines[0]))
    return out, at + 2  # the header is line 1


@settings(max_examples=40, deadline=None)
@given(rows, rows, st.sampled_from(FAULTS), st.data())
def test_a_malformed_roster_is_refused_and_writes_nothing(
    first, second, fault, data
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mapping = setup(folder)
        write(folder / "roster.csv", [csv_line(r) for r in roster(first)])
        assert apply_plan(make_plan(load_mapping(mapping))).ok
        before = targets(folder)
        lines = roster(second, year_shift=1)
        at = data.draw(st.integers(0, len(lines) - 1))
        broken, line = corrupt(lines, at, fault)
        write(folder / "roster.csv", broken)
        with pytest.raises(BadData) as caught:
            make_plan(load_mapping(mapping))
        assert f"roster.csv:{line}:" in caught.value.message, fault
        assert "nothing was written" in caught.value.message
        assert targets(folder) == before


@settings(max_examples=25, deadline=None)
@given(rows)
def test_a_valid_roster_round_trips(records) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mapping = setup(folder)
        lines = roster(records)
        write(folder / "roster.csv", [csv_line(r) for r in lines])
        assert apply_plan(make_plan(load_mapping(mapping))).ok
        table, copy = targets(folder)
        expected = [(int(i), n, c, int(y)) for i, n, c, y in lines]
        assert table == sorted(expected)
        assert sorted(list(csv.reader(io.StringIO(copy.decode())))[1:]) == sorted(lines)
        assert make_plan(load_mapping(mapping)).plan.is_empty
