"""The fast SQL reader (connectorx into Arrow) and the row-by-row one
agree, whatever a loosely typed SQLite table holds."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from accord.errors import BadData
from accord.records.fastsql import canonical_texts
from accord.records.mapping import Entity, PlaceSpec
from accord.records.rows import collect

sqlalchemy = pytest.importorskip("sqlalchemy")
pytest.importorskip("connectorx")

FIELDS = ("id", "name", "born", "active", "year")
TYPES = {"id": "int", "born": "date", "active": "bool", "year": "int"}
SQL = "SELECT id, name, born, active, year FROM t"

odd = st.sampled_from([None, "", " ", "x", "007", 7, "yes", "é\\"])
name = st.one_of(st.text(max_size=4), st.none(), st.integers(0, 9), odd)
born = st.one_of(st.sampled_from(["2014-12-10", "2016-02-29", None]), odd)
active = st.one_of(st.sampled_from([0, 1, None, True]), odd)
year = st.one_of(st.integers(-5, 10**12), st.none(), odd)
row = st.tuples(name, born, active, year)


def entity(empty: str) -> Entity:
    spec = PlaceSpec("sqlite:///x")
    return Entity("e", ("id",), FIELDS, TYPES, spec, (spec,), empty=empty)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(row, min_size=1, max_size=5),
    st.sampled_from(["INTEGER", "BOOLEAN", "TEXT"]),
    st.sampled_from(["DATE", "TEXT"]),
    st.sampled_from(["null", "text"]),
)
def test_the_fast_reader_reads_what_the_driver_reads(rows, active, born, empty):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.db"
        with sqlite3.connect(path) as db:
            db.execute(
                f"CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, born {born},"
                f" active {active}, year INTEGER)"
            )
            db.executemany(
                "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                [(i, *values) for i, values in enumerate(rows)],
            )
        fast = None
        if active == "INTEGER":  # SQLPlace reads SQLite fast only as declared
            fast = canonical_texts(
                sqlalchemy.make_url(f"sqlite:///{path}"),
                SQL,
                [TYPES.get(f, "str") for f in FIELDS],
                [0],
                empty == "text",
            )
        with sqlite3.connect(path) as db:
            found = db.execute(SQL).fetchall()
        try:
            reference = collect(entity(empty), FIELDS, "t", found).by_key
        except BadData:
            reference = None
        event("fast path" if fast is not None else "row by row")
        if fast is not None:
            assert fast == reference
