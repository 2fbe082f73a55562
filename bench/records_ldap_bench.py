"""accord records into an LDAP directory: 100,000 entries, then 1% changed.

    python bench/records_ldap_bench.py --rows 100000

Starts its own slapd (``scripts/servers/slapd.sh``), creates the entries
from a CSV (first sync), changes 1% of the CSV (updates, new rows, removed
rows) and plans and applies again. Prints seconds and peak RSS per step.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVERS = HERE.parent / "scripts" / "servers"

MAPPING = """
[entities.people]
key = ["id"]
fields = ["id", "first", "last", "room"]
[entities.people.source]
url = "csv://{csv}"
[[entities.people.targets]]
url = "{url}"
base = "{ou}"
rdn = "uid"
object_classes = ["inetOrgPerson"]
bind_dn = "{bind}"
password_env = "BENCH_LDAP_PASSWORD"
columns = {{ id = "uid", first = "givenName", last = "sn", room = "roomNumber" }}
computed = {{ cn = "{{first}} {{last}}" }}
"""


def write_csv(path: Path, rows: int, changed: bool) -> None:
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


def step(label: str, mapping: Path, apply: bool) -> None:
    started = time.perf_counter()
    code = (
        "from accord.records import apply_plan, load_mapping, make_plan\n"
        f"p = make_plan(load_mapping({str(mapping)!r}), max_delete_percent=100)\n"
        "print(p.plan.summary())\n"
        + ("r = apply_plan(p); print('skipped', len(r.skipped))\n" if apply else "")
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"  {label:<28} {seconds:7.2f} s  {rss:6.0f} MiB  {done.stdout.strip()}"
        f"{done.stderr[-300:]}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {
            **os.environ,
            "ACCORD_SLAPD_DIR": str(folder / "slapd"),
            "PYTHON": sys.executable,
        }
        out = subprocess.run(
            ["bash", str(SERVERS / "slapd.sh"), "start"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        settings = {
            line.split("=", 1)[0]: shlex.split(line.split("=", 1)[1])[0]
            for line in out.splitlines()
        }
        try:
            import ldap3

            conn = ldap3.Connection(
                settings["LDAP_URL"],
                settings["LDAP_BIND_DN"],
                settings["LDAP_PASSWORD"],
                auto_bind=True,
            )
            base = settings["LDAP_BASE"]
            conn.add(base, ["dcObject", "organization"], {"dc": "school", "o": "S"})
            ou = f"ou=people,{base}"
            conn.add(ou, ["organizationalUnit"], {"ou": "people"})
            conn.unbind()
            os.environ["BENCH_LDAP_PASSWORD"] = settings["LDAP_PASSWORD"]
            csv_path = folder / "people.csv"
            mapping = folder / "mapping.toml"
            mapping.write_text(
                MAPPING.format(
                    csv=csv_path,
                    url=settings["LDAP_URL"],
                    ou=ou,
                    bind=settings["LDAP_BIND_DN"],
                )
            )
            print(f"{args.rows:,} entries into slapd; one run each")
            write_csv(csv_path, args.rows, changed=False)
            step("first sync (all created)", mapping, apply=True)
            write_csv(csv_path, args.rows, changed=True)
            step("plan, 1% changed", mapping, apply=False)
            step("plan + apply, 1% changed", mapping, apply=True)
            step("plan, nothing changed", mapping, apply=False)
        finally:
            subprocess.run(
                ["bash", str(SERVERS / "slapd.sh"), "stop"], env=env, check=False
            )


if __name__ == "__main__":
    main()
