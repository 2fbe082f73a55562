"""accord records against a pandas merge, on the same data, in the same run.

    python bench/records_bench.py                      # SQL, CSV and LDAP
    python bench/records_bench.py --rows 100000 --ldap 0
    python bench/records_bench.py --rows 0 --csv 0 --ldap 100000
    python bench/records_bench.py --target postgresql  # the table in PostgreSQL

SQL: a CSV of N student rows (the source of truth) and a table holding the
same rows with 1% different (0.5% updated, 0.25% missing, 0.25% extra).
CSV: the same, the target a CSV file. LDAP: a private slapd
(``scripts/servers/slapd.sh``) holding N entries, a CSV with 1% different.
Each job runs in its own process and reports its own peak RSS: accord's
plan (read, validate, convert, reconcile), accord's plan and apply, and a
straightforward pandas diff of the same data (``read_csv``, ``read_sql``,
an outer merge on the key, the rows that differ); for LDAP, where pandas
has no reader, the time to read the entries alone (an ldap3 paged search).
The plan and its comparison run ``--repeat`` times, alternating, and the
medians are compared (the machine is shared: alternating spreads the
noise over both). Prints seconds, peak memory and the ratios other /
accord (above 1: accord is faster or smaller).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVERS = HERE.parent / "scripts" / "servers"
COLUMNS = ("id", "first", "last", "class", "born", "active")
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# -- data ----------------------------------------------------------------------


def student(rng: random.Random, i: int) -> tuple:
    return (
        i,
        f"First{rng.randint(0, 9999)}",
        f"Last{rng.randint(0, 99999)}",
        f"{rng.randint(1, 9)}{rng.choice('ABCD')}",
        f"20{rng.randint(10, 16)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        rng.choice((0, 1)),
    )


def generate(folder: Path, rows: int) -> tuple[Path, list[tuple]]:
    """The CSV (truth) and the table's rows: 1% different."""
    rng = random.Random(1)
    path = folder / "students.csv"
    table = []
    with path.open("w") as out:
        out.write(",".join(COLUMNS) + "\n")
        for i in range(rows):
            row = student(rng, i)
            out.write(",".join(map(str, row)) + "\n")
            roll = rng.random()
            if roll < 0.005:
                row = (*row[:3], "CHANGED", *row[4:])
            elif roll < 0.0075:
                continue  # missing in the table: a create
            table.append(row)
            if roll > 0.9975:
                table.append((rows + i, "Extra", "Row", "1A", "2015-01-01", 1))
    return path, table


def change_csv(path: Path) -> None:
    """Change 1% of the rows' class, as the next day's export would."""
    lines = path.read_text().splitlines(keepends=True)
    for at in range(1, len(lines), 100):
        parts = lines[at].split(",")
        parts[3] = "9Z"
        lines[at] = ",".join(parts)
    path.write_text("".join(lines))


def fill_sqlite(path: Path, rows: list[tuple]) -> str:
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, first TEXT, last TEXT,"
        " class TEXT, born TEXT, active INTEGER)"
    )
    db.executemany("INSERT INTO users VALUES (?,?,?,?,?,?)", rows)
    db.commit()
    db.close()
    return f"sqlite:///{path}"


def fill_postgresql(rows: list[tuple]) -> str:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test") as conn:
        conn.execute("DROP TABLE IF EXISTS bench_users")
        conn.execute(
            "CREATE TABLE bench_users (id INTEGER PRIMARY KEY, first TEXT,"
            " last TEXT, class TEXT, born DATE, active BOOLEAN)"
        )
        with conn.cursor().copy("COPY bench_users FROM STDIN") as copy:
            for row in rows:
                copy.write_row((*row[:5], bool(row[5])))
    return PG


MAPPING = """
[entities.students]
key = ["id"]
fields = ["id", "first", "last", "class", "born", "active"]
types = {{ id = "int", born = "date", active = "bool" }}
[entities.students.source]
url = "csv://{csv}"
[[entities.students.targets]]
url = "{url}"
table = "{table}"
"""

LDAP_MAPPING = """
[entities.people]
key = ["id"]
fields = ["id", "first", "last", "room"]
[entities.people.source]
url = "csv://{csv}"
[[entities.people.targets]]
url = "{url}"
base = "{base}"
rdn = "uid"
object_classes = ["inetOrgPerson"]
bind_dn = "{bind}"
password_env = "BENCH_LDAP_PASSWORD"
page_size = 1000
columns = {{ id = "uid", first = "givenName", last = "sn", room = "roomNumber" }}
computed = {{ cn = "{{first}} {{last}}" }}
"""


def people_csv(path: Path, rows: int, changed: bool) -> None:
    rng = random.Random(3)
    with path.open("w") as out:
        out.write("id,first,last,room\n")
        for i in range(rows):
            room = f"R{rng.randint(1, 500)}"
            roll = rng.random()
            if changed and roll < 0.005:
                room = "MOVED"
            if changed and 0.005 <= roll < 0.0075:
                continue
            out.write(f"{i},First{i},Last{i},{room}\n")
        if changed:
            for i in range(rows, rows + rows // 400):
                out.write(f"{i},New{i},Person{i},R1\n")


# -- jobs (each in its own process) ------------------------------------------------


def peak_mib() -> float:
    """This process's peak RSS, plus its children's (a target read ahead).
    Its own from ``VmHWM`` where there is one: Linux carries the parent's
    peak over into a child's ``ru_maxrss`` across the exec (a job started
    by this bench after it made a million rows reported at least the
    bench's own ~390 MiB, whatever it used)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    own = int(line.split()[1])  # kB
    except OSError:
        pass
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024


def cpu_s() -> float:
    """This process's CPU seconds so far (user and system, every thread)."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def accord_job(mapping: str, apply: bool) -> dict:
    import ldap3  # noqa: F401 - imported before the clock starts, as pandas is
    import pyarrow as pa
    import pyarrow.compute
    import pyarrow.csv
    import sqlalchemy  # noqa: F401

    pa.array(["warm"]).to_pylist()  # pyarrow's own lazy imports, likewise

    from accord.records import apply_plan, load_mapping, make_plan

    started, cpu = time.perf_counter(), cpu_s()
    prepared = make_plan(load_mapping(mapping), max_delete_percent=100)
    planned = time.perf_counter() - started
    planned_cpu = cpu_s() - cpu
    counts = prepared.plan.summary()
    if apply:
        report = apply_plan(prepared)
        assert report.ok, (report.failed + report.skipped)[:3]
    return {
        "plan_s": planned,
        "cpu_s": planned_cpu,
        "total_s": time.perf_counter() - started,
        "counts": next(iter(counts.values()), {}),
        "rss": peak_mib(),
    }


def pandas_diff(source, target, key: str, columns: tuple[str, ...]) -> dict:
    both = source.merge(
        target, on=key, how="outer", suffixes=("_s", "_t"), indicator=True
    )
    creates = int((both["_merge"] == "left_only").sum())
    deletes = int((both["_merge"] == "right_only").sum())
    common = both[both["_merge"] == "both"]
    changed = False
    for column in columns:
        changed = changed | (
            common[f"{column}_s"].astype(str) != common[f"{column}_t"].astype(str)
        )
    return {"create": creates, "update": int(changed.sum()), "delete": deletes}


def pandas_sql_job(csv_path: str, url: str, table: str) -> dict:
    import pandas as pd
    import sqlalchemy

    started, cpu = time.perf_counter(), cpu_s()
    source = pd.read_csv(csv_path)
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        target = pd.read_sql(f"SELECT * FROM {table}", conn)
    if "active" in target and target["active"].dtype == bool:
        target["active"] = target["active"].astype(int)
    target["born"] = target["born"].astype(str)
    counts = pandas_diff(source, target, "id", COLUMNS[1:])
    return {
        "plan_s": time.perf_counter() - started,
        "cpu_s": cpu_s() - cpu,
        "counts": counts,
        "rss": peak_mib(),
    }


def pandas_csv_job(csv_path: str, target_path: str) -> dict:
    import pandas as pd

    started, cpu = time.perf_counter(), cpu_s()
    source = pd.read_csv(csv_path)
    target = pd.read_csv(target_path)
    yes_no = {"1": "1", "true": "1", "0": "0", "false": "0"}
    for frame in (source, target):  # accord writes true/false where it read 1/0
        frame["active"] = frame["active"].astype(str).str.lower().map(yes_no)
    counts = pandas_diff(source, target, "id", COLUMNS[1:])
    return {
        "plan_s": time.perf_counter() - started,
        "cpu_s": cpu_s() - cpu,
        "counts": counts,
        "rss": peak_mib(),
    }


def ldap_read_job(url: str, base: str, bind: str) -> dict:
    """The floor for an LDAP plan: reading the entries, nothing else."""
    import ldap3

    started = time.perf_counter()
    conn = ldap3.Connection(
        ldap3.Server(url), bind, os.environ["BENCH_LDAP_PASSWORD"], auto_bind=True
    )
    names = ["uid", "givenName", "sn", "roomNumber", "cn"]
    rows = []
    for entry in conn.extend.standard.paged_search(
        base,
        "(objectClass=*)",
        search_scope=ldap3.LEVEL,
        attributes=names,
        paged_size=1000,
        generator=True,
    ):
        found = entry["attributes"]
        rows.append({a: found.get(a) for a in names})
    conn.unbind()
    return {
        "plan_s": time.perf_counter() - started,
        "counts": {"entries": len(rows)},
        "rss": peak_mib(),
    }


def pandas_ldap_job(csv_path: str, url: str, base: str, bind: str) -> dict:
    import ldap3
    import pandas as pd

    started = time.perf_counter()
    source = pd.read_csv(csv_path, dtype=str)
    conn = ldap3.Connection(
        ldap3.Server(url), bind, os.environ["BENCH_LDAP_PASSWORD"], auto_bind=True
    )
    names = {"uid": "id", "givenName": "first", "sn": "last", "roomNumber": "room"}
    rows = []
    for entry in conn.extend.standard.paged_search(
        base,
        "(objectClass=inetOrgPerson)",
        search_scope=ldap3.LEVEL,
        attributes=list(names),
        paged_size=1000,
        generator=True,
    ):
        found = entry["attributes"]
        rows.append({names[a]: (found.get(a) or [None])[0] for a in names})
    conn.unbind()
    target = pd.DataFrame(rows, columns=list(names.values()))
    counts = pandas_diff(source, target, "id", ("first", "last", "room"))
    return {
        "plan_s": time.perf_counter() - started,
        "counts": counts,
        "rss": peak_mib(),
    }


def run_job(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--job", *args],
        capture_output=True,
        text=True,
        env=os.environ,
    )
    if done.returncode != 0:
        raise SystemExit(f"job {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def job(kind: str, *rest: str) -> dict:
    if kind == "pandas-sql":
        return pandas_sql_job(*rest)
    if kind == "pandas-csv":
        return pandas_csv_job(*rest)
    if kind == "pandas-ldap":
        return pandas_ldap_job(*rest)
    if kind == "ldap-read":
        return ldap_read_job(*rest)
    return accord_job(rest[0], kind == "apply")


# -- the runs -----------------------------------------------------------------------


def line(name: str, result: dict, seconds: str = "plan_s") -> None:
    print(
        f"  {name:30} {result[seconds]:7.2f} s  {result['rss']:7.0f} MiB"
        f"  {result.get('counts', '')}"
    )


def compared(
    name: str, other: list[str], accord: list[str], repeat: int
) -> tuple[dict, dict]:
    """Both jobs ``repeat`` times, alternating; their medians, printed."""
    runs: dict[str, list[dict]] = {"other": [], "accord": []}
    for _ in range(repeat):
        runs["other"].append(run_job(*other))
        runs["accord"].append(run_job(*accord))
    medians = {}
    for side, results in runs.items():
        medians[side] = {
            "plan_s": statistics.median(r["plan_s"] for r in results),
            "cpu_s": statistics.median(r.get("cpu_s", 0.0) for r in results),
            "cpus": [round(r.get("cpu_s", 0.0), 2) for r in results],
            "rss": statistics.median(r["rss"] for r in results),
            "counts": results[-1]["counts"],
            "all": [round(r["plan_s"], 2) for r in results],
        }
    line(name, medians["other"])
    line("accord records plan", medians["accord"])
    mine, theirs = medians["accord"], medians["other"]
    print(
        f"  ratio {name} / accord: time {theirs['plan_s'] / mine['plan_s']:.2f}, "
        f"memory {theirs['rss'] / mine['rss']:.2f}  (runs: {theirs['all']} "
        f"vs {mine['all']})"
    )
    if mine["cpu_s"]:
        print(
            f"  CPU seconds (user+system): {theirs['cpu_s']:.2f} vs "
            f"{mine['cpu_s']:.2f}, ratio {theirs['cpu_s'] / mine['cpu_s']:.2f}  "
            f"(runs: {theirs['cpus']} vs {mine['cpus']})"
        )
    return theirs, mine


def sql_bench(rows: int, target: str, folder: Path, repeat: int) -> None:
    csv_path, table_rows = generate(folder, rows)
    if target == "postgresql":
        url, table = fill_postgresql(table_rows), "bench_users"
    else:
        url, table = fill_sqlite(folder / "lms.db", table_rows), "users"
    del table_rows
    mapping = folder / "mapping.toml"
    mapping.write_text(MAPPING.format(csv=csv_path, url=url, table=table))
    print(f"{rows:,} CSV rows against a {target} table; 1% differ")
    two_days(["pandas-sql", str(csv_path), url, table], mapping, csv_path, repeat)


def two_days(pandas: list[str], mapping: Path, csv_path: Path, repeat: int) -> None:
    """A first plan (never synced), apply; then the next day's plan, after
    1% of the CSV changed: each against pandas on the same data."""
    print(" a first plan (the pair was never synced):")
    compared("pandas merge diff", pandas, ["plan", str(mapping)], repeat)
    line("accord plan + apply", run_job("apply", str(mapping)), "total_s")
    line("accord plan after apply", run_job("plan", str(mapping)))
    change_csv(csv_path)
    print(" the next day's plan (synced before; 1% of the CSV changed since):")
    compared("pandas merge diff", pandas, ["plan", str(mapping)], repeat)


CSV_MAPPING = """
[entities.students]
key = ["id"]
fields = ["id", "first", "last", "class", "born", "active"]
types = {{ id = "int", born = "date", active = "bool" }}
[entities.students.source]
url = "csv://{csv}"
[[entities.students.targets]]
url = "csv://{target}"
"""


def csv_bench(rows: int, folder: Path, repeat: int) -> None:
    csv_path, table_rows = generate(folder, rows)
    target = folder / "copy.csv"
    with target.open("w") as out:
        out.write(",".join(COLUMNS) + "\n")
        for row in table_rows:
            out.write(",".join(map(str, row)) + "\n")
    del table_rows
    mapping = folder / "csv.toml"
    mapping.write_text(CSV_MAPPING.format(csv=csv_path, target=target))
    print(f"{rows:,} CSV rows against a CSV file; 1% differ")
    two_days(["pandas-csv", str(csv_path), str(target)], mapping, csv_path, repeat)


def start_slapd(env: dict[str, str]) -> dict[str, str]:
    """Start a private slapd (scripts/servers/slapd.sh) with ``env``; the
    settings it prints (URL, base DN, bind DN, password)."""
    started = subprocess.run(
        ["bash", str(SERVERS / "slapd.sh"), "start"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(
        (k, shlex.split(v)[0])
        for k, _, v in (ln.partition("=") for ln in started.stdout.splitlines())
    )


def ldap_bench(rows: int, folder: Path, repeat: int) -> None:
    env = {
        **os.environ,
        "ACCORD_SLAPD_DIR": str(folder / "slapd"),
        "PYTHON": sys.executable,
    }
    settings = start_slapd(env)
    try:
        _ldap_runs(rows, folder, settings, repeat)
    finally:
        subprocess.run(
            ["bash", str(SERVERS / "slapd.sh"), "stop"], env=env, check=False
        )


def _ldap_runs(rows: int, folder: Path, settings: dict[str, str], repeat: int) -> None:
    import ldap3

    base = settings["LDAP_BASE"]
    os.environ["BENCH_LDAP_PASSWORD"] = settings["LDAP_PASSWORD"]
    conn = ldap3.Connection(
        ldap3.Server(settings["LDAP_URL"]),
        settings["LDAP_BIND_DN"],
        settings["LDAP_PASSWORD"],
        auto_bind=True,
    )
    conn.add(base, ["dcObject", "organization"], {"dc": "school", "o": "School"})
    ou = f"ou=people,{base}"
    conn.add(ou, ["organizationalUnit"], {"ou": "people"})
    conn.unbind()
    csv_path = folder / "people.csv"
    mapping = folder / "ldap.toml"
    mapping.write_text(
        LDAP_MAPPING.format(
            csv=csv_path,
            url=settings["LDAP_URL"],
            base=ou,
            bind=settings["LDAP_BIND_DN"],
        )
    )
    print(f"{rows:,} LDAP entries (slapd on 127.0.0.1); 1% differ")
    people_csv(csv_path, rows, changed=False)
    line("accord first sync (creates)", run_job("apply", str(mapping)), "total_s")
    people_csv(csv_path, rows, changed=True)
    url, bind = settings["LDAP_URL"], settings["LDAP_BIND_DN"]
    compared(
        "reading the entries alone",
        ["ldap-read", url, ou, bind],
        ["plan", str(mapping)],
        repeat,
    )
    line("pandas merge diff", run_job("pandas-ldap", str(csv_path), url, ou, bind))
    line("accord plan + apply", run_job("apply", str(mapping)), "total_s")
    line("accord plan, nothing changed", run_job("plan", str(mapping)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="SQL rows (0: skip)"
    )
    parser.add_argument(
        "--csv", type=int, default=1_000_000, help="CSV-to-CSV rows (0: skip)"
    )
    parser.add_argument(
        "--ldap", type=int, default=100_000, help="LDAP entries (0: skip)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each compared plan"
    )
    parser.add_argument("--target", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--job", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        print(json.dumps(job(*args.job)))
        return
    repeat = args.repeat
    for rows, bench in (
        (args.rows, lambda folder: sql_bench(args.rows, args.target, folder, repeat)),
        (args.csv, lambda folder: csv_bench(args.csv, folder, repeat)),
        (args.ldap, lambda folder: ldap_bench(args.ldap, folder, repeat)),
    ):
        if rows:
            with tempfile.TemporaryDirectory() as tmp:
                bench(Path(tmp))


if __name__ == "__main__":
    main()
