"""What a directory's schema allows, checked before the first write.

A mapping that names an attribute the server does not know, one its object
classes do not allow, leaves out one they require, or sends several values
to a single-valued attribute would be refused entry by entry, half-way
through a run. Values are checked against the attribute's syntax where it
is strict (integers, booleans, IA5 and printable strings, numeric strings).
All of this is reported at once, before anything is written.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Schema"]

_SYNTAX = "1.3.6.1.4.1.1466.115.121.1."
_PRINTABLE = set(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:?="
)


class Schema:
    """The parts of an ldap3 schema that decide whether a write can succeed."""

    def __init__(self, schema: Any) -> None:
        self._types = schema.attribute_types
        self._classes = schema.object_classes

    def knows(self, attribute: str) -> bool:
        return attribute in self._types

    def canonical(self, attribute: str) -> str:
        return str(self._types[attribute].name[0]).lower()

    def single_valued(self, attribute: str) -> bool:
        return bool(self._types[attribute].single_value)

    def syntax(self, attribute: str) -> str | None:
        seen = set()
        while attribute in self._types and attribute not in seen:
            seen.add(attribute)
            info = self._types[attribute]
            if info.syntax:
                return str(info.syntax).split("{")[0]
            if not info.superior:
                return None
            attribute = info.superior[0]
        return None

    def allowed(self, classes: list[str]) -> tuple[set[str], dict[str, str]] | None:
        """(allowed attributes, required attribute -> its class), canonical
        names; None when a class allows anything (extensibleObject)."""
        allowed: set[str] = {"objectclass"}
        required: dict[str, str] = {}
        todo = list(classes)
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name.lower() in seen or name not in self._classes:
                continue
            seen.add(name.lower())
            if name.lower() == "extensibleobject":
                return None
            info = self._classes[name]
            for attribute in info.must_contain or []:
                if attribute in self._types:
                    required.setdefault(self.canonical(attribute), name)
            for attribute in [*(info.must_contain or []), *(info.may_contain or [])]:
                if attribute in self._types:
                    allowed.add(self.canonical(attribute))
            todo += list(info.superior or [])
        return allowed, required

    def problems(
        self, classes: list[str], attributes: dict[str, str], lists: set[str]
    ) -> list[str]:
        """What is wrong with writing ``attributes`` (field -> attribute;
        ``lists``: the fields holding several values) in entries of
        ``classes``."""
        found = [
            f"object class {c!r} is not in the schema"
            for c in classes
            if c not in self._classes
        ]
        unknown = {f: a for f, a in attributes.items() if not self.knows(a)}
        found += [
            f"field {f}: the directory has no attribute {a!r}"
            for f, a in unknown.items()
        ]
        if found:
            return found
        rules = self.allowed(classes)
        mapped = {self.canonical(a) for a in attributes.values()}
        if rules is not None:
            allowed, required = rules
            found += [
                f"field {f}: attribute {a!r} is not allowed in entries of "
                f"{', '.join(classes)}"
                for f, a in attributes.items()
                if self.canonical(a) not in allowed
            ]
            found += [
                f"entries of {cls} need the attribute {a!r}: map a field (or a "
                "computed value) to it"
                for a, cls in sorted(required.items())
                if a not in mapped and a != "objectclass"
            ]
        found += [
            f"field {f}: attribute {a!r} holds one value, the field is a list"
            for f, a in attributes.items()
            if f in lists and self.single_valued(a)
        ]
        return found

    def value_problem(self, attribute: str, value: str) -> str | None:
        """Why the directory would refuse ``value`` for ``attribute``, or None."""
        syntax = self.syntax(attribute)
        if syntax is None or not syntax.startswith(_SYNTAX):
            return None
        number = syntax[len(_SYNTAX) :]
        if number == "27" and not _is_integer(value):
            return f"{value!r} is not an integer, as {attribute} needs"
        if number == "7" and value not in ("TRUE", "FALSE"):
            return f"{value!r} is not TRUE or FALSE, as {attribute} needs"
        if number == "26" and not value.isascii():
            return f"{value!r} is not ASCII text, as {attribute} needs"
        if number == "44" and not set(value) <= _PRINTABLE:
            return f"{value!r} has characters {attribute} does not take"
        if number == "36" and not all(c.isdigit() or c == " " for c in value):
            return f"{value!r} is not digits and spaces, as {attribute} needs"
        return None


def _is_integer(text: str) -> bool:
    body = text[1:] if text.startswith("-") else text
    return body.isdigit() and body.isascii()
