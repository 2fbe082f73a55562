"""accord.tuples.NamedTuple makes the class typing.NamedTuple makes."""

from __future__ import annotations

import pickle
import typing

import pytest

from accord.tuples import NamedTuple


class Row(NamedTuple):
    """A row."""

    key: str
    size: int = 0
    note: str | None = None

    def shown(self) -> str:
        return f"{self.key}:{self.size}"

    @property
    def big(self) -> bool:
        return self.size > 10


class TypingRow(typing.NamedTuple):
    """A row."""

    key: str
    size: int = 0
    note: str | None = None


def test_the_class_is_a_namedtuple_like_typings() -> None:
    row = Row("a", 12)
    assert row == ("a", 12, None)
    assert isinstance(row, tuple)
    assert Row.__mro__ == (Row, tuple, object)
    assert Row._fields == TypingRow._fields
    assert Row._field_defaults == TypingRow._field_defaults
    assert Row.__doc__ == "A row."
    assert Row.__module__ == TypingRow.__module__ == __name__
    assert Row.__qualname__ == "Row"
    assert repr(row) == "Row(key='a', size=12, note=None)"
    assert row._replace(size=1) == Row("a", 1)
    assert Row._make(["b", 2, "x"]) == Row("b", 2, "x")
    assert row._asdict() == {"key": "a", "size": 12, "note": None}
    assert row.shown() == "a:12" and row.big
    assert pickle.loads(pickle.dumps(row)) == row
    assert typing.get_type_hints(Row) == typing.get_type_hints(TypingRow)
    assert not hasattr(row, "__dict__")


def test_the_same_class_bodies_are_refused() -> None:
    with pytest.raises(
        TypeError, match=r"other cannot follow default field(\(s\))? size"
    ):

        class Bad(NamedTuple):
            key: str
            size: int = 0
            other: str

    with pytest.raises(AttributeError, match="Cannot overwrite NamedTuple"):

        class Worse(NamedTuple):
            key: str

            def _replace(self) -> None:
                pass


def test_a_nested_class_keeps_its_qualified_name() -> None:
    class Inner(NamedTuple):
        key: str

    assert Inner.__qualname__.endswith("<locals>.Inner")
    assert Inner("k").key == "k"
