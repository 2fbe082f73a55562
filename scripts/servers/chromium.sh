#!/usr/bin/env bash
# Debian's Chromium and its WebDriver (chromium-driver, the same source
# package, so their versions always match), for the hub dashboard's browser
# test. Nothing runs in the background: `start` installs them if needed and
# prints CHROMIUM and CHROMEDRIVER; the test starts a headless browser of
# its own with a fresh profile. No browser is downloaded from anywhere else.
#
#   scripts/servers/chromium.sh start|stop|status

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

start() {
    if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
        apt_install chromium chromium-driver
    fi
    command -v chromium >/dev/null || die "no chromium after installing it"
    command -v chromedriver >/dev/null || die "no chromedriver after installing chromium-driver"
    mkdir -p "${ACCORD_CHROMIUM_DIR:-/tmp}"
    emit_to "${ACCORD_CHROMIUM_DIR:-/tmp}/chromium.env" \
        CHROMIUM "$(command -v chromium)" CHROMEDRIVER "$(command -v chromedriver)"
}

stop() { :; }

status() {
    command -v chromium >/dev/null && command -v chromedriver >/dev/null || {
        log "not installed"
        return 3
    }
    start
}

main start stop status "$@"
