"""accord records into an LDAP directory: now part of ``records_bench.py``.

    python bench/records_ldap_bench.py --rows 100000

is the same as ``python bench/records_bench.py --rows 0 --csv 0 --ldap 100000``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    bench = Path(__file__).with_name("records_bench.py")
    command = [
        sys.executable,
        str(bench),
        "--rows",
        "0",
        "--csv",
        "0",
        "--ldap",
        str(args.rows),
    ]
    sys.exit(subprocess.call(command))


if __name__ == "__main__":
    main()
