#!/usr/bin/env bash
# Start a throwaway OpenSSH server on 127.0.0.1 for the sftp tests, and print
# shell exports describing it:
#
#   eval "$(bash scripts/sshd-up.sh DIR [--password-user USER])"
#   ...
#   bash scripts/sshd-down.sh DIR
#
# Everything lives in DIR: its own host key, its own config, a client key
# that may log in as the current user, the pid file and the log. Nothing
# outside DIR is changed, except that openssh-server is installed when it is
# missing (as root) and /run/sshd (sshd's privilege separation folder) is
# created. Running it again on the same DIR after sshd-down.sh starts the
# same server again: same port, same host key (a server restart).
#
# --password-user USER also lets the existing local USER log in with their
# password (for enrolment tests); everyone else logs in by key only.
#
# Exports: SSHD_HOST SSHD_PORT SSHD_USER SSHD_KEY (the client's private key)
# SSHD_HOST_KEY (the server's public key file) SSHD_KNOWN_HOSTS (a
# known_hosts file naming this server) SSHD_PID.
set -euo pipefail

usage() { echo "usage: sshd-up.sh DIR [--password-user USER]" >&2; exit 2; }
[ "$#" -ge 1 ] || usage
D=$1; shift
password_user=
while [ "$#" -gt 0 ]; do
    case "$1" in
        --password-user) [ "$#" -ge 2 ] || usage; password_user=$2; shift 2 ;;
        *) usage ;;
    esac
done

if [ ! -x /usr/sbin/sshd ]; then
    [ "$(id -u)" -eq 0 ] || { echo "sshd-up: openssh-server is missing; run as root to install it" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends openssh-server >&2 \
        || { apt-get -o DPkg::Lock::Timeout=300 update -q >&2 \
             && apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends openssh-server >&2; }
fi

mkdir -p "$D"
D=$(cd "$D" && pwd)
if [ -s "$D/sshd.pid" ] && kill -0 "$(cat "$D/sshd.pid")" 2>/dev/null; then
    echo "sshd-up: an sshd of $D is already running (pid $(cat "$D/sshd.pid"))" >&2
    exit 1
fi
mkdir -p /run/sshd
[ -f "$D/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C davgate-test-host -f "$D/host_ed25519"
[ -f "$D/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C davgate-test-client -f "$D/client_ed25519"
cp "$D/client_ed25519.pub" "$D/authorized_keys"
chmod 600 "$D/authorized_keys"

# A restart keeps its port, so clients reconnect to the same address.
if [ -s "$D/port" ]; then
    PORT=$(cat "$D/port")
else
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "$PORT" >"$D/port"
fi

cat >"$D/sshd_config" <<CONF
Port $PORT
ListenAddress 127.0.0.1
HostKey $D/host_ed25519
PidFile $D/sshd.pid
AuthorizedKeysFile $D/authorized_keys .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
LogLevel ERROR
CONF
if [ -n "$password_user" ]; then
    id "$password_user" >/dev/null || { echo "sshd-up: no local user $password_user" >&2; exit 1; }
    printf 'Match User %s\n    PasswordAuthentication yes\n' "$password_user" >>"$D/sshd_config"
fi

printf '[127.0.0.1]:%s %s\n' "$PORT" "$(cut -d' ' -f1-2 "$D/host_ed25519.pub")" >"$D/known_hosts"
rm -f "$D/sshd.pid"
/usr/sbin/sshd -f "$D/sshd_config" -E "$D/sshd.log"
for _ in $(seq 1 100); do [ -s "$D/sshd.pid" ] && break; sleep 0.05; done
[ -s "$D/sshd.pid" ] || { echo "sshd-up: sshd did not start: $(cat "$D/sshd.log")" >&2; exit 1; }
for _ in $(seq 1 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1).close()" 2>/dev/null && break
    sleep 0.05
done

echo "export SSHD_HOST=127.0.0.1 SSHD_PORT=$PORT SSHD_USER=$(id -un) SSHD_KEY=$D/client_ed25519" \
     "SSHD_HOST_KEY=$D/host_ed25519.pub SSHD_KNOWN_HOSTS=$D/known_hosts SSHD_PID=$(cat "$D/sshd.pid")"
