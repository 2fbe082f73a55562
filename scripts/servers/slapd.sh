#!/usr/bin/env bash
# A private OpenLDAP slapd on 127.0.0.1, for tests.
#
#   scripts/servers/slapd.sh start|stop|status
#
# Everything lives in $ACCORD_SLAPD_DIR (default /tmp/accord-slapd): the
# config (slapd.conf with the core, cosine, inetorgperson and nis schemas),
# the mdb database, log and pid. The suffix is dc=school,dc=example, with
# cn=admin,dc=school,dc=example / secret as its manager.
# `start` prints LDAP_URL, LDAP_BASE, LDAP_BIND_DN and LDAP_PASSWORD.
# With $ACCORD_SLAPD_LDIF set, a fresh database is first filled from that
# LDIF file by slapadd (offline, quick mode): how a benchmark loads 100,000
# entries in seconds rather than one add request each.
#
# The database does not sync its writes to disk (mdb's dbnosync): a crash of
# the machine may lose the last writes of this throwaway server, which tests
# and benchmarks never rely on; each write then costs no fsync.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

DIR=${ACCORD_SLAPD_DIR:-/tmp/accord-slapd}
SLAPD=${SLAPD:-/usr/sbin/slapd}
BASE="dc=school,dc=example"

ensure_slapd() {
    [ -x "$SLAPD" ] || apt_install slapd ldap-utils
    [ -x "$SLAPD" ] || die "no slapd at $SLAPD after installing slapd"
}

write_config() {
    local schema=/etc/ldap/schema
    mkdir -p "$DIR/data"
    cat >"$DIR/slapd.conf" <<CONF
include $schema/core.schema
include $schema/cosine.schema
include $schema/inetorgperson.schema
include $schema/nis.schema
pidfile $DIR/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 104857600
suffix "$BASE"
rootdn "cn=admin,$BASE"
rootpw secret
directory $DIR/data
dbnosync
index objectClass eq
CONF
}

start() {
    if pid_alive "$DIR/slapd.pid"; then
        cat "$DIR/env"
        return 0
    fi
    ensure_slapd
    mkdir -p "$DIR"
    write_config
    if [ -n "${ACCORD_SLAPD_LDIF:-}" ]; then
        "${SLAPADD:-/usr/sbin/slapadd}" -q -f "$DIR/slapd.conf" -l "$ACCORD_SLAPD_LDIF" \
            >>"$DIR/slapd.log" 2>&1 || die "slapadd did not load $ACCORD_SLAPD_LDIF; see $DIR/slapd.log"
    fi
    local port
    port=$(free_port)
    "$SLAPD" -f "$DIR/slapd.conf" -h "ldap://127.0.0.1:$port/" \
        >>"$DIR/slapd.log" 2>&1 || die "slapd did not start; see $DIR/slapd.log"
    if ! wait_port "$port" 20; then
        stop_pid "$DIR/slapd.pid"
        die "slapd did not listen on port $port; see $DIR/slapd.log"
    fi
    emit_to "$DIR/env" \
        LDAP_URL "ldap://127.0.0.1:$port" LDAP_BASE "$BASE" \
        LDAP_BIND_DN "cn=admin,$BASE" LDAP_PASSWORD secret
}

stop() { stop_pid "$DIR/slapd.pid"; }

status() {
    if pid_alive "$DIR/slapd.pid"; then
        cat "$DIR/env"
    else
        log "not running"
        return 3
    fi
}

main start stop status "$@"
