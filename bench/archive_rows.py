"""The archive's statements for a batch: CPU seconds to record N rows.

    python bench/archive_rows.py --rows 20000 --repeat 7
    python bench/archive_rows.py --src /tmp/old/src   # another build's, beside

Records N new rows (the shape of a first copy's: an ASCII name, a
digest, both sides' versions) in a new archive, once as a pair named
(a, b) and once as (b, a), whose file keeps the sides the other way round.
Prints the least thread CPU of --repeat runs for each (the recording is
one thread's work; the least is the figure least disturbed by the rest
of the machine), for this build and, with --src, another beside it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

_CHILD = r"""
import sys, tempfile, time
from pathlib import Path
from accord.state.store import ArchiveEntry, ArchiveStore
rows_n, repeat = int(sys.argv[1]), int(sys.argv[2])
rows = [
    ArchiveEntry(f"dir{i % 200}/file-{i:06d}.bin", "file", 10000 + i, 17000 + i,
                 0o644, "sha256:" + "ab" * 32, None, f"2049:{i}:1:2:3", f"66:{i}:1:2:4")
    for i in range(rows_n)
]
for names in (("a", "b"), ("b", "a")):
    best = float("inf")
    for _ in range(repeat):
        store = ArchiveStore.open(Path(tempfile.mkdtemp()), *names)
        began = time.thread_time()
        store.record(put=rows)
        best = min(best, time.thread_time() - began)
        store.close()
    print(f"{names[0]},{names[1]} {best * 1000:.1f}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--src", type=Path, help="another build's src/ folder")
    args = parser.parse_args()
    builds = {"this build": str(HERE.parent / "src")}
    if args.src:
        builds["--src"] = str(args.src)
    for name, src in builds.items():
        env = dict(os.environ, PYTHONPATH=src)
        with tempfile.TemporaryDirectory() as work:
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, str(args.rows), str(args.repeat)],
                capture_output=True,
                text=True,
                env={**env, "TMPDIR": work},
                check=True,
            )
        for line in done.stdout.splitlines():
            pair, ms = line.split()
            print(f"{name:<11} pair ({pair}) {args.rows:,} rows: {ms} ms CPU (least)")


if __name__ == "__main__":
    main()
