#!/usr/bin/env bash
# Install what davgate needs on Debian 12 and its Python environment (.venv).
#
#   bash scripts/setup.sh          # to run the server
#   bash scripts/setup.sh --test   # to run the test suite as well
#   bash scripts/setup.sh --bench  # and the benchmark's anchors (bench/run.sh)
#
# Idempotent: Debian packages already installed and an up-to-date .venv are
# left alone, so a second run takes about a second. Installing packages needs
# root. Output is kept quiet; when a step fails its full output is shown.
set -euo pipefail

# Debian packages, by purpose. Add new packages here, nowhere else.
SERVE_PACKAGES=(python3-venv python3-pip curl)
TEST_PACKAGES=(litmus ceph-mon ceph-osd radosgw ceph-common iproute2 openssh-server openssh-client nginx openssl)
# systemd-analyze checks conf/davgate.service; postgresql runs the PostgreSQL state store's tests.
TEST_PACKAGES+=(systemd postgresql)
# The real WebDAV clients of the acceptance tests (tests/clients/).
TEST_PACKAGES+=(davfs2 fuse3 cadaver rclone chromium chromium-driver php-cli php-curl php-xml php-mbstring php-sabre-dav)
BENCH_PACKAGES=(nginx libnginx-mod-http-dav-ext wrk rclone)
# The benchmark's Python anchors, each in a venv of its own from its lock:
# stock WsgiDAV (and py-spy, which profiles davgate in bench/run.sh --profile), TiTiler.
ANCHOR_VENVS=(stock titiler)

usage() {
    echo "usage: bash scripts/setup.sh [--test | --bench]" >&2
    exit 2
}

mode=serve
case "${1-}" in
    "") ;;
    --test) mode=test ;;
    --bench) mode=bench ;;
    *) usage ;;
esac
[ "$#" -le 1 ] || usage

cd "$(dirname "$0")/.."
repo=$(pwd)
log=$(mktemp)
trap 'rm -f "$log"' EXIT

say() { echo "setup: $*"; }
die() { echo "setup: error: $*" >&2; exit 1; }

# Run a command with its output captured; show the output only if it fails.
quietly() {
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        die "failed: $*"
    fi
}

is_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

install_packages() {
    local wanted=("$@") missing=() package
    for package in "${wanted[@]}"; do
        is_installed "$package" || missing+=("$package")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return
    fi
    [ "$(id -u)" -eq 0 ] || die "run as root to install: ${missing[*]}"
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get -o DPkg::Lock::Timeout=300)
    quietly "${apt[@]}" update
    quietly "${apt[@]}" install -y --no-install-recommends "${missing[@]}"
}

# The .venv is current when it was built from these very lock files,
# setup.cfg and pyproject.toml with (at least) the extras asked for now.
stamp_file=.venv/.davgate-setup
stamp_for() {
    printf '%s %s\n' "$1" "$(cat requirements/*.lock setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)"
}
venv_is_current() {
    [ -f "$stamp_file" ] && .venv/bin/python -c '' 2>/dev/null || return 1
    local stamp
    stamp=$(cat "$stamp_file")
    [ "$stamp" = "$(stamp_for "$pymode")" ] || [ "$stamp" = "$(stamp_for test)" ]
}

# Exactly the lock (every file's hash checked, nothing resolved again), then
# davgate itself without its dependencies: what is installed is what was tested.
install_python() {
    if venv_is_current; then
        return
    fi
    if ! .venv/bin/python -c '' 2>/dev/null; then
        say "creating $repo/.venv"
        quietly python3 -m venv --clear .venv
    fi
    local pip=(.venv/bin/python -m pip --quiet --disable-pip-version-check --no-input)
    local lock=requirements/$pymode.lock
    say "installing Python packages into .venv ($lock)"
    quietly "${pip[@]}" install --require-hashes --no-deps -r "$lock"
    quietly "${pip[@]}" install --no-deps --no-build-isolation -e .
    stamp_for "$pymode" >"$stamp_file"
}

# bench/.venv-NAME from requirements/bench-NAME.lock, exactly, when the lock changed.
install_anchor_venv() {
    local venv=bench/.venv-$1 lock=requirements/bench-$1.lock stamp
    stamp=$(sha256sum "$lock" | cut -d' ' -f1)
    if [ -f "$venv/.stamp" ] && [ "$(cat "$venv/.stamp")" = "$stamp" ]; then
        return
    fi
    say "creating $repo/$venv ($lock)"
    quietly python3 -m venv --clear "$venv"
    quietly "$venv/bin/python" -m pip --quiet --disable-pip-version-check --no-input \
        install --require-hashes --no-deps -r "$lock"
    echo "$stamp" >"$venv/.stamp"
}

pymode=$mode  # the benchmark uses the test extras
if [ "$mode" = bench ]; then pymode=test; fi
packages=("${SERVE_PACKAGES[@]}")
if [ "$mode" != serve ]; then packages+=("${TEST_PACKAGES[@]}"); fi
if [ "$mode" = bench ]; then packages+=("${BENCH_PACKAGES[@]}"); fi
install_packages "${packages[@]}"
install_python
if [ "$mode" = bench ]; then
    for anchor in "${ANCHOR_VENVS[@]}"; do install_anchor_venv "$anchor"; done
fi
if [ "$mode" != serve ]; then
    command -v litmus >/dev/null || die "litmus is not on PATH after installing it"
    [ -x /usr/sbin/sshd ] || die "sshd is missing after installing openssh-server"
fi
if [ "$mode" = bench ]; then
    for tool in nginx wrk rclone; do
        command -v "$tool" >/dev/null || die "$tool is not on PATH after installing it"
    done
fi
say "ready ($mode)"
