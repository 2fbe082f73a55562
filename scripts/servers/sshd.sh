#!/usr/bin/env bash
# A private OpenSSH server (with SFTP) on 127.0.0.1, for tests.
#
#   scripts/servers/sshd.sh start|stop|status
#
# Everything lives in $ACCORD_SSHD_DIR (default /tmp/accord-sshd): host key,
# client key, known_hosts, config, log, pid and root/, the folder the printed
# SFTP_URL points at. Only key login as the current user is allowed.
# $ACCORD_SSHD_EXTRA: more sshd_config lines (e.g. ForceCommand internal-sftp).
# `start` prints SFTP_URL, SFTP_HOST, SFTP_PORT, SFTP_USER, SFTP_ROOT,
# SSH_KEY and SSH_KNOWN_HOSTS; `status` prints them again while it runs.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

DIR=${ACCORD_SSHD_DIR:-/tmp/accord-sshd}
SSHD=${SSHD:-/usr/sbin/sshd}

ensure_sshd() {
    [ -x "$SSHD" ] || apt_install openssh-server
    [ -x "$SSHD" ] || die "no sshd at $SSHD after installing openssh-server"
}

make_keys() {
    [ -f "$DIR/host_ed25519" ] ||
        ssh-keygen -q -t ed25519 -N '' -C accord-test-host -f "$DIR/host_ed25519"
    [ -f "$DIR/id_ed25519" ] ||
        ssh-keygen -q -t ed25519 -N '' -C accord-test-client -f "$DIR/id_ed25519"
    cp "$DIR/id_ed25519.pub" "$DIR/authorized_keys"
}

write_config() {
    local port=$1
    cat >"$DIR/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $DIR/host_ed25519
PidFile $DIR/sshd.pid
AuthorizedKeysFile $DIR/authorized_keys
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PrintMotd no
MaxSessions 64
MaxStartups 64:30:128
Subsystem sftp internal-sftp
# accord's agent caches its modules here, not in the real home
SetEnv XDG_CACHE_HOME=$DIR/cache
${ACCORD_SSHD_EXTRA:-}
CONF
    printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$DIR/host_ed25519.pub")" \
        >"$DIR/known_hosts"
}

start() {
    if pid_alive "$DIR/server.pid"; then
        cat "$DIR/env"
        return 0
    fi
    ensure_sshd
    mkdir -p "$DIR/root" /run/sshd
    chmod 700 "$DIR"
    make_keys
    local port user
    port=$(free_port)
    user=$(id -un)
    write_config "$port"
    "$SSHD" -t -f "$DIR/sshd_config" || die "sshd rejects $DIR/sshd_config"
    "$SSHD" -D -e -f "$DIR/sshd_config" </dev/null >>"$DIR/sshd.log" 2>&1 &
    echo $! >"$DIR/server.pid"
    if ! wait_port "$port" 20; then
        stop_pid "$DIR/server.pid"
        die "sshd did not listen on port $port; see $DIR/sshd.log"
    fi
    emit_to "$DIR/env" \
        SFTP_URL "sftp://$user@127.0.0.1:$port$DIR/root" \
        SFTP_HOST 127.0.0.1 SFTP_PORT "$port" SFTP_USER "$user" \
        SFTP_ROOT "$DIR/root" \
        SSH_KEY "$DIR/id_ed25519" SSH_KNOWN_HOSTS "$DIR/known_hosts"
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
