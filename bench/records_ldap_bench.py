"""accord records into an LDAP directory, against reading the entries alone.

    python bench/records_ldap_bench.py --rows 100000 --repeat 3
    python bench/records_ldap_bench.py --rows 100000 --before /tmp/main/src
    python bench/records_ldap_bench.py --rows 20000 --fill accord

A private slapd (``scripts/servers/slapd.sh``, mdb without a sync per
write) holds N entries made from a CSV of N people (the data and mapping of
``records_bench.py``); the CSV then changes by 1% (0.5% updated, 0.25%
gone, 0.25% new). The directory is filled by slapadd before slapd starts
(``--fill slapadd``, seconds for 100,000 entries; accord's first sync then
finds every entry already there and records it), or by accord's first sync,
one add request per entry (``--fill accord``). Then, ``--repeat`` times
alternating: reading the entries alone (an ldap3 paged search, 1,000 per
page, the entries kept as dicts: the floor), accord's plan, and with
``--before SRC`` accord's plan run from another source tree (``SRC`` on
PYTHONPATH, e.g. an export of main's ``src``). Each job runs in its own
process and reports its wall seconds, its CPU seconds (user + system of
that process over the timed part: the machine is shared, wall times vary
with its load much more) and its peak RSS. Prints the medians and the
ratios floor / accord (above 1: accord is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import records_bench as rb  # noqa: E402 - the data, mapping and jobs


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def timed_job(kind: str, *rest: str) -> dict:
    """One of records_bench's jobs, with this process's CPU seconds over it
    (its imports before the clock, as there, are left out)."""
    import ldap3  # noqa: F401 - as the jobs import them before their clocks

    if kind in ("plan", "apply"):
        import pyarrow as pa
        import sqlalchemy  # noqa: F401

        pa.array(["warm"]).to_pylist()
        import accord.records  # noqa: F401

    started = cpu_seconds()
    result = rb.job(kind, *rest)
    result["cpu_s"] = cpu_seconds() - started
    return result


def run(*args: str, before: str | None = None) -> dict:
    env = dict(os.environ)
    if before:
        env["PYTHONPATH"] = before + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, __file__, "--job", *args],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        raise SystemExit(f"job {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(name: str, result: dict, seconds: str = "plan_s") -> None:
    cpu = f"{result['cpu_s']:6.2f} CPU s" if "cpu_s" in result else " " * 12
    print(
        f"  {name:34} {result[seconds]:7.2f} s {cpu} {result['rss']:6.0f} MiB"
        f"  {result.get('counts', '')}",
        flush=True,
    )


def people_ldif(csv_path: Path, ldif: Path, base: str) -> None:
    """The suffix, ``ou=people`` and the entries accord's first sync would
    create from ``csv_path`` (the same classes, attributes and values)."""
    ou = f"ou=people,{base}"
    with csv_path.open() as rows, ldif.open("w") as out:
        out.write(
            f"dn: {base}\nobjectClass: dcObject\nobjectClass: organization\n"
            f"dc: school\no: School\n\n"
            f"dn: {ou}\nobjectClass: organizationalUnit\nou: people\n\n"
        )
        next(rows)
        for row in rows:
            uid, first, last, room = row.rstrip("\n").split(",")
            out.write(
                f"dn: uid={uid},{ou}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
                f"givenName: {first}\nsn: {last}\nroomNumber: {room}\n"
                f"cn: {first} {last}\n\n"
            )


def bench(rows: int, folder: Path, repeat: int, fill: str, before: str | None):
    env = {
        **os.environ,
        "ACCORD_SLAPD_DIR": str(folder / "slapd"),
        "PYTHON": sys.executable,
    }
    csv_path = folder / "people.csv"
    rb.people_csv(csv_path, rows, changed=False)
    if fill == "slapadd":
        people_ldif(csv_path, folder / "people.ldif", "dc=school,dc=example")
        env["ACCORD_SLAPD_LDIF"] = str(folder / "people.ldif")
    begun = time.perf_counter()
    settings = rb.start_slapd(env)
    print(f"{rows:,} LDAP entries (slapd on 127.0.0.1); 1% differ")
    if fill == "slapadd":
        print(f"  slapadd and slapd start: {time.perf_counter() - begun:.2f} s")
    try:
        runs(rows, folder, settings, repeat, fill, before)
    finally:
        subprocess.run(["bash", str(rb.SERVERS / "slapd.sh"), "stop"], env=env)


def runs(rows, folder, settings, repeat, fill, before) -> None:
    import ldap3

    base, url, bind = (
        settings["LDAP_BASE"],
        settings["LDAP_URL"],
        settings["LDAP_BIND_DN"],
    )
    ou = f"ou=people,{base}"
    os.environ["BENCH_LDAP_PASSWORD"] = settings["LDAP_PASSWORD"]
    if fill == "accord":
        conn = ldap3.Connection(
            ldap3.Server(url), bind, settings["LDAP_PASSWORD"], auto_bind=True
        )
        conn.add(base, ["dcObject", "organization"], {"dc": "school", "o": "School"})
        conn.add(ou, ["organizationalUnit"], {"ou": "people"})
        conn.unbind()
    csv_path = folder / "people.csv"
    mapping = folder / "ldap.toml"
    mapping.write_text(
        rb.LDAP_MAPPING.format(csv=csv_path, url=url, base=ou, bind=bind)
    )
    what = "creates" if fill == "accord" else "entries already there"
    show(f"accord first sync ({what})", run("apply", str(mapping)), "total_s")
    rb.people_csv(csv_path, rows, changed=True)
    jobs = {
        "reading the entries alone": (("ldap-read", url, ou, bind), None),
        "accord records plan": (("plan", str(mapping)), None),
    }
    if before:
        jobs["accord records plan, before"] = (("plan", str(mapping)), before)
    found: dict[str, list[dict]] = {name: [] for name in jobs}
    for _ in range(repeat):
        for name, (args, source) in jobs.items():
            found[name].append(run(*args, before=source))
    medians = {}
    for name, results in found.items():
        medians[name] = {
            "plan_s": statistics.median(r["plan_s"] for r in results),
            "cpu_s": statistics.median(r["cpu_s"] for r in results),
            "rss": statistics.median(r["rss"] for r in results),
            "counts": results[-1]["counts"],
        }
        show(name, medians[name])
        print(
            "    runs: "
            + ", ".join(f"{r['plan_s']:.2f} s / {r['cpu_s']:.2f} CPU" for r in results)
        )
    floor = medians["reading the entries alone"]
    for name in jobs:
        if name.startswith("accord"):
            mine = medians[name]
            print(
                f"  ratio reading the entries alone / {name}: "
                f"time {floor['plan_s'] / mine['plan_s']:.2f}, "
                f"CPU {floor['cpu_s'] / mine['cpu_s']:.2f}, "
                f"memory {floor['rss'] / mine['rss']:.2f}"
            )
    show("pandas merge diff", run("pandas-ldap", str(csv_path), url, ou, bind))
    show("accord plan + apply", run("apply", str(mapping)), "total_s")
    show("accord plan, nothing changed", run("plan", str(mapping)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fill", choices=["slapadd", "accord"], default="slapadd")
    parser.add_argument(
        "--before", help="a source tree (its src folder) to run a second plan from"
    )
    parser.add_argument("--job", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        print(json.dumps(timed_job(*args.job)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        bench(args.rows, Path(tmp), args.repeat, args.fill, args.before)


if __name__ == "__main__":
    main()
