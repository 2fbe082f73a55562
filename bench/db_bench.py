"""accord db: SQL replication through a hub, against the raw write limit.

    python bench/db_bench.py                     # 100,000 changed rows, 1M no-op
    python bench/db_bench.py --rows 10000 --big 100000   # a quick check

A fresh `accord hub serve` (SQLite store) on loopback, a fresh PostgreSQL
database (127.0.0.1:5432, user postgres) as the central database, SQLite
files as nodes; table ``items (id INTEGER PRIMARY KEY, name VARCHAR(40),
qty INTEGER, price NUMERIC(12,2), at TIMESTAMP)``.

* ``attach``: the first copy of 10,000 central rows into an empty node.
* ``push``: ``--rows`` rows inserted on a node (not timed), then
  ``accord.db.push``; against the raw limit, ``executemany`` of the same
  rows into the same PostgreSQL database (an empty copy of the table);
  the ratio is raw time / accord time (1 would be as fast as the raw
  insert).
* ``pull``: another node pulls those rows; against ``executemany`` of the
  same rows into an empty table of a SQLite file.
* ``sync 100``: 100 rows changed on a node, then ``accord.db.sync``.
* ``no-op``: a node attached to a central table of ``--big`` rows (loaded
  with COPY), then ``accord.db.sync`` with nothing to do (median of 5).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
TABLE = (
    "CREATE TABLE {name} (id INTEGER PRIMARY KEY, name VARCHAR(40), qty INTEGER,"
    " price NUMERIC(12, 2), at TIMESTAMP)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rows(start: int, count: int) -> list[tuple]:
    at = dt.datetime(2026, 1, 1, 12, 0)
    return [
        (i, f"item {i}", i % 97, Decimal(i % 10000) / 100, at)
        for i in range(start, start + count)
    ]


def admin_engine():
    import sqlalchemy as sa

    return sa.create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")


def new_database() -> str:
    name = "accord_bench_" + uuid.uuid4().hex[:8]
    with admin_engine().connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    return name


def drop_database(name: str) -> None:
    with admin_engine().connect() as conn:
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}'"
        )
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")


class Hub:
    def __init__(self, folder: Path) -> None:
        from accord.hub import init_hub
        from accord.replicas.hub_client import login

        os.environ["ACCORD_HUB_CREDENTIALS"] = str(folder / "hubs.json")
        _, token = init_hub(folder / "hub")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(folder / "serve.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "accord",
                "hub",
                "serve",
                str(folder / "hub"),
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            stdout=self.log,
            stderr=self.log,
        )
        import httpx

        for _ in range(300):
            try:
                httpx.get(self.base + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        login(self.base, "admin", token, node_name="bench")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


def timed(func, *args, **kw) -> tuple[float, object]:
    started = time.perf_counter()
    result = func(*args, **kw)
    return time.perf_counter() - started, result


def raw_pg(db: str, data: list[tuple]) -> float:
    import sqlalchemy as sa

    engine = sa.create_engine(f"{SERVER}/{db}")
    with engine.begin() as conn:
        conn.exec_driver_sql(TABLE.format(name="raw_items"))
    table = sa.Table("raw_items", sa.MetaData(), autoload_with=engine)
    params = [
        dict(zip(("id", "name", "qty", "price", "at"), r, strict=True)) for r in data
    ]
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(table.insert(), params)
    took = time.perf_counter() - started
    engine.dispose()
    return took


def raw_sqlite(path: Path, data: list[tuple]) -> float:
    db = sqlite3.connect(path)
    db.execute(TABLE.format(name="items"))
    text = [(i, n, q, str(p), a.isoformat(" ")) for i, n, q, p, a in data]
    started = time.perf_counter()
    db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?)", text)
    db.commit()
    took = time.perf_counter() - started
    db.close()
    return took


def fill_node(url: str, data: list[tuple]) -> None:
    db = sqlite3.connect(url[len("sqlite:///") :])
    text = [(i, n, q, str(p), a.isoformat(" ")) for i, n, q, p, a in data]
    db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?)", text)
    db.commit()
    db.close()


def copy_in(db: str, count: int) -> None:
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{db}") as conn:
        with conn.cursor() as cur, cur.copy("COPY items FROM STDIN") as copy:
            for start in range(1, count + 1, 100_000):
                for row in rows(start, min(100_000, count + 1 - start)):
                    copy.write_row(row)
        conn.commit()


def central(hub: Hub, db: str, name: str, preload: int = 0) -> None:
    import sqlalchemy as sa

    import accord.db

    engine = sa.create_engine(f"{SERVER}/{db}")
    with engine.begin() as conn:
        conn.exec_driver_sql(TABLE.format(name="items"))
    engine.dispose()
    if preload:
        copy_in(db, preload)
    accord.db.init(
        f"postgresql://postgres@127.0.0.1:5432/{db}",
        hub=hub.base,
        tables=["items"],
        name=name,
    )


def main() -> None:
    import accord.db

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="accord-db-bench-"))
    hub = Hub(folder)
    made = []
    try:
        db = new_database()
        made.append(db)
        central(hub, db, "bench", preload=10_000)
        first = f"sqlite:///{folder / 'first.db'}"
        took, _ = timed(accord.db.attach, first, hub=hub.base, node="first", db="bench")
        print(f"attach, 10,000 rows: {took:.2f} s ({10_000 / took:,.0f} rows/s)")

        data = rows(1_000_001, args.rows)
        fill_node(first, data)
        took, _ = timed(accord.db.push, first)
        raw = raw_pg(db, data)
        print(
            f"push, {args.rows:,} rows: {took:.2f} s ({args.rows / took:,.0f} rows/s); "
            f"raw executemany into PostgreSQL {raw:.2f} s "
            f"({args.rows / raw:,.0f} rows/s); ratio {raw / took:.2f}"
        )

        second = f"sqlite:///{folder / 'second.db'}"
        accord.db.attach(
            second, hub=hub.base, node="second", db="bench", discard_local=True
        )
        fill = rows(2_000_001, args.rows)
        fill_node(first, fill)
        accord.db.push(first)
        took, _ = timed(accord.db.pull, second)
        raw = raw_sqlite(folder / "raw.db", fill)
        print(
            f"pull, {args.rows:,} rows: {took:.2f} s ({args.rows / took:,.0f} rows/s); "
            f"raw executemany into SQLite {raw:.2f} s "
            f"({args.rows / raw:,.0f} rows/s); ratio {raw / took:.2f}"
        )

        sqlite3.connect(first[10:]).executescript(
            "UPDATE items SET qty = qty + 1 WHERE id <= 100;"
        ).close()
        took, _ = timed(accord.db.sync, first)
        print(f"sync, 100 changed rows: {took:.3f} s")

        big = new_database()
        made.append(big)
        started = time.perf_counter()
        central(hub, big, "big", preload=args.big)
        loaded = time.perf_counter() - started
        node = f"sqlite:///{folder / 'big.db'}"
        took, _ = timed(accord.db.attach, node, hub=hub.base, node="big", db="big")
        print(
            f"{args.big:,} rows: COPY + init {loaded:.1f} s; attach {took:.1f} s "
            f"({args.big / took:,.0f} rows/s)"
        )
        times = [timed(accord.db.sync, node)[0] for _ in range(5)]
        print(
            f"no-op sync of {args.big:,} rows: median {statistics.median(times):.3f} s "
            f"(min {min(times):.3f}, max {max(times):.3f})"
        )
    finally:
        hub.stop()
        for name in made:
            drop_database(name)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
