"""A record's key that becomes part of an LDAP entry's name stays one value
under the base: escaped, and refused when it cannot name an entry."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from accord.errors import ConfigError
from accord.records.ldap import LDAPPlace


def _place() -> LDAPPlace:
    """An LDAP place without a server: only its naming is used here."""
    import ldap3

    place = LDAPPlace.__new__(LDAPPlace)
    place.ldap3 = ldap3
    place.fields = ("uid",)
    place.rdn = "uid"
    place.base = "ou=students,dc=school"
    place.label = "ldap://directory/ou=students,dc=school"
    place.spec = SimpleNamespace(column=lambda name: name)  # type: ignore[assignment]
    return place


def test_a_key_stays_one_value_below_the_base() -> None:
    dn = _place()._dn({"uid": "x,ou=admins,dc=school"})
    assert dn == "uid=x\\,ou\\=admins\\,dc\\=school,ou=students,dc=school"


@pytest.mark.parametrize("value", ["", "  ", "a\0b"])
def test_a_key_that_cannot_name_an_entry_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="cannot name an LDAP entry"):
        _place()._dn({"uid": value})
