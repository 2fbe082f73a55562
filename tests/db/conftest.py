"""Shared set-up for ``accord db``: a central database with a shop schema
(customers, orders pointing to them, a unique e-mail) registered on a
real hub process."""

from __future__ import annotations

from collections.abc import Callable

import pytest

pytest.importorskip("sqlalchemy")

from _dbs import Central, make_central


@pytest.fixture(params=["postgresql", "mariadb"])
def central(request, new_database, hub_server) -> Central:
    """A central database on PostgreSQL, then MariaDB."""
    return make_central(new_database, hub_server, request.param)


@pytest.fixture
def pg_central(new_database, hub_server) -> Central:
    return make_central(new_database, hub_server, "postgresql")


@pytest.fixture
def client(tmp_path, central) -> Callable[[str], str]:
    """``client(name)``: a SQLite node attached to ``central``; its URL."""
    import accord.db

    def attach(name: str) -> str:
        url = f"sqlite:///{tmp_path / (name + '.db')}"
        accord.db.attach(url, hub=central.hub, node=name, db=central.name)
        return url

    return attach
