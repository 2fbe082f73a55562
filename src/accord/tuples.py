"""``NamedTuple`` with ``typing``'s class syntax, made without ``typing``.

``typing.NamedTuple`` checks each field's annotation as it makes the class,
and with postponed annotations (``from __future__ import annotations``, as
in every accord module) that compiles each annotation's text: about a
million instructions a field, 15 million for ``accord.model`` alone, more
than the rest of the module; and importing ``typing`` costs about as much
again. accord's agent makes these classes at each start on the server
(``replicas/agent.py``), so the modules it runs make them here: the same
``collections.namedtuple`` class, with the annotations kept as written
(text). Type checkers see ``typing.NamedTuple`` itself. Standard library
only; runs on Python 3.8 and later.
"""

from __future__ import annotations

import collections

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    # as typing.NamedTupleMeta (Python 3.8 to 3.13): attributes a class
    # may not set, and those of the class statement left out
    _PROHIBITED = frozenset(
        (
            "__new__", "__init__", "__slots__", "__getnewargs__", "_fields",
            "_field_defaults", "_field_types", "_make", "_replace", "_asdict",
            "_source",
        )
    )  # fmt: skip
    _SPECIAL = frozenset(("__module__", "__name__", "__annotations__"))

    def _annotations(namespace: dict) -> dict:
        found = namespace.get("__annotations__")
        if found is None and "__annotate__" in namespace:
            # annotations made lazily (Python 3.14 without the future import)
            import annotationlib

            found = annotationlib.call_annotate_function(
                namespace["__annotate__"], annotationlib.Format.FORWARDREF
            )
        return dict(found or {})

    class _Maker(type):
        def __new__(cls, name: str, bases: tuple, namespace: dict) -> type:
            if not bases:  # NamedTuple itself
                return super().__new__(cls, name, bases, namespace)
            if bases != (NamedTuple,):
                raise TypeError("can only inherit from a NamedTuple type")
            types = _annotations(namespace)
            defaults: list[str] = []
            for field in types:
                if field in namespace:
                    defaults.append(field)
                elif defaults:
                    raise TypeError(
                        f"Non-default namedtuple field {field} cannot follow "
                        f"default field(s) {', '.join(defaults)}"
                    )
            made = collections.namedtuple(  # type: ignore[misc]
                name,
                list(types),
                defaults=[namespace[field] for field in defaults],
                module=namespace["__module__"],
            )
            made.__annotations__ = made.__new__.__annotations__ = types
            for key, value in namespace.items():
                if key in _PROHIBITED:
                    raise AttributeError(f"Cannot overwrite NamedTuple attribute {key}")
                if key not in _SPECIAL and key not in types:
                    setattr(made, key, value)
                    set_name = getattr(type(value), "__set_name__", None)
                    if set_name is not None:
                        set_name(value, made, key)
            return made

    class NamedTuple(metaclass=_Maker):
        """Base of a named tuple class (``class Entry(NamedTuple): ...``)."""


__all__ = ["NamedTuple"]
