#!/usr/bin/env bash
# Set everything up and run davgate on the embedded default configuration,
# conf/davgate.yaml: http://127.0.0.1:8080/, the folder ./data at /data,
# DISPEL at /dispel over a demo store (var/demo, written on first start).
# Extra arguments go to `davgate serve`, e.g. --port 9000.
#
# At first start an `admin` user with a random password is created and the
# password is shown once; var/htpasswd keeps only its bcrypt hash.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
mkdir -p data var
if [ ! -d var/demo/tiffstore ]; then
    echo "serve: writing the DISPEL demo store to var/demo (first start only)"
    .venv/bin/davgate demo-data var/demo >/dev/null
fi

config=conf/davgate.yaml
htpasswd=var/htpasswd
url=$(.venv/bin/python - "$config" <<'PY'
import sys, yaml
server = (yaml.safe_load(open(sys.argv[1])) or {}).get("server") or {}
print(f"http://{server.get('host', '127.0.0.1')}:{server.get('port', 8080)}/")
PY
)
if [ "$#" -gt 0 ]; then
    url="$url (unless changed by: $*)"
fi

if [ ! -e "$htpasswd" ]; then
    password=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(18))')
    printf '%s\n' "$password" | .venv/bin/davgate htpasswd "$htpasswd" admin --password-stdin
    cat <<MSG

  davgate first start: an administrator account was created.

    URL:      $url
    user:     admin
    password: $password

  This password is shown only now. It is stored only as a bcrypt hash
  in $htpasswd and cannot be recovered from there.

MSG
else
    cat <<MSG
serve: user admin; its password was shown at first start.
serve: to set a new one: .venv/bin/davgate htpasswd $htpasswd admin
MSG
fi

exec .venv/bin/davgate serve --config "$config" "$@"
