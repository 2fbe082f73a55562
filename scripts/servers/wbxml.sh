#!/usr/bin/env bash
# libwbxml's command-line tools (Debian's libwbxml2-utils), the reference
# the SyncML WBXML codec is tested against. Nothing runs in the background:
# `start` installs them if needed and prints XML2WBXML and WBXML2XML.
#
#   scripts/servers/wbxml.sh start|stop|status

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

start() {
    command -v xml2wbxml >/dev/null || apt_install libwbxml2-utils
    command -v xml2wbxml >/dev/null || die "no xml2wbxml after installing libwbxml2-utils"
    emit_to "${ACCORD_WBXML_DIR:-/tmp}/wbxml.env" \
        XML2WBXML "$(command -v xml2wbxml)" WBXML2XML "$(command -v wbxml2xml)"
}

stop() { :; }

status() { start; }

main start stop status "$@"
