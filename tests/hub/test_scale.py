"""Two `accord hub serve` processes over one PostgreSQL database and one
S3 bucket (moto) serve the same collections consistently."""

from __future__ import annotations

import io
import os
import threading
import uuid

import pytest
import sqlalchemy as sa
from _hubs import admin, as_machine

import accord
from accord.errors import PermissionDenied, PreconditionFailed
from accord.hub import init_hub
from accord.model import Entry
from accord.registry import open_replica
from accord.replicas.hub_client import login

pytestmark = pytest.mark.slow
SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


@pytest.fixture
def database():
    """A PostgreSQL database of its own, dropped afterwards."""
    name = "accord_hub_" + uuid.uuid4().hex[:10]
    engine = sa.create_engine(f"{SERVER}/test", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError as exc:
        from fixtures._servers import unavailable

        unavailable(f"PostgreSQL is not reachable on 127.0.0.1:5432: {exc}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}'"
            )
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        engine.dispose()


def test_two_hub_processes_share_one_postgresql_and_one_s3(
    tmp_path, database, s3_server
) -> None:
    from fixtures.hub import HubProcess

    blobs = f"s3://{s3_server.bucket}/hub-{uuid.uuid4().hex[:8]}?endpoint_url={s3_server.endpoint}"
    folder = tmp_path / "hub"
    _, token = init_hub(folder, db=database, blobs=blobs)
    first = HubProcess(folder).start()
    second = HubProcess(folder).start()
    credentials = tmp_path / "admin.json"
    try:
        with as_machine(credentials):
            login(first.base, "admin", token, node_name="via-first")
            login(second.base, "admin", token, node_name="via-second")
            one, two = tmp_path / "one", tmp_path / "two"
            one.mkdir()
            for number in range(200):
                (one / f"f{number:03}.txt").write_text(f"{number}\n")
            (one / "big.bin").write_bytes(os.urandom(9 << 20))
            assert accord.sync(str(one), first.place("shared")).ok
            assert accord.sync(str(two), second.place("shared")).ok
            (two / "from-two.txt").write_text("two\n")
            assert accord.sync(str(two), second.place("shared")).ok
            assert accord.sync(str(one), first.place("shared")).ok
            assert sorted(p.name for p in one.iterdir() if p.is_file()) == sorted(
                p.name for p in two.iterdir() if p.is_file()
            )
            assert (one / "big.bin").read_bytes() == (two / "big.bin").read_bytes()
            lost = racing_writers(first, second)
            assert lost == []
            # a node revoked through one process is refused by the other
            with admin(second) as boss:
                me = boss.api("GET", "/whoami")
            with admin(first) as boss:
                boss.revoke_node(me["node"])
            with (
                admin(second) as boss,
                pytest.raises(PermissionDenied, match="revoked"),
            ):
                boss.api("GET", "/whoami")
    finally:
        first.stop()
        second.stop()


def racing_writers(first, second) -> list[str]:
    """Four threads, two through each process, each replacing one item
    with the version it last saw. Every accepted write must be one step of
    a single chain: a write that replaced a version another writer had
    already replaced would be a lost update."""
    places = []
    for hub in (first, second, first, second):
        place = open_replica(hub.place("race"))
        place.open(create=True)
        places.append(place)
    first_entry = places[0].write(
        "n.txt", io.BytesIO(b"0"), like=Entry("n.txt", "file", 1, 1, 0o644), expect=None
    )
    accepted: list[tuple[str, str]] = []  # (replaced version, new version)
    lock = threading.Lock()

    def writer(place, number: int) -> None:
        for attempt in range(25):
            current = place.stat("n.txt")
            data = f"{number}-{attempt}".encode()
            like = Entry("n.txt", "file", len(data), 1, 0o644)
            try:
                new = place.write("n.txt", io.BytesIO(data), like=like, expect=current)
            except PreconditionFailed:
                continue
            with lock:
                accepted.append((current.version, new.version))

    threads = [
        threading.Thread(target=writer, args=(p, n)) for n, p in enumerate(places)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for place in places:
        place.close()
    assert len(accepted) >= 10, accepted
    replaced = [old for old, _ in accepted]
    lost = [old for old in set(replaced) if replaced.count(old) > 1]
    chain = {old: new for old, new in accepted}
    version, steps = first_entry.version, 0
    while version in chain:
        version, steps = chain[version], steps + 1
    if steps != len(accepted):
        lost.append(f"chain of {steps} steps for {len(accepted)} accepted writes")
    return lost
