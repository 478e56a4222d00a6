#!/usr/bin/env bash
# Refresh the lock files from the ranges in setup.cfg: exact versions with
# hashes, for Python 3.11 on Linux, resolved by uv (locked in the test extra).
#
#   bash scripts/lock.sh                          # keep locked versions where the ranges allow
#   bash scripts/lock.sh --upgrade-package boto3  # move one package to its newest allowed release
#   bash scripts/lock.sh --upgrade                # move every package
#
# Then run the suite (bash scripts/test.sh) and commit setup.cfg and
# requirements/ together. The benchmark's anchors (requirements/bench-*.in,
# each for a venv of its own) are locked here too. requirements/test.lock is resolved first;
# requirements/serve.lock (the server alone, what the image installs) is
# resolved within it, so both name the same version of every package.
set -euo pipefail
cd "$(dirname "$0")/.."

uv=.venv/bin/uv
[ -x "$uv" ] || { echo "lock: $uv is missing: run bash scripts/setup.sh --test first" >&2; exit 1; }

# fs.sshfs 1.0.2, its last release, declares paramiko<4. It works with
# paramiko 4 and 5, which no longer carry DSA keys; paramiko 3.x reaches for
# cryptography's DSA classes, which cryptography 51 deprecates and a later
# release removes. The lock therefore overrides that one cap (README,
# "Dependencies"). This is the only override.
overrides=requirements/overrides.txt

compile() {
    "$uv" pip compile setup.cfg --quiet --generate-hashes --python-version 3.11 \
        --python-platform x86_64-unknown-linux-gnu --override "$overrides" \
        --custom-compile-command "bash scripts/lock.sh" "$@"
}
compile --extra test -o requirements/test.lock "$@"
compile -c requirements/test.lock -o requirements/serve.lock
# The benchmark's anchors, each for a venv of its own (bench/.venv-NAME).
for anchor in requirements/bench-*.in; do
    "$uv" pip compile "$anchor" --quiet --generate-hashes --python-version 3.11 \
        --python-platform x86_64-unknown-linux-gnu --custom-compile-command "bash scripts/lock.sh" \
        -o "${anchor%.in}.lock" "$@"
done
echo "lock: requirements/*.lock refreshed; now run bash scripts/test.sh"
