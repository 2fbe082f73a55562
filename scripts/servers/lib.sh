# shellcheck shell=bash
# Shared helpers for the loopback test servers (sourced, not run).
#
# Each server script keeps everything it makes (config, keys, data, log, pid)
# in one folder, prints its connection details as KEY=VALUE lines (shell
# quoted, so `eval "$(script start)"` works) and stops its server by PID.

set -euo pipefail

PYTHON=${PYTHON:-python3}
export DEBIAN_FRONTEND=noninteractive

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "$*"; exit 1; }

# apt_install PKG...: install Debian packages without starting their services.
apt_install() {
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    log "installing $*"
    local rc=0
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"; } \
        >&2 || rc=$?
    if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi
    return "$rc"
}

# pip_install MODULES PKG...: install the PyPI packages PKG unless Python can
# already import MODULES (a comma-separated list).
pip_install() {
    local modules=$1
    shift
    "$PYTHON" -c "import $modules" 2>/dev/null && return 0
    log "installing $*"
    "$PYTHON" -m pip install -q "$@" >&2
}

# fresh_password: a random password for a server's one user.
fresh_password() { "$PYTHON" -c 'import secrets; print(secrets.token_hex(8))'; }

# free_port: a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
    "$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# wait_port PORT SECONDS: wait until 127.0.0.1:PORT accepts connections.
wait_port() {
    "$PYTHON" - "$1" "$2" <<'PY'
import socket, sys, time
port, deadline = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
}

# pid_alive FILE: true when FILE names a running process.
pid_alive() {
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# stop_pid FILE: stop the process FILE names (TERM, then KILL) and forget it.
stop_pid() {
    local pidfile=$1 pid
    if ! pid_alive "$pidfile"; then
        rm -f "$pidfile"
        return 0
    fi
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

# emit KEY VALUE...: print KEY=VALUE lines, shell-quoted, to stdout and FILE.
emit_to() {
    local file=$1
    shift
    : >"$file"
    while [ "$#" -ge 2 ]; do
        printf '%s=%q\n' "$1" "$2" | tee -a "$file"
        shift 2
    done
}

# The helpers below take the server's folder from $DIR (pid, env, logs).

# running: when the server of $DIR runs, print its settings and succeed.
running() {
    pid_alive "$DIR/server.pid" && cat "$DIR/env"
}

# launch PORT LOG COMMAND...: start COMMAND in the background as the server
# of $DIR and wait until it listens on 127.0.0.1:PORT.
launch() {
    local port=$1 logfile=$2
    shift 2
    "$@" </dev/null >>"$logfile" 2>&1 &
    echo $! >"$DIR/server.pid"
    if ! wait_port "$port" 30; then
        stop_pid "$DIR/server.pid"
        die "$* did not listen on port $port; see $logfile"
    fi
}

# stop_server, show_status: stop and status of the server of $DIR.
stop_server() { stop_pid "$DIR/server.pid"; }
show_status() {
    running && return 0
    log "not running"
    return 3
}

# main START STOP STATUS "$@": dispatch start|stop|status to three functions.
main() {
    local start=$1 stop=$2 status=$3
    shift 3
    case "${1:-}" in
        start) "$start" ;;
        stop) "$stop" ;;
        status) "$status" ;;
        *) die "usage: ${0##*/} start|stop|status" ;;
    esac
}
