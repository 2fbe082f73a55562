"""The merge's decisions, without I/O: compression, every conflict kind,
every policy; and values on the wire."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accord.replication.merge import Change, compress, merge
from accord.replication.values import decode, encode, key_text, key_values

PARENT = {"name": "p", "pk": ["id"], "fks": [], "uniques": [], "columns": []}
CHILD = {
    "name": "c",
    "pk": ["id"],
    "fks": [{"columns": ["pid"], "table": "p", "refcolumns": ["id"]}],
    "uniques": [],
    "columns": [],
}
DESCS = {"p": PARENT, "c": CHILD}
K = ("p", "[1]")


@pytest.mark.parametrize(
    ("first", "exists", "net"),
    [
        ("i", True, "i"),
        ("i", False, None),
        ("u", True, "u"),
        ("u", False, "d"),
        ("d", False, "d"),
        ("d", True, "u"),
    ],
)
def test_compression(first, exists, net) -> None:
    assert compress(first, exists) == net


def row(**values):
    return {"id": 1, **values}


def decide(local, remote, policy="local-wins"):
    return merge(local, remote, descriptions=DESCS, policies={"p": policy})


def test_no_local_change_takes_the_remote_one() -> None:
    out = decide({}, {K: Change("u", row(a=2))})
    assert out.write == {K: row(a=2)} and not out.conflicts


@pytest.mark.parametrize(
    ("policy", "written", "pushed"),
    [
        ("local-wins", None, True),
        ("server-wins", {"id": 1, "a": 3, "b": 1}, False),
        ("field-merge", {"id": 1, "a": 3, "b": 2}, True),
        ("field-merge/server-wins", {"id": 1, "a": 3, "b": 2}, True),
    ],
)
def test_update_update(policy, written, pushed) -> None:
    base = row(a=1, b=1)
    local = {K: Change("u", row(a=1, b=2), base)}
    remote = {K: Change("u", row(a=3, b=1))}
    out = decide(local, remote, policy)
    assert out.write.get(K) == written
    assert (K in out.push) == pushed
    assert out.conflicts[0].kind == "update/update"


def test_field_merge_same_column_falls_back() -> None:
    base = row(a=1)
    local = {K: Change("u", row(a=2), base)}
    remote = {K: Change("u", row(a=3))}
    assert decide(local, remote, "field-merge").write[K] == row(a=2)
    assert decide(local, remote, "field-merge/server-wins").write[K] == row(a=3)


def test_equal_changes_are_no_conflict() -> None:
    out = decide({K: Change("u", row(a=2), row(a=1))}, {K: Change("u", row(a=2))})
    assert not out.conflicts and K in out.forget


def test_delete_delete() -> None:
    out = decide({K: Change("d", None)}, {K: Change("d", None)})
    assert K in out.forget and not out.conflicts


def test_update_beats_delete() -> None:
    out = decide({K: Change("d", None)}, {K: Change("u", row(a=2))})
    assert out.write[K] == row(a=2) and K in out.forget
    out = decide({K: Change("u", row(a=2), row(a=1))}, {K: Change("d", None)})
    assert K not in out.write and K in out.push
    out = decide(
        {K: Change("u", row(a=2), row(a=1))}, {K: Change("d", None)}, "server-wins"
    )
    assert out.write[K] is None


def test_insert_insert_rekeys() -> None:
    out = decide({K: Change("i", row(a=1))}, {K: Change("i", row(a=2))})
    assert K in out.rekey and out.write[K] == row(a=2)


def test_dependencies_both_ways() -> None:
    child = ("c", "[9]")
    out = decide({child: Change("i", {"id": 9, "pid": 1})}, {K: Change("d", None)})
    assert K not in out.write and K in out.push
    assert out.conflicts[0].kind == "dependency"
    out = decide({K: Change("d", None)}, {child: Change("i", {"id": 9, "pid": 1})})
    assert K in out.restore and out.conflicts[0].kind == "reverse dependency"


def test_a_callback_policy() -> None:
    def pick(table, key, local, remote, base):
        return {**remote, "a": local["a"] + remote["a"]}

    out = decide({K: Change("u", row(a=2), row(a=1))}, {K: Change("u", row(a=3))}, pick)
    assert out.write[K] == row(a=5) and K in out.push


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(),
    st.floats(allow_nan=False),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.dates(),
    st.times(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.binary(),
    st.dictionaries(st.text(), st.integers()),
)


@given(VALUES)
def test_values_survive_the_wire(value) -> None:
    import json

    back = decode(json.loads(json.dumps(encode(value))))
    assert back == value and type(back) is type(value)


def test_keys_as_text() -> None:
    assert key_text([12]) == "[12]"
    assert key_values(key_text(["a", 2])) == ["a", 2]
    assert decode(encode(Decimal("1.10"))).as_tuple() == Decimal("1.10").as_tuple()
