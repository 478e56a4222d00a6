#!/usr/bin/env bash
# Set everything up and run the whole test suite; extra arguments go to pytest.
#
#   bash scripts/test.sh                 # all tests (testpaths = tests, setup.cfg)
#   bash scripts/test.sh -k litmus -x    # a selection
#
# Exits with pytest's status; "no tests collected" (5) counts as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --test
if ! command -v litmus >/dev/null; then
    echo "test: error: litmus is missing; the litmus tests cannot run" >&2
    exit 1
fi

status=0
.venv/bin/python -m pytest -q -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test: error: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
