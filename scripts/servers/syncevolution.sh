#!/usr/bin/env bash
# SyncEvolution (Debian's syncevolution, syncevolution-http) as a SyncML peer
# for tests: its HTTP server on 127.0.0.1, and the pieces its command-line
# client needs.
#
#   scripts/servers/syncevolution.sh start|stop|status
#
# Everything lives in $ACCORD_SYNCEVO_DIR (default /tmp/accord-syncevo): the
# server's HOME and XDG folders, its log and process-group id, and the
# LD_PRELOAD shim the Debian 12 client needs (its HTTP transport passes C++
# lambdas through curl's varargs and crashes on the first POST; the shim
# hands curl real callbacks). Stores and accounts are configured by the tests
# (syncevolution --configure with the server's environment) while it runs.
# `start` prints SYNCEVO_URL, SYNCEVO_DIR and SYNCEVO_SHIM.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

DIR=${ACCORD_SYNCEVO_DIR:-/tmp/accord-syncevo}
SYS_PYTHON=/usr/bin/python3

ensure_syncevolution() {
    if [ -x /usr/bin/syncevo-http-server ] && command -v wbxml2xml >/dev/null \
        && command -v gcc >/dev/null && "$SYS_PYTHON" -c 'import twisted.web' 2>/dev/null; then
        return 0
    fi
    # python3-twisted is a dependency syncevolution-http forgets to name
    apt_install syncevolution syncevolution-http libwbxml2-utils dbus \
        python3-twisted gcc libc6-dev
    [ -x /usr/bin/syncevo-http-server ] || die "no syncevo-http-server after installing"
}

build_shim() {
    cat >"$DIR/curl-fix.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
typedef int CURLcode;
typedef size_t (*member_fn)(void *self, void *buf, size_t len);
#define OPT_WRITEFUNCTION 20011
#define OPT_READFUNCTION  20012
static member_fn se_write, se_read;
static size_t write_cb(char *p, size_t s, size_t n, void *ud) { return se_write(ud, p, s * n); }
static size_t read_cb(char *p, size_t s, size_t n, void *ud)  { return se_read(ud, p, s * n); }
static int from_libsyncevolution(void *ret) {
    Dl_info info;
    return dladdr(ret, &info) && info.dli_fname && strstr(info.dli_fname, "libsyncevolution");
}
CURLcode curl_easy_setopt(void *h, int opt, ...) {
    static CURLcode (*real)(void *, int, ...);
    if (!real) real = (CURLcode (*)(void *, int, ...))dlsym(RTLD_NEXT, "curl_easy_setopt");
    va_list ap; va_start(ap, opt);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if ((opt == OPT_WRITEFUNCTION || opt == OPT_READFUNCTION)
        && from_libsyncevolution(__builtin_return_address(0))) {
        if (!se_write) {
            se_write = (member_fn)dlsym(RTLD_DEFAULT, "_ZN7SyncEvo18CurlTransportAgent9writeDataEPvm");
            se_read  = (member_fn)dlsym(RTLD_DEFAULT, "_ZN7SyncEvo18CurlTransportAgent8readDataEPvm");
        }
        if (se_write && se_read) arg = (opt == OPT_WRITEFUNCTION) ? (void *)write_cb : (void *)read_cb;
    }
    return real(h, opt, arg);
}
C
    gcc -O2 -shared -fPIC -o "$DIR/curl-fix.so" "$DIR/curl-fix.c" -ldl \
        || die "could not build the SyncEvolution client shim"
}

start() {
    if [ -s "$DIR/pgid" ] && kill -0 -- "-$(cat "$DIR/pgid")" 2>/dev/null; then
        cat "$DIR/env"
        return 0
    fi
    ensure_syncevolution
    mkdir -p "$DIR"/server/{home,config,data,cache}
    build_shim
    # the stock server binds every interface; this copy binds 127.0.0.1 only
    sed 's/reactor.listenTCP(url.port, site)/reactor.listenTCP(url.port, site, interface=url.hostname)/' \
        /usr/bin/syncevo-http-server >"$DIR/syncevo-http-server"
    local port
    port=$(free_port)
    local url="http://127.0.0.1:$port/syncevolution"
    (
        cd "$DIR" || exit 1
        exec env -u DBUS_SESSION_BUS_ADDRESS -u DISPLAY \
            HOME="$DIR/server/home" XDG_CONFIG_HOME="$DIR/server/config" \
            XDG_DATA_HOME="$DIR/server/data" XDG_CACHE_HOME="$DIR/server/cache" \
            setsid sh -c 'echo $$ > pgid; exec dbus-run-session -- "$0" "$@"' \
            "$SYS_PYTHON" "$DIR/syncevo-http-server" "$url" \
            >>"$DIR/server.log" 2>&1 </dev/null
    ) &
    if ! wait_port "$port" 60; then
        stop
        die "syncevo-http-server did not listen on $port; see $DIR/server.log"
    fi
    emit_to "$DIR/env" SYNCEVO_URL "$url" SYNCEVO_DIR "$DIR" SYNCEVO_SHIM "$DIR/curl-fix.so"
}

stop() {
    [ -s "$DIR/pgid" ] || return 0
    local pgid
    pgid=$(cat "$DIR/pgid")
    kill -TERM -- "-$pgid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 -- "-$pgid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pgid" 2>/dev/null || true
    rm -f "$DIR/pgid"
}

status() {
    if [ -s "$DIR/pgid" ] && kill -0 -- "-$(cat "$DIR/pgid")" 2>/dev/null; then
        cat "$DIR/env"
    else
        log "not running"
        return 3
    fi
}

main start stop status "$@"
