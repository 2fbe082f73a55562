"""accord to and from a stock plantdb REST server (``fsdb_rest_api`` 0.17.0).

Builds an FSDB with plantdb's own API (default: 20 scans x 3 filesets x 50
files of 100 KiB), starts ``fsdb_rest_api`` on 127.0.0.1 (rate limits on,
as shipped) and times, in-process, with the number of HTTP requests:

* local -> REST: first copy, no-op, 10 new files in one scan;
* REST -> local: first copy, no-op, 10 new files in one scan (added on the
  server through its API by another client);
* plantdb's own REST sync (``fsdb_sync SRC http://...`` and
  ``fsdb_rest_api_sync``): what it does on 0.17.0.

The request floor is one archive per new scan and one request per changed
item. Run: ``.venv/bin/python bench/plantdb_rest_bench.py [--scans 20]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from accord import api  # noqa: E402
from accord.registry import open_replica  # noqa: E402
from fixtures.plantdb_server import (  # noqa: E402
    ALICE,
    ALICE_PASSWORD,
    PlantdbServer,
    build_fsdb,
)

ROOT_FILES = ["/romidb", "/users.json", "/groups.json", ".locks/", "*.tmp"]
FILESETS = ("images", "masks", "features")


def timed_mirror(source, target, **kw):
    """Seconds, HTTP requests, 429 answers, items done, items failed."""
    place = source if not isinstance(source, str) else target
    started = time.perf_counter()
    report = api.mirror(source, target, **kw)
    seconds = time.perf_counter() - started
    return (
        seconds,
        place.requests,
        place.throttled,
        len(report.done),
        len(report.failed),
    )


def push(local: Path, url: str, options: dict) -> tuple:
    return timed_mirror(str(local), open_replica(url), **options)


def pull(url: str, folder: Path) -> tuple:
    return timed_mirror(open_replica(url), str(folder))


def add_local_files(root: Path, scan: str, count: int) -> None:
    script = (
        "import os, sys\n"
        "from plantdb.commons.fsdb.core import FSDB\n"
        "db = FSDB(sys.argv[1]); db.connect(); db.login(sys.argv[4], sys.argv[5])\n"
        "fs = db.get_scan(sys.argv[2]).get_fileset('images')\n"
        "for i in range(int(sys.argv[3])):\n"
        "    f = fs.create_file(f'new_{i:03d}')\n"
        "    f.write_raw(os.urandom(102400), ext='png')\n"
        "    f.set_metadata({'new': i})\n"
        "db.disconnect()\n"
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(root),
            scan,
            str(count),
            ALICE,
            ALICE_PASSWORD,
        ],
        check=True,
        capture_output=True,
    )


def add_server_files(base: str, scan: str, count: int) -> None:
    """New files on the server, sent through its API by another client."""
    with httpx.Client(base_url=base + "/api/v1", timeout=60) as http:
        token = http.post(
            "/auth/login", json={"username": ALICE, "password": ALICE_PASSWORD}
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        for i in range(count):
            while True:
                answer = http.post(
                    f"/files/{scan}/images/other_{i:03d}",
                    files={"file": (f"other_{i:03d}.png", os.urandom(102400))},
                    data={"ext": "png"},
                    headers=auth,
                )
                if answer.status_code != 429:
                    break
                time.sleep(5)
            answer.raise_for_status()


def plantdb_own(source: Path, base: str) -> list[tuple[str, float, int, str]]:
    """plantdb-client's own REST sync commands on the same data."""
    rows = []
    other = source.with_name(source.name + "-x")
    other.mkdir()
    (other / "romidb").touch()
    bindir = Path(sys.executable).parent
    for name, args in (
        ("fsdb_sync SRC http://HOST:PORT", [str(source), base]),
        ("fsdb_sync http://HOST:PORT/api/v1 DST", [base + "/api/v1", str(other)]),
        ("fsdb_rest_api_sync URL URL", [base, base]),
    ):
        command = name.split()[0]
        started = time.perf_counter()
        done = subprocess.run(
            [str(bindir / command), *args], capture_output=True, text=True, timeout=600
        )
        seconds = time.perf_counter() - started
        lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        last = next(
            (ln for ln in reversed(lines) if "Error" in ln), lines[-1] if lines else ""
        )
        rows.append((name, seconds, done.returncode, last.strip()[:160]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=20)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--kib", type=int, default=100)
    parser.add_argument("--changed", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="plantdb-bench."))
    os.environ["ACCORD_STATE_DIR"] = str(work / "state")
    os.environ["PLANTDB_PASSWORD"] = ALICE_PASSWORD
    local = build_fsdb(
        work / "local", scans=args.scans, filesets=FILESETS, files=args.files,
        size=args.kib * 1024, prefix="plant_",
    )  # fmt: skip
    server = PlantdbServer(build_fsdb(work / "served", scans=0)).start()
    url = server.place()
    rows = []
    changed = f"{args.changed} new files"
    try:
        up = {"exclude": ROOT_FILES}
        for label in ("first copy", "no-op"):
            rows.append(("local -> REST", label, *push(local, url, up)))
        add_local_files(local, "plant_000", args.changed)
        rows.append(("local -> REST", changed, *push(local, url, up)))
        back = work / "back"
        for label in ("first copy", "no-op"):
            rows.append(("REST -> local", label, *pull(url, back)))
        add_server_files(server.base, "plant_001", args.changed)
        rows.append(("REST -> local", changed, *pull(url, back)))
        own = plantdb_own(local, server.base)
    finally:
        server.stop()
    files = args.scans * len(FILESETS) * args.files
    print(f"database: {args.scans} scans x {len(FILESETS)} filesets x {args.files} "
          f"files of {args.kib} KiB ({files} data files)\n")  # fmt: skip
    print("| direction | run | seconds | HTTP requests | 429 met | done | failed |")
    print("|---|---|---|---|---|---|---|")
    for direction, label, seconds, requests, throttled, done, failed in rows:
        print(f"| {direction} | {label} | {seconds:.1f} | {requests} | {throttled} "
              f"| {done} | {failed} |")  # fmt: skip
    print("\n| plantdb's own command | seconds | exit | what it said |")
    print("|---|---|---|---|")
    for name, seconds, code, said in own:
        print(f"| `{name}` | {seconds:.1f} | {code} | `{said}` |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
