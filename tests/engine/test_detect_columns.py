"""The name gate and the archive comparison, column by column, decide as
the item-by-item ones do (``engine/columns.py`` against ``names.Gate`` and
``detect.scan_side``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.capabilities import Capabilities
from accord.engine import columns
from accord.engine.names import Gate
from accord.model import Side
from accord.replica import Columns

pa = pytest.importorskip("pyarrow")

names = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="ab./:%é \\", max_size=8),
    st.sampled_from(["", ".", "..", "a/b", ".accord/x", "x//y", "ok", "AUX"]),
)
targets = st.one_of(
    st.none(),
    st.builds(
        Capabilities,
        max_name_bytes=st.sampled_from([None, 4, 255]),
        max_key_bytes=st.sampled_from([None, 6, 1024]),
        utf8_names=st.booleans(),
        forbidden_chars=st.sampled_from(["", ':*?"<>|', " ", "a"]),
    ),
)


def as_columns(keys: list[str]) -> Columns:
    array = pa.array(keys, pa.string())
    versions = pa.array([f"v{k}" for k in keys], pa.string())
    return Columns(array, versions, versions)


@settings(max_examples=300, deadline=None)
@given(st.lists(names, unique=True, max_size=30), targets)
def test_the_gate_in_columns_refuses_what_the_gate_refuses(keys, target) -> None:
    try:
        listing = as_columns(keys)
    except (pa.ArrowInvalid, UnicodeEncodeError):
        return  # a lone surrogate is no Arrow string
    gate = Gate("here://", target, "there://")
    kept, problems = columns.gated(listing, gate, Side.LEFT)
    refused = [(k, why) for k in keys if (why := gate(k)) is not None]
    assert kept.keys.to_pylist() == [k for k in keys if gate(k) is None]
    assert problems == gate.problems(refused, Side.LEFT)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from("abcdefgh"), st.sampled_from("xyz"), max_size=8),
    st.dictionaries(st.sampled_from("abcdefgh"), st.sampled_from("xyz"), max_size=8),
)
def test_against_the_archive_as_scan_side(listed, archived) -> None:
    """Fresh: new keys and keys whose version moved; unseen: archived keys
    not listed; which fresh keys the archive holds."""
    listing = Columns(
        pa.array(list(listed), pa.string()),
        pa.array(list(listed.values()), pa.string()),
        pa.array(list(listed.values()), pa.string()),
    )
    known = (
        pa.array(list(archived), pa.string()),
        pa.array(list(archived.values()), pa.string()),
    )
    found = columns.against(listing, known, Side.RIGHT, listing.keys, [])
    fresh = found.fresh.keys.to_pylist()
    assert fresh == [k for k, v in listed.items() if archived.get(k) != v]
    assert sorted(found.unseen) == sorted(set(archived) - set(listed))
    assert found.archived.to_pylist() == [k in archived for k in fresh]
    assert found.seen == len(listed)
