"""Reading a directory: each entry's values as ldap3 gives them, decoded once
(``accord.records.ldap._decode_entries_lean``), against a real slapd."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import accord.records.ldap as ldap_place
from accord.records import load_mapping
from accord.records.ldap import LDAPPlace


@pytest.fixture
def people(slapd, monkeypatch, tmp_path: Path):
    """An ou of entries with what a read must keep exact: escaped names,
    non-ASCII text, several values, a missing attribute, bytes that are
    not UTF-8; and a place reading it (attribute names in other cases
    than the server's)."""
    name = f"read-{uuid.uuid4().hex[:6]}"
    ou = f"ou={name},{slapd.base}"
    conn = slapd.connection()
    assert conn.add(ou, ["organizationalUnit"], {"ou": name})
    entries: dict[str, dict[str, Any]] = {
        "a,b+c": {"givenName": "Zoë", "sn": "Müller", "mail": ["z@x", "a@x"]},
        "plain": {"sn": "Lovelace"},  # no givenName, no mail
        "bytes": {"givenName": "B", "sn": "Bytes", "userPassword": b"\xff\xfe\x00"},
        "=lead ": {"givenName": "  spaced  ", "sn": "S"},
    }
    for uid, attributes in entries.items():
        dn = f"uid={_escaped(uid)},{ou}"
        assert conn.add(dn, ["inetOrgPerson"], {"uid": uid, "cn": uid, **attributes}), (
            conn.result
        )
    monkeypatch.setenv("READ_LDAP_PASSWORD", slapd.password)
    mapping = tmp_path / "read.toml"
    (tmp_path / "people.csv").write_text("id,first,last,mails,secret\n")
    mapping.write_text(
        f"""
[entities.people]
key = ["id"]
fields = ["id", "first", "last", "mails", "secret"]
types = {{ mails = "list" }}
[entities.people.source]
url = "csv://{tmp_path / "people.csv"}"
[[entities.people.targets]]
url = "{slapd.url}"
base = "{ou}"
bind_dn = "{slapd.bind_dn}"
password_env = "READ_LDAP_PASSWORD"
page_size = 2
[entities.people.targets.columns]
id = "uid"
first = "givenname"
last = "SN"
mails = "mail"
secret = "userPassword"
[entities.people.targets.computed]
cn = "{{id}}"
"""
    )
    entity = load_mapping(mapping).entities["people"]
    target = entity.targets[0]
    try:
        yield LDAPPlace(target, entity, entity.target_fields(target))
    finally:
        conn.unbind()


def _escaped(value: str) -> str:
    import ldap3

    return ldap3.utils.dn.escape_rdn(value)


def test_entries_read_as_ldap3_gives_them(people: LDAPPlace, monkeypatch) -> None:
    lean = people.read()
    assert lean[("a,b+c",)]["first"] == "Zoë"
    assert lean[("a,b+c",)]["last"] == "Müller"
    assert lean[("a,b+c",)]["mails"] == ("a@x", "z@x")
    assert lean[("plain",)]["first"] is None and lean[("plain",)]["mails"] == ()
    assert lean[("=lead ",)]["first"] == "  spaced  "
    assert lean[("bytes",)]["secret"] == str(b"\xff\xfe\x00")  # as ldap3 gives it
    # the same records through ldap3's own decoding of every entry
    monkeypatch.setattr(ldap_place, "_decode_entries_lean", lambda conn: None)
    assert people.read() == lean


def test_a_ranged_entry_is_left_to_ldap3() -> None:
    """An entry holding a range of an attribute's values (Active Directory)
    is decoded by ldap3, which fetches the other ranges."""
    calls = []

    def standard(message: dict[str, Any]) -> dict[str, Any]:
        calls.append(message)
        return {"type": "searchResEntry"}

    conn = SimpleNamespace(
        strategy=SimpleNamespace(decode_response_fast=standard),
        empty_attributes=True,
    )
    ldap_place._decode_entries_lean(conn)

    def entry(name: bytes) -> dict[str, Any]:
        value = (0, False, 4, b"v")
        attribute = (0, True, 16, [(0, False, 4, name), (0, True, 17, [value])])
        payload = [(0, False, 4, b"cn=g,dc=x"), (0, True, 16, [attribute])]
        return {"protocolOp": 4, "payload": payload, "controls": None}

    assert conn.strategy.decode_response_fast(entry(b"Member"))["attributes"] == {
        "member": ["v"]
    }
    assert calls == []
    conn.strategy.decode_response_fast(entry(b"member;range=0-1499"))
    assert len(calls) == 1
    result = {"protocolOp": 5, "payload": [], "controls": None}
    conn.strategy.decode_response_fast(result)
    assert calls[-1] is result
