"""``NamedTuple`` classes that cost less to define than ``typing``'s.

``class Row(NamedTuple)`` with ``typing.NamedTuple`` checks each field's
annotation as it defines the class; in a module with ``from __future__
import annotations`` every annotation is a string, which ``typing`` turns
into a ``ForwardRef`` by compiling it: about 1.3 million instructions for
a class of five fields, against 0.44 million for the same class from
``collections.namedtuple``. A run imports about thirty such classes
before it lists anything (Python 3.11, callgrind: the engine's and
state's were 13 million instructions more of every run's start).

This ``NamedTuple`` makes the same class (``collections.namedtuple``'s,
with the class body's defaults, methods, docstring and ``__qualname__``,
and the same checks of field order and of names that cannot be
overwritten); only the annotations are kept as written (strings), not
checked: ``typing.get_type_hints`` reads both alike. Type checkers see
``typing.NamedTuple``.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

__all__ = ["NamedTuple"]

if TYPE_CHECKING:
    from typing import NamedTuple
else:
    #: as in ``typing``: names a class body may not define, and names it
    #: defines that are not copied onto the class
    _PROHIBITED = frozenset(
        {
            "__new__",
            "__init__",
            "__slots__",
            "__getnewargs__",
            "_fields",
            "_field_defaults",
            "_make",
            "_replace",
            "_asdict",
            "_source",
        }
    )
    _SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})

    class _Meta(type):
        def __new__(
            cls, typename: str, bases: tuple[type, ...], ns: dict[str, Any]
        ) -> type:
            if not bases:  # NamedTuple itself
                return super().__new__(cls, typename, bases, ns)
            if bases != (NamedTuple,):
                raise TypeError("can only inherit from a NamedTuple type")
            fields = dict(ns.get("__annotations__", {}))
            named = []  # the fields with a default
            for name in fields:
                if name in ns:
                    named.append(name)
                elif named:
                    raise TypeError(
                        f"Non-default namedtuple field {name} cannot follow "
                        f"default field{'s' if len(named) > 1 else ''} "
                        f"{', '.join(named)}"
                    )
            made = collections.namedtuple(
                typename,
                list(fields),
                defaults=[ns[name] for name in named],
                module=ns["__module__"],
            )
            made.__annotations__ = made.__new__.__annotations__ = fields
            for key, value in ns.items():
                if key in _PROHIBITED:
                    raise AttributeError("Cannot overwrite NamedTuple attribute " + key)
                if key not in _SPECIAL and key not in made._fields:
                    setattr(made, key, value)
            return made

    class NamedTuple(metaclass=_Meta):
        """Subclass it as ``typing.NamedTuple``: the class made is a
        ``collections.namedtuple`` (a ``tuple``), not a subclass of this."""
