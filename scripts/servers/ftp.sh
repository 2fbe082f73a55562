#!/usr/bin/env bash
# An FTP server (pyftpdlib) on 127.0.0.1, for tests of ftp:// places.
#
#   scripts/servers/ftp.sh start|stop|status
#
# Everything lives in $ACCORD_FTP_DIR (default /tmp/accord-ftp): the served
# folder (data/), the log, the pid and the printed settings. One user with
# a fresh random password may write. `start` prints FTP_HOST, FTP_PORT,
# FTP_USER, FTP_PASSWORD and FTP_ROOT (the served folder on this machine).

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

DIR=${ACCORD_FTP_DIR:-/tmp/accord-ftp}

start() {
    running && return 0
    pip_install pyftpdlib 'pyftpdlib>=1.5'
    mkdir -p "$DIR/data"
    local port password
    port=$(free_port)
    password=$(fresh_password)
    launch "$port" "$DIR/ftp.log" "$PYTHON" -m pyftpdlib -i 127.0.0.1 \
        -p "$port" -d "$DIR/data" -w -u accord -P "$password"
    emit_to "$DIR/env" \
        FTP_HOST 127.0.0.1 FTP_PORT "$port" FTP_USER accord \
        FTP_PASSWORD "$password" FTP_ROOT "$DIR/data"
}

main start stop_server show_status "$@"
