"""The ways a next day's record plan saves time give what the reference
gives: a long bool or date column converted a distinct value at a time,
record texts decoded without escapes, records made into Python values by
conversions picked once, a key column's ints remembered."""

from __future__ import annotations

import gc
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.records import arrow
from accord.records.canon import NULL, SEP, canonical, decode, typed, typed_record
from accord.records.rows import Rows
from accord.records.values import BadValue
from accord.replica import held_ints, number_keys

pa = pytest.importorskip("pyarrow")

BOOLS = ["1", "0", "true", "FALSE", " yes ", "No", "t", "off", "", "  "]
DAYS = ["2014-12-10", " 2015-01-01 ", "2016-02-29", "", "1999-07-04"]
BAD = {"bool": ["maybe", "2"], "date": ["2014-02-30", "20141210", "0000-01-01"]}


def reference(kind: str, values: list[str]) -> list[str | None] | None:
    """The value-by-value conversion (``canon``), None where one refuses."""
    convert = canonical(kind)
    try:
        texts = [convert(value) for value in values]
    except BadValue:
        return None
    return [None if text == NULL else text for text in texts]


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["bool", "date"]),
    st.integers(arrow._BY_VALUE_FROM, 3 * arrow._BY_VALUE_FROM),
    st.integers(0, 2**32),
    st.booleans(),
)
def test_a_long_column_converted_by_its_values_is_converted_value_by_value(
    kind, count, seed, bad
) -> None:
    rng = random.Random(seed)
    pool = BOOLS if kind == "bool" else DAYS
    values = [rng.choice(pool) for _ in range(count)]
    if bad:  # one value anywhere that does not convert: the whole column
        values[rng.randrange(count)] = rng.choice(BAD[kind])
    column = pa.array(values, pa.string())
    found = arrow._by_value(column, kind, False, pa.compute)
    expected = reference(kind, values)
    assert (found is None) == (expected is None)
    if found is not None:
        assert found.to_pylist() == expected
        assert (
            found.to_pylist()
            == arrow.canonical_column(column, kind, False, by_value=False).to_pylist()
        )


def test_a_long_column_of_canonical_dates_is_its_own_texts() -> None:
    column = pa.array(["2014-12-10", "2016-02-29"] * arrow._BY_VALUE_FROM)
    assert arrow.canonical_column(column, "date", False) is column


def test_a_column_whose_values_mostly_differ_is_converted_as_it_is() -> None:
    values = [
        f"20{y:02d}-{m:02d}-{d:02d}"
        for y in range(20)
        for m in range(1, 13)
        for d in range(1, 29)
    ]
    column = pa.array(values * 1)
    assert len(column) >= arrow._BY_VALUE_FROM
    found = arrow._by_value(column, "date", False, pa.compute)
    assert found is column  # canonical already: no dictionary was made of it


@given(st.lists(st.one_of(st.none(), st.text(max_size=5)), min_size=1, max_size=6))
def test_a_record_text_decodes_to_its_values(values) -> None:
    canon = canonical("str", empty_text=True)
    text = SEP.join(canon(v) for v in values)
    assert decode(text) == values


def test_records_are_made_with_the_reference_conversions() -> None:
    fields = ("id", "name", "born", "active", "tags", "n")
    types = {"id": "int", "born": "date", "active": "bool", "tags": "list"}
    rows = Rows(fields, types, ("id", "born"), {})
    texts = [
        SEP.join(["7", "A\\\\b", "2014-01-02", "true", "x;y", NULL]),
        SEP.join(["-3", NULL, NULL, "false", "", "z"]),
    ]
    for text in texts:
        assert rows.record(text) == typed_record(fields, types, text)
    key = SEP.join(["7", "2014-01-02"])
    assert rows.key(key) == (7, typed("date", "2014-01-02"))
    with pytest.raises(ValueError):
        rows.record(SEP.join(["1", "2"]))  # a text of another width


def test_a_key_columns_ints_are_made_once_and_forgotten_with_it() -> None:
    keys = pa.array([str(i) for i in range(1000)])
    ints = number_keys(keys)
    assert ints is not None and number_keys(keys) is ints
    other = pa.array([str(i) for i in range(1000)])
    assert number_keys(other) is not ints  # another array: its own ints
    assert number_keys(other).to_pylist() == ints.to_pylist()
    del other
    gc.collect()
    assert held_ints() == []


def _rss_file_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssFile:"):
                return int(line.split()[1])
    pytest.skip("no RssFile in /proc/self/status")


def test_a_mapped_files_pages_are_let_go_and_read_again(tmp_path) -> None:
    from accord.arrowfile import let_go_mapped, mapped_texts, write_table

    texts = [f"{i:08d}" * 8 for i in range(200_000)]  # about 14 MB
    table = pa.table({"a": texts}).replace_schema_metadata({"n": "s"})
    path = tmp_path / "kept.arrow"
    write_table(table, path, tmp_path / "kept.tmp", durable=False)
    (column,) = mapped_texts(path, b"n", b"s", 1)
    assert pa.compute.sum(pa.compute.count_substring(column, "x")).as_py() == 0
    read = _rss_file_kib()
    let_go_mapped()
    assert _rss_file_kib() < read - 8_000  # the file's pages left the process
    assert column.to_pylist() == texts  # and come back from the file as read


def test_a_file_that_is_empty_or_not_arrow_is_not_mapped(tmp_path) -> None:
    from accord.arrowfile import mapped_texts

    empty = tmp_path / "empty.arrow"
    empty.write_bytes(b"")
    assert mapped_texts(empty, b"n", b"s", 1) is None
    other = tmp_path / "other.arrow"
    other.write_bytes(b"not an arrow file" * 10)
    assert mapped_texts(other, b"n", b"s", 1) is None
    assert mapped_texts(tmp_path / "missing.arrow", b"n", b"s", 1) is None
