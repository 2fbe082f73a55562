"""The fast CSV reader (pyarrow) and the strict one agree: whatever the fast
one accepts, the strict one reads the same records from; the rest it leaves
to the strict one, which says what is wrong where."""

from __future__ import annotations

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from accord.errors import BadData
from accord.records.csvread import decode, parse
from accord.records.fastcsv import canonical_texts
from accord.records.mapping import Entity, PlaceSpec
from accord.records.rows import collect

pytest.importorskip("pyarrow")

FIELDS = ("id", "name", "born", "active", "year")
TYPES = {"id": "int", "born": "date", "active": "bool", "year": "int"}
COLUMNS = [(f, TYPES.get(f, "str"), f) for f in FIELDS]


def entity(empty: str) -> Entity:
    spec = PlaceSpec("csv:///x.csv")
    return Entity("e", ("id",), FIELDS, TYPES, spec, (spec,), empty=empty)


def strict(data: bytes, empty: str) -> dict[str, str] | None:
    try:
        table = parse(decode(data, "utf-8", "x.csv"), "x.csv")
        where = {name: i for i, name in enumerate(table.header)}
        if any(f not in where for f in FIELDS):
            return None
        rows = [[row[where[f]] for f in FIELDS] for _, row in table.rows]
        found = collect(entity(empty), FIELDS, "x.csv", rows, problems=table.problems)
        return found.by_key
    except BadData:
        return None


text = st.text(alphabet=st.sampled_from(list('ab ,"\n\r\\\x1f;é')), max_size=6)
integer = st.one_of(
    st.integers(-5, 10**6).map(str), st.sampled_from(["007", "+3", "-0", " 4 ", "x"])
)
date = st.sampled_from(["2014-12-10", "2014-02-30", "20141210", " 2014-01-01 ", ""])
yes_no = st.sampled_from(["yes", "No", " t ", "0", "TRUE", "", "maybe"])
row = st.tuples(integer, text, date, yes_no, st.one_of(integer, st.just(""))).map(list)


def line(values: list[str], quote: bool) -> str:
    out = []
    for value in values:
        if quote or any(c in value for c in ',"\n\r') or value[:1] == '"':
            value = '"' + value.replace('"', '""') + '"'
        out.append(value)
    return ",".join(out)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(row, min_size=1, max_size=6),
    st.booleans(),
    st.sampled_from(["null", "text"]),
    st.sampled_from(["\n", "\r\n"]),
    st.one_of(st.none(), st.tuples(st.integers(0, 400), st.sampled_from('"x,\n'))),
)
def test_the_fast_reader_reads_what_the_strict_one_reads(
    rows, quote, empty, newline, noise
) -> None:
    text = ",".join(FIELDS) + newline
    text += "".join(line(values, quote) + newline for values in rows)
    if noise is not None:  # a stray character anywhere: often malformed
        at, char = noise
        at = at % (len(text) + 1)
        text = text[:at] + char + text[at:]
    data = text.encode()
    fast = canonical_texts(data, "utf-8", ",", COLUMNS, ["id"], empty == "text")
    reference = strict(data, empty)
    event("fast path" if fast is not None else "strict path")
    if fast is not None:
        assert reference == fast
