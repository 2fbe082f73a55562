"""The agent's calls over SSH: a bare round trip, and a run's first calls.

    python bench/ssh_calls.py --server-dir /dev/shm/x --rounds 25 \\
        --build main=/tmp/main/src --build work=src

Starts a private sshd (``scripts/servers/sshd.sh``) and, each round, for
each build in turn (a ``src`` folder put first on ``PYTHONPATH``), a fresh
process that opens an ``sftp://`` place through accord's agent and times,
in the client: from the bootstrap's ``ok`` to the answer of the last of
the calls a run makes before its lock (hello, exists, open, the FSDB
marker's and ``.accordignore``'s ``stat``, is_empty_root: the round trips
a no-op waits for after the connection, besides the lock and the scan);
then ``--trips`` bare round trips (``exists``, one after another) and the
same number of calls in flight at once. Prints each build's medians (and
quartiles) over the rounds. Wall times: on a busy machine run many rounds.
``--delay MS`` puts a relay holding every byte MS milliseconds each way
between the client and sshd (``bench/delay.py``): ``first`` divided by
2 x MS is then about the number of round trips the first calls wait for.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from delay import delayed  # noqa: E402
from remote import start, stop  # noqa: E402

# run in a fresh process of each build: prints one JSON line
_PROBE = r"""
import json, statistics, sys, time
from accord.registry import open_replica
from accord.replicas import link

url, trips = sys.argv[1], int(sys.argv[2])
seen = {}
line = link._line


def timed(channel):
    answer = line(channel)
    seen["ok"] = time.perf_counter()
    return answer


link._line = timed
place = open_replica(url)
assert place.exists()
place.open(create=False)
place.stat("romidb")
place.stat(".accordignore")
place.is_empty_root()
first = time.perf_counter() - seen["ok"]
agent = place.via.link
each = []
for _ in range(trips):
    began = time.perf_counter()
    agent.call("exists")
    each.append(time.perf_counter() - began)
began = time.perf_counter()
for pending in [agent.start("exists")[1] for _ in range(trips)]:
    agent.wait(pending)
flight = time.perf_counter() - began
place.close()
print(json.dumps({"first": first, "trip": statistics.median(each), "flight": flight}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-dir", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--trips", type=int, default=100)
    parser.add_argument(
        "--build", action="append", default=[], help="NAME=SRC_FOLDER (repeatable)"
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=0,
        help="milliseconds each way added between the client and sshd",
    )
    args = parser.parse_args()
    builds = dict(item.split("=", 1) for item in args.build) or {"here": "src"}
    work = Path(tempfile.mkdtemp(prefix="accord-ssh-calls-"))
    settings, server = start("sshd.sh", work / "sshd", "ACCORD_SSHD_DIR")
    relay = contextlib.ExitStack()
    try:
        if args.delay:
            port = int(settings["SFTP_PORT"])
            known = settings["SSH_KNOWN_HOSTS"]
            settings["SFTP_PORT"] = str(
                relay.enter_context(delayed(port, args.delay, known))
            )
        folder = args.server_dir / "place"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "a.txt").write_text("a\n")
        url = (
            f"sftp://{settings['SFTP_USER']}@127.0.0.1:{settings['SFTP_PORT']}"
            f"{folder}?identity={settings['SSH_KEY']}"
            f"&known_hosts={settings['SSH_KNOWN_HOSTS']}&agent=on"
        )
        found: dict[str, list[dict[str, float]]] = {name: [] for name in builds}
        for _ in range(args.rounds):
            for name, src in builds.items():
                env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
                env.pop("PYTHONDONTWRITEBYTECODE", None)
                done = subprocess.run(
                    [sys.executable, "-c", _PROBE, url, str(args.trips)],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                found[name].append(json.loads(done.stdout))
        for name, rows in found.items():
            print(name, *(_summary(rows, what) for what in ("first", "trip", "flight")))
    finally:
        relay.close()
        stop("sshd.sh", server)
        shutil.rmtree(work, ignore_errors=True)


def _summary(rows: list[dict[str, float]], what: str) -> str:
    values = sorted(row[what] * 1000 for row in rows)
    quarter = len(values) // 4
    return (
        f" {what} {statistics.median(values):.2f} ms"
        f" ({values[quarter]:.2f}-{values[-1 - quarter]:.2f})"
    )


if __name__ == "__main__":
    main()
