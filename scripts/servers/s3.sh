#!/usr/bin/env bash
# An S3 server (moto_server, in memory) on 127.0.0.1, for tests.
#
#   scripts/servers/s3.sh start|stop|status
#
# Its log, pid and printed settings live in $ACCORD_S3_DIR (default
# /tmp/accord-s3); the data lives in the server's memory and goes with it.
# moto accepts any credentials; the printed ones are the conventional fakes.
# `start` prints S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
# AWS_DEFAULT_REGION; `status` prints them again while it runs.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

DIR=${ACCORD_S3_DIR:-/tmp/accord-s3}

start() {
    if pid_alive "$DIR/server.pid"; then
        cat "$DIR/env"
        return 0
    fi
    pip_install 'moto.server, flask' 'moto[server]>=5.0'
    mkdir -p "$DIR"
    local port
    port=$(free_port)
    "$PYTHON" -m moto.server -H 127.0.0.1 -p "$port" \
        </dev/null >>"$DIR/moto.log" 2>&1 &
    echo $! >"$DIR/server.pid"
    if ! wait_port "$port" 30; then
        stop_pid "$DIR/server.pid"
        die "moto_server did not listen on port $port; see $DIR/moto.log"
    fi
    emit_to "$DIR/env" \
        S3_ENDPOINT "http://127.0.0.1:$port" \
        AWS_ACCESS_KEY_ID testing AWS_SECRET_ACCESS_KEY testing \
        AWS_DEFAULT_REGION us-east-1
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
