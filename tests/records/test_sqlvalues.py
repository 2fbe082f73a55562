"""A SQL row's values survive the trash's JSON: the same Python value back."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from accord.records.sqlvalues import decoded, encoded

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.dates()
    | st.datetimes()
    | st.times()
    | st.timedeltas()
    | st.uuids()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@given(VALUES)
def test_every_value_comes_back_as_it_was(value) -> None:
    back = decoded(json.loads(json.dumps(encoded(value))))
    if isinstance(value, bytes):
        assert back == value
    else:
        assert back == value and type(back) is type(value)


def test_a_value_of_another_type_is_kept_as_its_text() -> None:
    class Point:
        def __str__(self) -> str:
            return "(1,2)"

    assert decoded(json.loads(json.dumps(encoded(Point())))) == "(1,2)"
    assert decoded(json.loads(json.dumps(encoded((1, "a"))))) == [1, "a"]
