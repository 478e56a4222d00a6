#!/usr/bin/env bash
# scripts/rgw-up.sh DATA_DIR
#
# Start a throw-away single-node Ceph cluster (1 mon, 1 OSD, no mgr) plus a
# RADOS Gateway (S3 API) for davgate's s3 tests, every socket bound to
# 127.0.0.1, all state, logs and PID files under DATA_DIR. Uses Debian 12's
# ceph 16.2.x packages and installs them with apt-get if they are missing
# (idempotent; needs root). Based on shared/recipes/ceph-rgw (see its NOTES.md).
#
# stdout: only shell exports, so use it as   eval "$(bash scripts/rgw-up.sh "$PWD/.ceph")"
#   S3_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION
#   AWS_REQUEST_CHECKSUM_CALCULATION AWS_RESPONSE_CHECKSUM_VALIDATION CEPH_CONF
#   (also saved as DATA_DIR/env)
# stderr: progress with timings.   Stop with: scripts/rgw-down.sh [--purge] DATA_DIR
# Running it again on a DATA_DIR whose cluster is up just re-prints the env;
# on one whose radosgw alone was stopped (rgw-down.sh --rgw-only) it starts
# radosgw again, on the same port with the same users and buckets.
#
# Optional environment:
#   CEPH_OBJECTSTORE   memstore (default: objects kept in the OSD's RAM, ~2 s start)
#                      bluestore (objects in a sparse file DATA_DIR/osd/ceph-0/block,
#                      bounded RAM (~0.5 GiB), ~6.5 s start; seen working on ext4 and tmpfs)
#   CEPH_STORE_GB      capacity the OSD reports / bluestore file size (default 4)
#   RGW_PORT, MON_PORT fixed ports (default: a free port picked in 20000-29999)
#   S3_ACCESS_KEY, S3_SECRET_KEY   keys of S3 user "davgate" (default: random)
#   CEPH_NO_INSTALL=1  never call apt-get
#   CEPH_UP_TIMEOUT    seconds to wait for each daemon (default 60)
#   CEPH_RGW_LC=true   run bucket-lifecycle threads (off: they make radosgw take 4-9 s to exit)
#
# Auth: cephx is OFF inside the cluster (auth_*_required = none, msgr2 crc
# mode); S3 requests are still authenticated (SigV4/SigV2) with the user's keys.
set -euo pipefail

T0=$(date +%s%N)
log() { printf '[rgw-up %5.1fs] %s\n' "$(( $(date +%s%N) - T0 ))e-9" "$*" >&2; }
STARTED=0
die() { log "ERROR: $*"; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 DATA_DIR" >&2; exit 2; }
mkdir -p "$1"
D=$(cd "$1" && pwd -P)
CONF="$D/ceph.conf"
STORE=${CEPH_OBJECTSTORE:-memstore}
STORE_GB=${CEPH_STORE_GB:-4}
WAIT=${CEPH_UP_TIMEOUT:-60}
case "$STORE" in memstore|bluestore) ;; *) die "CEPH_OBJECTSTORE must be memstore or bluestore";; esac

# ---------------------------------------------------------------- install
PKGS="ceph-mon ceph-osd radosgw ceph-common"
need_install=0
for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph curl ss; do
  command -v "$b" >/dev/null 2>&1 || need_install=1
done
if [ "$need_install" = 1 ]; then
  [ "${CEPH_NO_INSTALL:-0}" = 1 ] && die "ceph binaries missing and CEPH_NO_INSTALL=1"
  log "installing $PKGS curl iproute2 (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # no systemd here and policy-rc.d denies starts: postinst scripts start no daemons
  apt_install() { apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends $PKGS curl iproute2 >&2; }
  apt_install || { apt-get -o DPkg::Lock::Timeout=300 update -q >&2 && apt_install; } || die "apt-get install failed"
  log "install done"
fi

# ---------------------------------------------------------------- helpers
C=(-c "$CONF")
wait_for() {  # wait_for DESCRIPTION CMD...   retries CMD for $WAIT seconds
  local what=$1; shift; local end=$(( $(date +%s) + WAIT ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || die "timed out waiting for $what (logs in $D/log)"
    sleep 0.2
  done
  log "$what ready"
}
record_pid() {  # daemons fork and write run/NAME.pid; keep a copy in DATA_DIR/pids
  local i; for i in $(seq 1 50); do [ -s "$D/run/$1.pid" ] && break; sleep 0.1; done
  [ -s "$D/run/$1.pid" ] || die "$1 wrote no pid file (see $D/log)"
  echo "$1 $(cat "$D/run/$1.pid")" >>"$D/pids"
}
start_rgw() {  # start radosgw on $RGW_PORT and wait until it answers
  rm -f "$D/run/client.rgw.a.pid"    # a stopped radosgw may leave its old one
  radosgw "${C[@]}" -n client.rgw.a 2>>"$D/log/rgw.stderr" || die "radosgw failed to start (see $D/log)"
  record_pid client.rgw.a
  wait_for "rgw (http://127.0.0.1:$RGW_PORT)" curl -sf -m 2 -o /dev/null "http://127.0.0.1:$RGW_PORT/"
  ss -Hltnp "sport = :$RGW_PORT" | grep -q "pid=$(cat "$D/run/client.rgw.a.pid")," \
    || die "port $RGW_PORT answers but is not our radosgw (port race?)"
}

# ---------------------------------------------------------------- reuse?
ours() { [ -r "/proc/$1/cmdline" ] && tr '\0' '\n' <"/proc/$1/cmdline" | grep -qxF -- "$CONF"; }
alive() { [ -s "$D/run/$1.pid" ] && ours "$(cat "$D/run/$1.pid")"; }
if [ -f "$D/env" ] && alive client.rgw.a && alive osd.0 && alive mon.a; then
  log "cluster in $D already running; re-printing its env"
  cat "$D/env"; exit 0
fi
if [ -f "$D/env" ] && alive osd.0 && alive mon.a; then
  RGW_PORT=$(sed -n 's|^export S3_ENDPOINT_URL=http://127.0.0.1:||p' "$D/env")
  [ -n "$RGW_PORT" ] || die "no S3_ENDPOINT_URL in $D/env"
  log "mon and osd in $D are running; starting radosgw again"
  start_rgw
  cat "$D/env"; exit 0
fi
[ -z "$(ls -A "$D" 2>/dev/null)" ] || \
  die "$D is not empty and holds no running cluster: run rgw-down.sh --purge $D, or use an empty dir"

# on failure, stop whatever this run started (PIDs checked against our ceph.conf)
cleanup_on_fail() {
  local rc=$? name pid
  [ "$rc" -ne 0 ] && [ "$STARTED" = 1 ] && [ -f "$D/pids" ] || return 0
  log "startup failed: stopping the daemons it started (logs kept in $D/log)"
  while read -r name pid; do
    ours "$pid" && kill -KILL "$pid" 2>/dev/null && log "killed $name ($pid)"
  done < <(tac "$D/pids")
}
trap cleanup_on_fail EXIT

# ---------------------------------------------------------------- ports
port_free() { ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
pick_port() {  # random free TCP port in 20000-29999 (outside ceph's OSD range 6800-7300)
  local p i
  for i in $(seq 1 200); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 10000 ))
    port_free "$p" && { echo "$p"; return 0; }
  done
  return 1
}
MON_PORT=${MON_PORT:-$(pick_port)} || die "no free port"
RGW_PORT=${RGW_PORT:-$(pick_port)} || die "no free port"
[ "$MON_PORT" != "$RGW_PORT" ] || RGW_PORT=$(pick_port)
port_free "$MON_PORT" || die "MON_PORT $MON_PORT in use"
port_free "$RGW_PORT" || die "RGW_PORT $RGW_PORT in use"

# ---------------------------------------------------------------- config
mkdir -p "$D"/{mon,osd,rgw,run,log,crash,tmp}
FSID=$(cat /proc/sys/kernel/random/uuid)
cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.1/32
ms bind ipv6 = false
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
# radosgw defaults to ms_mon_client_mode=secure, impossible without cephx
ms mon client mode = crc
client mount timeout = 20
run dir = $D/run
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
crash dir = $D/crash
tmp dir = $D/tmp
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
# default 1 s; 0.1 cuts RGW start (it creates 4 pools) from ~8.5 s to ~2 s
paxos propose interval = 0.1

[mon]
mon data = $D/mon/\$cluster-\$id

[osd]
osd data = $D/osd/\$cluster-\$id
osd objectstore = $STORE
memstore device bytes = $(( STORE_GB * 1024 * 1024 * 1024 ))
bluestore block create = true
bluestore block size = $(( STORE_GB * 1024 * 1024 * 1024 ))
osd memory target = 939524096

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw data = $D/rgw
# deleted/overwritten object data is reclaimed after ~1 min instead of 2 h
rgw gc obj min wait = 60
rgw gc processor period = 30
rgw dynamic resharding = false
rgw enable usage log = false
rgw thread pool size = 64
rgw enable lc threads = ${CEPH_RGW_LC:-false}
EOF

# ---------------------------------------------------------------- mon
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$D/tmp/monmap" >/dev/null
ceph-mon "${C[@]}" --mkfs -i a --monmap "$D/tmp/monmap" 2>>"$D/log/mkfs.log" || die "mon mkfs failed"
STARTED=1
ceph-mon "${C[@]}" -i a 2>>"$D/log/mon.a.stderr" || die "ceph-mon failed to start (see $D/log)"
record_pid mon.a
wait_for "mon (127.0.0.1:$MON_PORT)" ceph "${C[@]}" --connect-timeout 5 mon stat

# ---------------------------------------------------------------- osd
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
OSD_ID=$(ceph "${C[@]}" --connect-timeout 10 osd new "$OSD_UUID")
[ "$OSD_ID" = 0 ] || die "unexpected osd id '$OSD_ID'"
mkdir -p "$D/osd/ceph-0"     # ceph-osd --mkfs does not create it
ceph-osd "${C[@]}" -i 0 --mkfs --osd-uuid "$OSD_UUID" >>"$D/log/mkfs.log" 2>&1 \
  || die "osd mkfs failed (see $D/log/mkfs.log)"
ceph-osd "${C[@]}" -i 0 2>>"$D/log/osd.0.stderr" || die "ceph-osd failed to start (see $D/log)"
record_pid osd.0
osd_up() { ceph "${C[@]}" --connect-timeout 5 osd dump 2>/dev/null | grep -q '^osd\.0 up'; }
wait_for "osd.0 ($STORE)" osd_up

# ---------------------------------------------------------------- rgw
start_rgw

# ---------------------------------------------------------------- s3 user
rnd() { local u; u=$(cat /proc/sys/kernel/random/uuid /proc/sys/kernel/random/uuid); u=${u//-/}; u=${u//$'\n'/}; echo "${u:0:$1}"; }
AK=${S3_ACCESS_KEY:-$(rnd 20 | tr a-f A-F)}
SK=${S3_SECRET_KEY:-$(rnd 40)}
radosgw-admin "${C[@]}" user create --uid=davgate --display-name=davgate \
  --access-key="$AK" --secret-key="$SK" >"$D/tmp/user.json" 2>>"$D/log/radosgw-admin.log" \
  || die "radosgw-admin user create failed"
log "S3 user davgate created"

cat >"$D/env" <<EOF
export S3_ENDPOINT_URL=http://127.0.0.1:$RGW_PORT
export AWS_ACCESS_KEY_ID=$AK
export AWS_SECRET_ACCESS_KEY=$SK
export AWS_DEFAULT_REGION=us-east-1
export AWS_REQUEST_CHECKSUM_CALCULATION=when_required
export AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
export CEPH_CONF=$CONF
EOF
log "up: S3 endpoint http://127.0.0.1:$RGW_PORT (mon 127.0.0.1:$MON_PORT, $STORE, data $D)"
cat "$D/env"
