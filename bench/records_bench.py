"""accord records against a pandas merge, on the same CSV and SQL table.

    python bench/records_bench.py --rows 1000000     # 1% of the rows differ
    python bench/records_bench.py --rows 100000

Generates a CSV of N student rows and a SQLite table holding the same rows
with 1% different (0.5% updated, 0.25% missing, 0.25% extra), then, each in
its own process (so peak memory is each one's own): accord's plan (read,
validate, convert, reconcile), accord's plan and apply, and a
straightforward pandas diff (read_csv, read_sql, an outer merge on the key,
the changed rows). Prints seconds and peak RSS, and the ratio
pandas / accord (above 1: accord is faster).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLUMNS = ("id", "first", "last", "class", "born", "active")


def generate(folder: Path, rows: int) -> tuple[Path, Path]:
    rng = random.Random(1)
    csv_path, db_path = folder / "students.csv", folder / "lms.db"
    db = sqlite3.connect(db_path)
    db.execute(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, first TEXT, last TEXT,"
        " class TEXT, born TEXT, active INTEGER)"
    )
    batch = []
    with csv_path.open("w") as out:
        out.write(",".join(COLUMNS) + "\n")
        for i in range(rows):
            row = (
                i,
                f"First{rng.randint(0, 9999)}",
                f"Last{rng.randint(0, 99999)}",
                f"{rng.randint(1, 9)}{rng.choice('ABCD')}",
                f"20{rng.randint(10, 16)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                rng.choice((0, 1)),
            )
            out.write(",".join(map(str, row)) + "\n")
            kind = rng.random()
            if kind < 0.005:
                row = (*row[:3], "CHANGED", *row[4:])
            elif kind < 0.0075:
                continue  # missing in the table: a create
            batch.append(row)
            if kind > 0.9975:
                batch.append((rows + i, "Extra", "Row", "1A", "2015-01-01", 1))
            if len(batch) >= 10000:
                db.executemany("INSERT INTO users VALUES (?,?,?,?,?,?)", batch)
                batch = []
    db.executemany("INSERT INTO users VALUES (?,?,?,?,?,?)", batch)
    db.commit()
    db.close()
    return csv_path, db_path


MAPPING = """
[entities.students]
key = ["id"]
fields = ["id", "first", "last", "class", "born", "active"]
types = {{ id = "int", born = "date", active = "bool" }}
[entities.students.source]
url = "csv://{csv}"
[[entities.students.targets]]
url = "sqlite:///{db}"
table = "users"
"""


def accord_job(mapping: str, apply: bool) -> dict:
    from accord.records import apply_plan, load_mapping, make_plan

    started = time.perf_counter()
    prepared = make_plan(load_mapping(mapping), max_delete_percent=100)
    planned = time.perf_counter() - started
    counts = prepared.plan.summary()
    if apply:
        apply_plan(prepared)
    return {
        "plan_s": planned,
        "total_s": time.perf_counter() - started,
        "counts": counts,
    }


def pandas_job(csv_path: str, db_path: str) -> dict:
    import pandas as pd

    started = time.perf_counter()
    source = pd.read_csv(csv_path)
    with sqlite3.connect(db_path) as db:
        target = pd.read_sql("SELECT * FROM users", db)
    both = source.merge(
        target, on="id", how="outer", suffixes=("_s", "_t"), indicator=True
    )
    creates = int((both["_merge"] == "left_only").sum())
    deletes = int((both["_merge"] == "right_only").sum())
    common = both[both["_merge"] == "both"]
    changed = False
    for column in COLUMNS[1:]:
        changed = changed | (
            common[f"{column}_s"].astype(str) != common[f"{column}_t"].astype(str)
        )
    return {
        "plan_s": time.perf_counter() - started,
        "counts": {"create": creates, "update": int(changed.sum()), "delete": deletes},
    }


def run_job(args: list[str]) -> tuple[dict, float]:
    """Run one job in a child process; its result and peak RSS in MiB."""
    done = subprocess.run(
        [sys.executable, __file__, "--job", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return json.loads(done.stdout), usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--job", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        kind, *rest = args.job
        result = (
            pandas_job(*rest)
            if kind == "pandas"
            else accord_job(rest[0], kind == "apply")
        )
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv_path, db_path = generate(folder, args.rows)
        mapping = folder / "mapping.toml"
        mapping.write_text(MAPPING.format(csv=csv_path, db=db_path))
        print(f"{args.rows:,} rows; 1% differ")
        # peak RSS of children is a running maximum: smallest job first
        pandas, pandas_rss = run_job(["pandas", str(csv_path), str(db_path)])
        print(
            f"  pandas merge diff    {pandas['plan_s']:7.2f} s  {pandas_rss:7.0f} MiB"
            f"  {pandas['counts']}"
        )
        plan, plan_rss = run_job(["plan", str(mapping)])
        print(
            f"  accord records plan  {plan['plan_s']:7.2f} s  {plan_rss:7.0f} MiB"
            f"  {plan['counts']}"
        )
        applied, apply_rss = run_job(["apply", str(mapping)])
        print(
            f"  accord plan + apply  {applied['total_s']:7.2f} s  {apply_rss:7.0f} MiB"
        )
        print(f"  ratio pandas / accord plan: {pandas['plan_s'] / plan['plan_s']:.2f}")


if __name__ == "__main__":
    main()
