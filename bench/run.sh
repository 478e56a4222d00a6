#!/usr/bin/env bash
# The benchmark, one command:
#
#   bash bench/run.sh              # full run: 1 GiB transfers, 10,000-file PROPFIND, 3 rounds (~15 min)
#   bash bench/run.sh --quick      # smoke run: small sizes, 1 round (~1 min)
#   bash bench/run.sh --profile    # also py-spy davgate during the 4 KiB and PROPFIND phases
#   bash bench/run.sh --rounds 5 --out FILE
#   bash bench/run.sh --engine granian     # davgate on another server.engine than its default
#   bash bench/run.sh --only small_get,small_put   # only these phases (names as in the JSON)
#   bash bench/run.sh --state postgres     # davgate's state in a PostgreSQL the run starts (default: SQLite)
#
# Installs what it needs (scripts/setup.sh --bench: nginx with dav-ext, wrk,
# rclone, stock WsgiDAV in bench/.venv-stock; needs root), mounts a tmpfs of
# its own in a temporary folder, starts a Ceph RGW, an sshd, stock WsgiDAV,
# rclone, nginx and davgate on free loopback ports, measures them
# interleaved, stops exactly what it started, prints the tables, and writes
# bench/results/latest.json (quick.json with --quick). See BENCHMARKS.md.
# BENCH_TMPDIR: where the temporary folder goes (default /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --bench >&2
work=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/davgate-bench.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    # the run unmounts its tmpfs itself; this is the safety net if it was killed
    if mountpoint -q "$work/fs" 2>/dev/null; then umount "$work/fs" 2>/dev/null || umount --lazy "$work/fs"; fi
    rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

.venv/bin/python -m bench --work "$work" "$@" &
pid=$!
status=0
wait "$pid" || status=$?
pid=
exit "$status"
