#!/usr/bin/env bash
# A WebDAV server (WsgiDAV on cheroot) on 127.0.0.1, for tests of webdav://.
#
#   scripts/servers/webdav.sh start|stop|status
#
# Everything lives in $ACCORD_WEBDAV_DIR (default /tmp/accord-webdav): the
# served folder (data/), the configuration, the log, the pid and the printed
# settings. One user with a fresh random password (HTTP basic auth).
# `start` prints WEBDAV_URL, WEBDAV_USER, WEBDAV_PASSWORD and WEBDAV_ROOT
# (the served folder on this machine).

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

DIR=${ACCORD_WEBDAV_DIR:-/tmp/accord-webdav}

start() {
    running && return 0
    pip_install 'wsgidav, cheroot' 'wsgidav>=4.3' 'cheroot>=10'
    mkdir -p "$DIR/data"
    local port password
    port=$(free_port)
    password=$(fresh_password)
    "$PYTHON" - "$DIR" "$port" "$password" <<'PY'
import json, sys
folder, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]
config = {
    "host": "127.0.0.1",
    "port": port,
    "provider_mapping": {"/": f"{folder}/data"},
    "http_authenticator": {
        "domain_controller": None,
        "accept_basic": True,
        "accept_digest": False,
        "default_to_digest": False,
    },
    "simple_dc": {"user_mapping": {"*": {"accord": {"password": password}}}},
    "verbose": 1,
    "logging": {"enable_loggers": []},
}
with open(f"{folder}/wsgidav.json", "w") as out:
    json.dump(config, out)
PY
    launch "$port" "$DIR/webdav.log" \
        "$PYTHON" -m wsgidav.server.server_cli -c "$DIR/wsgidav.json"
    emit_to "$DIR/env" \
        WEBDAV_URL "http://127.0.0.1:$port" WEBDAV_USER accord \
        WEBDAV_PASSWORD "$password" WEBDAV_ROOT "$DIR/data"
}

main start stop_server show_status "$@"
