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

import base64
import contextlib
import os
from typing import Any

from accord.errors import (
    BadData,
    ConfigError,
    MissingDependency,
    PreconditionFailed,
    ReplicaError,
    Unreachable,
    connection_reason,
)
from accord.keys import shown
from accord.records.kept import kept_whole, read_whole
from accord.records.ldapschema import Schema
from accord.records.mapping import Entity, PlaceSpec
from accord.records.rows import Rows, collect
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
        conn = self._connect(options, schema=True)  # fail early: URL, password
        conn.unbind()
        self.schema = Schema(conn.server.schema) if conn.server.schema else None
        self._check_mapping()
        self.conn: Any = None

    def _check_mapping(self) -> None:
        """Attributes the schema does not know or allow: refused now, before
        anything is written anywhere."""
        attributes = {f: self._attr(f) for f in self.fields}
        problems = []
        if self.rdn.lower() not in {a.lower() for a in attributes.values()}:
            problems.append(f"no field maps to the rdn attribute {self.rdn!r}")
        if self.schema is not None:
            lists = {f for f in self.fields if self.entity.types.get(f) == "list"}
            problems += self.schema.problems(self.classes, attributes, lists)
        if problems:
            raise BadData(
                self.label,
                problems,
                hint="fix the mapping's columns and object_classes for this directory",
            )

    def check(self, actions: list[Any]) -> list[str]:
        """Values the directory's schema would refuse, found before writing."""
        if self.schema is None:
            return []
        problems = []
        for action in actions:
            if action.op == "delete":
                continue
            key = "/".join(to_text(part) for part in action.key)
            for name, value in (action.after or {}).items():
                attribute = self._attr(name)
                if not self.schema.knows(attribute):
                    continue
                for text in self._values(name, value):
                    why = self.schema.value_problem(attribute, text)
                    if why:
                        problems.append(f"{self.label}: {key}: field {name}: {why}")
        return problems

    def _connect(self, options: dict[str, Any], schema: bool = False) -> Any:
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
        conn = None
        try:
            server = ldap3.Server(
                self.spec.url,
                connect_timeout=10,
                get_info=ldap3.SCHEMA if schema else ldap3.NONE,
            )
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
            socket = getattr(conn, "socket", None)
            if socket is not None:  # ldap3 leaves a failed connect's open
                socket.close()
            raise Unreachable(
                f"cannot reach {self.spec.url}: {connection_reason(exc) or exc}",
                where=self.label,
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

    def read_rows(self) -> Rows:
        """Every entry one level below ``base`` (one connection per call)."""
        self.close()
        self.conn = self._connect(self._options)
        try:
            return self._read()
        finally:
            self.close()

    def read(self) -> dict[Key, dict[str, Any]]:
        return self.read_rows().records()

    def _read(self) -> Rows:
        attrs = [self._attr(f) for f in self.fields]
        _decode_entries_lean(self.conn)
        entries = self.conn.extend.standard.paged_search(
            self.base,
            self.filter,
            search_scope=self.ldap3.LEVEL,
            attributes=attrs,
            paged_size=int(self.spec.options.get("page_size", 500)),
            generator=True,
        )
        rows = []
        dns = []
        wanted = [
            (attr.lower(), self.entity.types.get(name) == "list")
            for attr, name in zip(attrs, self.fields, strict=True)
        ]
        for entry in entries:
            if entry.get("type") != "searchResEntry":
                continue
            found = entry["attributes"]
            values = []
            for attr, is_list in wanted:
                value = found.get(attr)
                if isinstance(value, list) and not is_list:
                    value = value[0] if value else None
                values.append(value)
            rows.append(values)
            dns.append(entry["dn"])
        return collect(self.entity, self.fields, self.label, rows, dns)

    def _values(self, name: str, value: Any) -> list[str]:
        if value in (None, ()):
            return []
        if isinstance(value, tuple):
            return list(value)
        return [to_text(value)]

    def change(self, op: str, key: Key, before: Any, after: Any) -> None:
        """One change, at once (each request is atomic on the server):
        PreconditionFailed when the entry is not as expected."""
        conn = self._changing()
        if op == "create":
            if not conn.add(self._dn(after), self.classes, self._attributes(after)):
                self._refused(key, "not created", exists=True)
            return
        if op == "delete":
            if not conn.delete(self._dn(before)):
                self._refused(key, "not deleted")
            return
        if not conn.modify(self._dn(before), self._modify(before, after)):
            self._refused(key, "changed since it was read; left alone")

    def _changing(self) -> Any:
        """The connection changes go through (opened on first use)."""
        if self.conn is None:
            self.conn = self._connect(self._options)
        return self.conn

    def _attributes(self, record: dict[str, Any]) -> dict[str, list[str]]:
        """A new entry's attributes: each mapped field that has a value."""
        return {
            self._attr(n): self._values(n, v)
            for n, v in record.items()
            if self._values(n, v)
        }

    def _modify(
        self, before: dict[str, Any], after: dict[str, Any]
    ) -> dict[str, list[tuple[Any, list[Any]]]]:
        """The modify request of an update: each changed attribute's old
        values deleted (refused if they are not there: changed behind our
        back) and its new ones added."""
        ldap3 = self.ldap3
        modify: dict[str, list[tuple[Any, list[Any]]]] = {}
        for name, new in after.items():
            old = self._values(name, before.get(name))
            steps = []
            if old:
                steps.append((ldap3.MODIFY_DELETE, old))
            if self._values(name, new):
                steps.append((ldap3.MODIFY_ADD, self._values(name, new)))
            modify[self._attr(name)] = steps
        return modify

    def keep_whole(self, key: Key, before: dict[str, Any]) -> str | None:
        """The entry a delete is about to remove, every user attribute of it
        (the mapping may name only some: other object classes, a password,
        a photo), as the trash keeps it (an ``accord.records.kept`` text).
        None when it is not there (the delete then says so)."""
        conn, ldap3 = self._changing(), self.ldap3
        dn = self._dn(before)
        if not conn.search(
            dn, "(objectClass=*)", ldap3.BASE, attributes=[ldap3.ALL_ATTRIBUTES]
        ):
            result = conn.result
            if result.get("description") == "noSuchObject":
                return None
            why = f"{result.get('description')}: {result.get('message')}".rstrip(": ")
            raise ReplicaError(
                f"could not read the entry to keep it in the trash ({why}); "
                "not deleted",
                where=self.label,
            )
        found = next(r for r in conn.response if r.get("type") == "searchResEntry")
        attributes = {
            name: [_kept_value(value) for value in values]
            for name, values in found["raw_attributes"].items()
        }
        return kept_whole("ldap", {"dn": found["dn"], "attributes": attributes})

    def put_back(
        self, key: Key, before: dict[str, Any] | None, record: dict[str, Any], kept: str
    ) -> None:
        """A record restored from the trash with its whole entry (``kept``):
        added with every attribute it had, or, over the entry that holds
        its key now (``before``: its record, as expected there; the trash
        keeps it whole first), the mapped attributes changed as ``change``
        does, the others and the object classes replaced by the kept ones,
        and those the kept entry did not have removed, in one request: the
        entry is as it was."""
        whole = read_whole(kept, "ldap")
        changes = record
        if before is not None:
            changes = {n: v for n, v in record.items() if before.get(n) != v}
        if whole is None:
            if changes:
                self.change("update" if before else "create", key, before, changes)
            return
        mapped = {self._attr(name).lower() for name in record}
        others = {
            name: [_read_value(value) for value in values]
            for name, values in whole["attributes"].items()
            if name.lower() not in mapped
        }
        conn = self._changing()
        if before is None:
            attrs = {**others, **self._attributes(record)}
            classes = attrs.pop(
                next((n for n in attrs if n.lower() == "objectclass"), ""),
                self.classes,
            )
            if not conn.add(self._dn(record), classes, attrs):
                self._refused(key, "not restored", exists=True)
            return
        dn = self._dn(before)
        modify = self._modify(before, changes)
        for name, values in others.items():
            if name.lower() != self.rdn.lower():
                modify[name] = [(self.ldap3.MODIFY_REPLACE, values)]
        kept_names = {name.lower() for name in whole["attributes"]} | mapped
        for name in self._attribute_names(dn, key):
            if name.lower() not in kept_names and name.lower() != self.rdn.lower():
                modify[name] = [(self.ldap3.MODIFY_DELETE, [])]
        if not conn.modify(dn, modify):
            self._refused(key, "changed since it was read; left alone")

    def _attribute_names(self, dn: str, key: Key) -> list[str]:
        """The user attributes the entry ``dn`` holds now (names only)."""
        conn, ldap3 = self._changing(), self.ldap3
        if not conn.search(
            dn,
            "(objectClass=*)",
            ldap3.BASE,
            attributes=[ldap3.ALL_ATTRIBUTES],
            types_only=True,
        ):
            self._refused(key, "changed since it was read; left alone")
        found = next(r for r in conn.response if r.get("type") == "searchResEntry")
        return list(found["raw_attributes"])

    def _refused(self, key: Key, what: str, exists: bool = False) -> None:
        result = self.conn.result
        why = f"{result.get('description')}: {result.get('message')}".rstrip(": ")
        stale = result.get("description") in (
            "noSuchObject",
            "noSuchAttribute",
            "attributeOrValueExists",
        ) or (exists and result.get("description") == "entryAlreadyExists")
        error = PreconditionFailed if stale or "changed" in what else ReplicaError
        raise error(f"{what} ({why})", where=self.label)

    def commit(self) -> None:
        """Every change is already on the server."""

    def rollback(self) -> None:
        self.close()

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.unbind()
            self.conn = None


def _kept_value(raw: bytes) -> Any:
    """An attribute's value as the trash keeps it: its text, or its bytes
    (a photo, a certificate) as ``{"bytes": BASE64}``."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"bytes": base64.b64encode(raw).decode("ascii")}


def _read_value(kept: Any) -> Any:
    """The value ``_kept_value`` kept."""
    return base64.b64decode(kept["bytes"]) if isinstance(kept, dict) else kept


def _decode_entries_lean(conn: Any) -> None:
    """Make ``conn`` (a connection of its own, for one read) decode each
    search result entry into its DN and {attribute name, lower case: values}.

    ldap3 makes two dicts of every entry (its raw values, and its values
    formatted through the schema, looking up its settings for each value),
    which took about two thirds of a read's CPU; a read needs the values
    once. Each value is what ldap3 gives without a schema (accord reads
    without one): its UTF-8 text, or its bytes when it is not UTF-8; the
    DN as ldap3 decodes it. Every other message (the result, with the
    paged search's cookie), and an entry holding a range of values, is
    decoded by ldap3 itself."""
    conn.empty_attributes = False  # an attribute not returned: not there
    strategy = conn.strategy
    standard = strategy.decode_response_fast
    from ldap3.utils.config import get_config_parameter
    from ldap3.utils.conv import to_unicode

    encoding = get_config_parameter("DEFAULT_SERVER_ENCODING")
    names: dict[bytes, str] = {}  # each attribute name's bytes, decoded once

    def text(raw: bytes) -> str:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:  # ldap3 tries its other encodings
            return to_unicode(raw, from_server=True)

    def decode(message: dict[str, Any]) -> dict[str, Any]:
        if message["protocolOp"] != 4:  # not a searchResEntry
            return standard(message)
        dn_part, attributes_part = message["payload"][:2]
        found: dict[str, list[Any]] = {}
        for attribute in attributes_part[3]:
            name_part, values_part = attribute[3]
            values: list[Any] = []
            for value in values_part[3] or ():
                raw = value[3]
                try:
                    values.append(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    values.append(bytes(raw))
            name = names.get(name_part[3])
            if name is None:
                name = names[name_part[3]] = text(name_part[3]).lower()
            if ";range=" in name:  # a value range (AD): ldap3 fetches the rest
                return standard(message)
            found[name] = values
        return {
            "type": "searchResEntry",
            "dn": text(dn_part[3]),
            "raw_attributes": found,  # what ldap3 looks at after a search
            "attributes": found,
        }

    strategy.decode_response_fast = decode
