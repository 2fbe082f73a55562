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
    running && return 0
    mkdir -p "$DIR/data"
    local port
    port=$(free_port)
    launch "$port" "$DIR/http.log" "$PYTHON" -m http.server "$port" \
        --bind 127.0.0.1 --directory "$DIR/data"
    emit_to "$DIR/env" HTTP_URL "http://127.0.0.1:$port" HTTP_ROOT "$DIR/data"
}

main start stop_server show_status "$@"
