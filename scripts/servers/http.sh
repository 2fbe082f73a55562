#!/usr/bin/env bash
# A plain HTTP file server (Python's http.server) on 127.0.0.1, for tests of
# read-only http:// places: it serves directory listing pages, nothing else.
#
#   scripts/servers/http.sh start|stop|status
#
# Everything lives in $ACCORD_HTTP_DIR (default /tmp/accord-http): the
# served folder (data/), the log, the pid and the printed settings. `start`
# prints HTTP_URL and HTTP_ROOT (the served folder on this machine).

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

DIR=${ACCORD_HTTP_DIR:-/tmp/accord-http}

start() {
    if pid_alive "$DIR/server.pid"; then
        cat "$DIR/env"
        return 0
    fi
    mkdir -p "$DIR/data"
    local port
    port=$(free_port)
    "$PYTHON" -m http.server "$port" --bind 127.0.0.1 --directory "$DIR/data" \
        </dev/null >>"$DIR/http.log" 2>&1 &
    echo $! >"$DIR/server.pid"
    if ! wait_port "$port" 30; then
        stop_pid "$DIR/server.pid"
        die "http.server did not listen on port $port; see $DIR/http.log"
    fi
    emit_to "$DIR/env" HTTP_URL "http://127.0.0.1:$port" HTTP_ROOT "$DIR/data"
}

stop() { stop_pid "$DIR/server.pid"; }

status() {
    if pid_alive "$DIR/server.pid"; then
        cat "$DIR/env"
    else
        log "not running"
        return 3
    fi
}

main start stop status "$@"
