"""Tokens against a real davgate: keygen, users file, token, then PUT/GET as a workflow engine would."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.helpers import USERS, Server, ServerLauncher, wait_until

EMAIL = "ee@example.org"
TIMEOUT = 10


def davgate(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "davgate", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    folder.mkdir()
    entry = davgate("keygen", "--out", "ee", "--email", EMAIL, "--name", "Execution environment", cwd=folder)
    (folder / "users.json").write_text(entry)
    davgate("keygen", "--out", "stranger", "--email", "stranger@example.org", cwd=folder)
    return folder


def mint(keys: Path, name: str = "ee", email: str = EMAIL, *extra: str) -> str:
    return davgate("token", "--key", name, "--email", email, "--aud", "davgate", *extra, cwd=keys).strip()


@pytest.fixture
def server(serve: ServerLauncher, tmp_path: Path, keys: Path, htpasswd_file: Path) -> Server:
    (tmp_path / "data").mkdir()
    (tmp_path / "shared").mkdir()
    config = {
        "auth": {
            "htpasswd": htpasswd_file,
            "jwt": {"users": keys / "users.json", "audience": "davgate"},
            "throttle": {
                "failures": 0
            },  # tokens refused until a reload are retried here (see tests/auth/test_throttle)
        },
        "mounts": {
            "/data": {"type": "local", "root": tmp_path / "data"},
            "/shared": {"type": "local", "root": tmp_path / "shared", "access": {"read": ["*"], "write": [EMAIL]}},
        },
        "state": {"type": "sqlite", "path": tmp_path / "state.db"},
    }
    return serve(config, extra_args=["--log-level", "DEBUG"])


def bearer(text: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {text}"}


def test_bearer_put_and_get(server: Server, keys: Path) -> None:
    token = mint(keys)
    body = bytes(range(256)) * 4096
    put = requests.put(f"{server.url}/data/run/../result.bin", data=body, headers=bearer(token), timeout=TIMEOUT)
    assert put.status_code == 201
    got = requests.get(f"{server.url}/data/result.bin", headers=bearer(token), timeout=TIMEOUT)
    assert got.status_code == 200 and got.content == body
    ranged = requests.get(
        f"{server.url}/data/result.bin", headers={**bearer(token), "Range": "bytes=0-3"}, timeout=TIMEOUT
    )
    assert ranged.status_code == 206 and ranged.content == body[:4]


def test_jwt_as_basic_password(server: Server, keys: Path) -> None:
    token = mint(keys)
    put = requests.put(f"{server.url}/shared/by-basic.txt", data=b"davfs2", auth=("ee", token), timeout=TIMEOUT)
    assert put.status_code == 201  # /shared is writable by the token's user only
    assert requests.get(f"{server.url}/shared/by-basic.txt", auth=("ee", token), timeout=TIMEOUT).content == b"davfs2"


def test_access_rules_apply_to_both_kinds_of_user(server: Server, keys: Path) -> None:
    assert (
        requests.put(f"{server.url}/shared/t.txt", data=b"t", headers=bearer(mint(keys)), timeout=TIMEOUT).status_code
        == 201
    )
    alice = ("alice", USERS["alice"])
    assert requests.get(f"{server.url}/shared/t.txt", auth=alice, timeout=TIMEOUT).status_code == 200
    denied = requests.put(f"{server.url}/shared/t.txt", data=b"a", auth=alice, timeout=TIMEOUT)
    assert denied.status_code == 403


def test_refused_and_malformed_credentials_get_a_clean_401(server: Server, keys: Path) -> None:
    forged = mint(keys, "stranger", EMAIL)  # names ee, signed with another key
    response = requests.get(f"{server.url}/data/", headers=bearer(forged), timeout=TIMEOUT)
    assert response.status_code == 401
    assert (
        response.headers["WWW-Authenticate"] == 'Basic realm="davgate", Bearer realm="davgate", error="invalid_token"'
    )
    assert response.text == "401 Unauthorized: bad signature\n"
    for header in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Digest username=x"):
        bad = requests.get(f"{server.url}/data/", headers={"Authorization": header}, timeout=TIMEOUT)
        assert bad.status_code == 401, header
        assert bad.headers["WWW-Authenticate"] == 'Basic realm="davgate", Bearer realm="davgate"'
    none = requests.get(f"{server.url}/data/", timeout=TIMEOUT)
    assert none.status_code == 401
    assert none.headers["WWW-Authenticate"] == 'Basic realm="davgate", Bearer realm="davgate"'


def test_new_users_need_no_restart(server: Server, keys: Path) -> None:
    entry = json.loads(davgate("keygen", "--out", "late", "--email", "late@example.org", cwd=keys))
    users = json.loads((keys / "users.json").read_text())
    token = mint(keys, "late", "late@example.org")
    assert requests.get(f"{server.url}/data/", headers=bearer(token), timeout=TIMEOUT).status_code == 401
    (keys / "users.json").write_text(json.dumps({**users, **entry}))
    wait_until(
        lambda: requests.get(f"{server.url}/data/", headers=bearer(token), timeout=TIMEOUT).status_code == 200,
        message="the new user was never accepted",
    )


def test_no_secret_reaches_the_log(server: Server, keys: Path) -> None:
    """Good and bad tokens, passwords and raw Authorization values: none in the (DEBUG) log."""
    good, forged = mint(keys), mint(keys, "stranger", EMAIL)
    unknown = mint(keys, "stranger", "stranger@example.org")
    secrets = [good, forged, unknown, USERS["alice"], "not-her-password", "Basic !!!"]
    sent = []
    for headers in (
        bearer(good),
        bearer(forged),
        bearer(unknown),
        {"Authorization": good},
        {"Authorization": "Basic !!!"},
    ):
        sent.append(headers["Authorization"])
        requests.get(f"{server.url}/data/", headers=headers, timeout=TIMEOUT)
    for auth in (("alice", USERS["alice"]), ("alice", "not-her-password"), ("x", good), ("x", forged)):
        requests.put(f"{server.url}/data/log.txt", data=b"x", auth=auth, timeout=TIMEOUT)
        sent.append(requests.Request("GET", server.url, auth=auth).prepare().headers["Authorization"])
    log = wait_until(lambda: (text := server.log_text()).count('"GET /data/"') >= 5 and text)
    assert "token refused for user 'ee@example.org' (bad signature)" in log  # it did log the refusals
    assert "token refused for user 'stranger@example.org' (user is not in the users file)" in log
    for secret in secrets + sent:
        assert secret not in log
        for part in secret.split("."):
            if len(part) > 20:
                assert part not in log, "a part of a token reached the log"
