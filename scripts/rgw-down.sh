#!/usr/bin/env bash
# scripts/rgw-down.sh [--purge | --rgw-only] DATA_DIR
# Stops the radosgw, ceph-osd and ceph-mon that scripts/rgw-up.sh started in
# DATA_DIR, by the PIDs recorded there (DATA_DIR/pids and DATA_DIR/run/*.pid),
# and only if the process's command line names DATA_DIR/ceph.conf (guards
# against PID reuse). SIGTERM, then SIGKILL after CEPH_DOWN_TIMEOUT seconds
# (default 15).
# --purge: also delete DATA_DIR afterwards.
# --rgw-only: stop radosgw alone (an S3 outage); rgw-up.sh DATA_DIR starts it again.
set -uo pipefail
PURGE=0
DAEMONS="client.rgw.a osd.0 mon.a"      # reverse start order
case "${1:-}" in
  --purge) PURGE=1; shift ;;
  --rgw-only) DAEMONS=client.rgw.a; shift ;;
esac
[ $# -eq 1 ] || { echo "usage: $0 [--purge | --rgw-only] DATA_DIR" >&2; exit 2; }
[ -d "$1" ] || { echo "rgw-down: $1: no such directory" >&2; exit 0; }
D=$(cd "$1" && pwd -P)
CONF="$D/ceph.conf"
TMO=${CEPH_DOWN_TIMEOUT:-15}

ours() { [ -r "/proc/$1/cmdline" ] && tr '\0' '\n' <"/proc/$1/cmdline" | grep -qxF -- "$CONF"; }
pids_of() {  # pids recorded for daemon $1, deduplicated
  { [ -f "$D/pids" ] && awk -v n="$1" '$1==n{print $2}' "$D/pids"
    [ -s "$D/run/$1.pid" ] && cat "$D/run/$1.pid"; } 2>/dev/null | sort -u
}
rc=0
for name in $DAEMONS; do
  for pid in $(pids_of "$name"); do
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    if ! ours "$pid"; then echo "rgw-down: $name pid $pid not running (or not ours)" >&2; continue; fi
    t0=$(date +%s%N); kill -TERM "$pid" 2>/dev/null
    end=$(( t0 / 1000000 + TMO * 1000 ))   # ms
    while ours "$pid" && [ "$(( $(date +%s%N) / 1000000 ))" -lt "$end" ]; do sleep 0.1; done
    if ours "$pid"; then
      echo "rgw-down: $name pid $pid ignored SIGTERM for ${TMO}s, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null; sleep 0.2
    fi
    if ours "$pid"; then echo "rgw-down: $name pid $pid still alive" >&2; rc=1
    else echo "rgw-down: stopped $name (pid $pid) in $(( ($(date +%s%N)-t0)/1000000 )) ms" >&2; fi
  done
done
if [ "$PURGE" = 1 ] && [ "$rc" = 0 ]; then
  [ -f "$CONF" ] || [ -z "$(ls -A "$D")" ] || { echo "rgw-down: $D has no ceph.conf, not purging" >&2; exit 1; }
  rm -rf -- "$D" && echo "rgw-down: removed $D" >&2
fi
exit $rc
