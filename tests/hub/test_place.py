"""A hub collection opened inside the hub's process (the dashboard's syncs)
passes the same conformance suite as every place."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from accord.hub import init_hub, open_hub
from accord.hub import schema as t
from accord.hub.accounts import Account
from accord.hub.place import CollectionPlace
from accord.testing.contract import ReplicaContract, Surroundings


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hubstore")
    init_hub(folder)
    hub = open_hub(folder)
    yield hub
    hub.close()


def _admin(hub) -> Account:
    import sqlalchemy as sa

    with hub.reader.connect() as conn:
        row = conn.execute(sa.select(t.users).where(t.users.c.name == "admin")).one()
    return Account(row.id, row.name, True, None, "session")


class TestCollectionPlace(ReplicaContract):
    @pytest.fixture
    def place_url(self) -> str:
        return "c" + uuid.uuid4().hex[:10]

    @pytest.fixture
    def place(self, store, place_url):
        replica = CollectionPlace(store, _admin(store), place_url)
        replica.open(create=True)
        try:
            yield replica
        finally:
            replica.close()

    @pytest.fixture
    def surroundings(self, store):
        def snapshot() -> dict[str, Any]:
            import sqlalchemy as sa

            with store.reader.connect() as conn:
                rows = conn.execute(sa.select(t.items).order_by("key")).all()
                trash = conn.execute(sa.select(t.trash).order_by("id")).all()
            blobs = store.folder / "blobs"
            return {
                "items": [tuple(r) for r in rows],
                "trash": [tuple(r) for r in trash],
                "blobs": sorted(str(p) for p in blobs.rglob("*") if p.is_file()),
            }

        return Surroundings(snapshot, "/escape.txt", outside=("../../outside", "/tmp"))


def test_a_read_grant_gives_a_read_only_place(store) -> None:
    from accord.hub import accounts, items

    name = "r" + uuid.uuid4().hex[:8]
    with store.writer.begin() as conn:
        accounts.add_user(conn, name)
        col = items.collection(conn, _admin(store), name, create=True)
        accounts.grant(conn, name, col.id, "read")
        user = accounts.find_user(conn, name)
    place = CollectionPlace(store, Account(user.id, name, False), name)
    place.open()
    assert place.capabilities.read_only
    other = CollectionPlace(store, Account(user.id, name, False), "nope" + name)
    from accord.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        other.open()
