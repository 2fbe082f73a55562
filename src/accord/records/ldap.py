"""An LDAP directory as a record place (``ldap://`` / ``ldaps://``, ldap3).

Target options in the mapping::

    [[entities.students.targets]]
    url = "ldap://ldap.school.example"
    base = "ou=students,dc=school,dc=example"
    rdn = "uid"                                  # the attribute naming an entry
    object_classes = ["inetOrgPerson"]
    filter = "(objectClass=inetOrgPerson)"
    bind_dn = "cn=admin,dc=school,dc=example"
    password_env = "LDAP_PASSWORD"               # or password_file = "/etc/..."
    columns = { student_id = "uid", first_name = "givenName", last_name = "sn" }

Entries are searched one level below ``base``. An update replaces each
changed attribute by deleting its old value and adding the new one in one
modify request: if the entry changed behind our back, the old value is not
there, the server refuses the whole request, and the record is left alone.
"""

from __future__ import annotations

import os
from typing import Any

from accord.errors import ConfigError, MissingDependency, Unreachable
from accord.keys import shown
from accord.records.mapping import Entity, PlaceSpec
from accord.records.values import to_text

__all__ = ["LDAPPlace"]

Key = tuple[Any, ...]


class LDAPPlace:
    def __init__(self, spec: PlaceSpec, entity: Entity, fields: tuple[str, ...]):
        try:
            import ldap3
        except ImportError as exc:
            raise MissingDependency(
                "LDAP places need ldap3", hint="pip install 'accord[records]'"
            ) from exc
        self.ldap3 = ldap3
        self.spec, self.entity, self.fields = spec, entity, fields
        options = spec.options
        self.base = options.get("base")
        if not self.base:
            raise ConfigError(f"{spec.url}: an LDAP place needs base = ...")
        self.rdn = options.get("rdn", "uid")
        self.classes = list(options.get("object_classes", ["inetOrgPerson"]))
        self.filter = options.get("filter", "(objectClass=*)")
        self.label = f"{spec.url}/{self.base}"
        self._options = options
        self._connect(options).unbind()  # fail early: bad URL or credentials
        self.conn: Any = None

    def _connect(self, options: dict[str, Any]) -> Any:
        password = None
        if options.get("password_env"):
            password = os.environ.get(options["password_env"])
            if password is None:
                raise ConfigError(
                    f"{self.label}: ${options['password_env']} is not set",
                    hint="export it, or use password_file = ...",
                )
        elif options.get("password_file"):
            try:
                with open(os.path.expanduser(options["password_file"])) as handle:
                    password = handle.read().strip()
            except OSError as exc:
                raise ConfigError(f"cannot read the LDAP password: {exc}") from None
        ldap3 = self.ldap3
        try:
            server = ldap3.Server(self.spec.url, connect_timeout=10)
            conn = ldap3.Connection(
                server,
                user=options.get("bind_dn"),
                password=password,
                raise_exceptions=False,
                receive_timeout=30,
            )
            if not conn.bind():
                who = options.get("bind_dn") or "anonymous"
                why = conn.result.get("description")
                raise ConfigError(
                    f"{self.label}: the directory refused the bind as {who} ({why})",
                    hint="check bind_dn and the password",
                )
        except ldap3.core.exceptions.LDAPException as exc:
            raise Unreachable(
                f"cannot reach {self.spec.url}: {exc}", where=self.label
            ) from None
        return conn

    def _attr(self, name: str) -> str:
        return self.spec.column(name)

    def _dn(self, record: dict[str, Any]) -> str:
        field_name = next((f for f in self.fields if self._attr(f) == self.rdn), None)
        if field_name is None:
            raise ConfigError(f"{self.label}: no field maps to the rdn {self.rdn!r}")
        text = to_text(record[field_name])
        if not text.strip() or "\0" in text:  # escape_rdn keeps the rest inside base
            raise ConfigError(
                f"{self.label}: {field_name} = {shown(text)} cannot name an LDAP "
                "entry (it is empty or holds a NUL)",
                hint="fix that record in the source, then run again",
            )
        value = self.ldap3.utils.dn.escape_rdn(text)
        return f"{self.rdn}={value},{self.base}"

    def read(self) -> dict[Key, dict[str, Any]]:
        """Every entry one level below ``base`` (one connection per call)."""
        self.conn = self._connect(self._options)
        try:
            return self._read()
        finally:
            self.conn.unbind()

    def _read(self) -> dict[Key, dict[str, Any]]:
        from accord.records.places import _keyed

        attrs = [self._attr(f) for f in self.fields]
        entries = self.conn.extend.standard.paged_search(
            self.base,
            self.filter,
            search_scope=self.ldap3.LEVEL,
            attributes=attrs,
            paged_size=500,
            generator=True,
        )
        rows = []
        for entry in entries:
            if entry.get("type") != "searchResEntry":
                continue
            found = entry["attributes"]
            raw = {}
            for name in self.fields:
                value = found.get(self._attr(name))
                if isinstance(value, list) and self.entity.types.get(name) != "list":
                    value = value[0] if value else None
                raw[name] = value
            rows.append((entry["dn"], raw))
        return _keyed(self.entity, rows, self.fields, self.label)

    def _values(self, name: str, value: Any) -> list[str]:
        if value in (None, ()):
            return []
        if isinstance(value, tuple):
            return list(value)
        return [to_text(value)]

    def apply(
        self,
        creates: list[dict[str, Any]],
        updates: list[tuple[Key, dict, dict]],
        deletes: list[tuple[Key, dict]],
    ) -> list[tuple[Key, str]]:
        """Updates, deletes, then creates, on one connection."""
        self.conn = self._connect(self._options)
        try:
            return self._apply(creates, updates, deletes)
        finally:
            self.conn.unbind()

    def _apply(
        self,
        creates: list[dict[str, Any]],
        updates: list[tuple[Key, dict, dict]],
        deletes: list[tuple[Key, dict]],
    ) -> list[tuple[Key, str]]:
        ldap3 = self.ldap3
        skipped: list[tuple[Key, str]] = []
        for key, before, changes in updates:
            modify: dict[str, list[tuple[Any, list[str]]]] = {}
            for name, new in changes.items():
                old = self._values(name, before.get(name))
                steps = []
                if old:
                    steps.append((ldap3.MODIFY_DELETE, old))
                if self._values(name, new):
                    steps.append((ldap3.MODIFY_ADD, self._values(name, new)))
                modify[self._attr(name)] = steps
            if not self.conn.modify(self._dn(before), modify):
                skipped.append(
                    (
                        key,
                        f"changed since it was read; left alone "
                        f"({self.conn.result.get('description')})",
                    )
                )
        for key, before in deletes:
            if not self.conn.delete(self._dn(before)):
                skipped.append(
                    (key, f"not deleted ({self.conn.result.get('description')})")
                )
        for record in creates:
            attrs = {
                self._attr(n): self._values(n, v)
                for n, v in record.items()
                if self._values(n, v)
            }
            if not self.conn.add(self._dn(record), self.classes, attrs):
                key = tuple(record[k] for k in self.entity.key)
                skipped.append(
                    (
                        key,
                        f"not created ({self.conn.result.get('description')}: "
                        f"{self.conn.result.get('message')})",
                    )
                )
        return skipped
