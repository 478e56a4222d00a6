"""The seed's whole scenario against a real davgate (two worker processes) and a real sshd.

Register a user; create an infrastructure with a native and an sshfs adaptor
(the sshfs password used once, to enrol a key) and both access methods;
discover the endpoints; PUT and GET through the namespace with a JWT and
with the user/pass; find a file (one written by davgate, one behind its
back); stage a copy whose webhook a local listener receives, restarting
davgate mid-copy; remove the infrastructure.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from davgate.auth.tokens import generate_key, mint, public_pem, users_entry
from tests.api.webhooks import Listener, webhook
from tests.helpers import USERS, Server, ServerLauncher, wait_until
from tests.sshd import LocalUser, Sshd, local_user, sshd

__all__ = ["local_user", "sshd", "webhook"]  # fixtures, shared through this import

ADMIN = "live-admin-token-0123456789abcdef"
DAV_USER, DAV_PASS = "user", "dav-pass-for-test-001"
EE = "ee@example.org"
MiB = 1024 * 1024
TIMEOUT = 30


@pytest.fixture
def clean_home(local_user: LocalUser) -> Iterator[LocalUser]:
    """The password user's home without ~/.ssh (enrolment creates it) or earlier files."""
    for path in (local_user.home / ".ssh", local_user.home / "UC1", local_user.home / "staged"):
        if path.exists():
            for child in sorted(path.rglob("*"), reverse=True):
                child.unlink() if not child.is_dir() else child.rmdir()
            path.rmdir()
    yield local_user


def config(tmp_path: Path, htpasswd_file: Path) -> dict[str, Any]:
    (tmp_path / "data").mkdir(exist_ok=True)
    return {
        "auth": {"htpasswd": htpasswd_file},
        "mounts": {"/data": {"type": "local", "root": tmp_path / "data"}},
        "state": {"type": "sqlite", "path": tmp_path / "state" / "state.db"},
        "api": {
            "admin_token": ADMIN,
            "rescan_interval": 0.5,
            "poll_interval": 0.2,
            "copy_lease": 3.0,
            "copy_rate_limit": 2 * MiB,
        },  # fmt: skip
    }


def api(server: Server, method: str, path: str, token: str, body: Any = None) -> requests.Response:
    return requests.request(
        method, f"{server.url}/api/v1{path}", json=body, headers={"x-access-token": token}, timeout=TIMEOUT
    )


def test_the_seed_scenario(
    serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path, sshd: Sshd, clean_home: LocalUser, webhook: Listener
) -> None:
    settings = config(tmp_path, htpasswd_file)
    settings["server"] = {"outbound_allow": [sshd.allowance, webhook.allowance]}  # the tests' own, by port
    server = serve(settings, workers=2)

    # 1. a user is registered by the administrator and gets a token
    registered = api(server, "PUT", "/user", ADMIN, {"email": "scientist@example.org", "name": "Scientist"})
    assert registered.status_code == 201, registered.text
    token = registered.json()["token"]

    # 2. the user creates an infrastructure: native + sshfs adaptors, user/pass and JWT access, query
    ee_key = generate_key("ed25519")
    description = {
        "name": "test-001", "namespace": "user-001", "location": "uva",
        "storageAdaptorContainers": [
            {"name": "mynativestorage", "type": "native", "expose": "webdav", "volume": {"name": "pv-001", "size": "1Gi"}},
            {"name": "hpc", "type": "sshfs", "expose": "webdav", "caches": [{"enabled": True, "size": "1Gib"}],
             "user": clean_home.name, "host": sshd.host, "port": sshd.port, "path": str(clean_home.home),
             "password": clean_home.password},
        ],
        "logicContainers": [
            {"name": "mydataStaging", "type": "query"},
            {"name": "myDav", "type": "webdav", "user": DAV_USER, "pass": DAV_PASS},
            {"name": "myDavWithTokens", "type": "webdav-jwt", "users": users_entry(EE, "EE", public_pem(ee_key))},
        ],
    }  # fmt: skip
    created = api(server, "POST", "/infrastructure", token, description)
    assert created.status_code == 201, created.text + server.log_text()[-3000:]
    assert clean_home.password not in created.text
    authorized = (clean_home.home / ".ssh" / "authorized_keys").read_text()
    assert authorized.count("davgate") == 1

    # 3. the execution environment discovers the endpoints
    endpoints = {e["type"]: e for e in api(server, "GET", "/infrastructure", token).json()}
    namespace = endpoints["webdav"]["url"]
    assert namespace == f"{server.url}/test-001/" and endpoints["webdav-jwt"]["url"] == namespace
    assert endpoints["token"] == {"type": "token", "header": "x-access-token"}

    # 4. PUT and GET through the namespace, user/pass and JWT, on both adaptors and both workers
    user_pass = (DAV_USER, DAV_PASS)
    jwt = {"Authorization": f"Bearer {mint(ee_key, EE, ttl=600)}"}
    assert (
        requests.request("MKCOL", f"{namespace}mynativestorage/UC1", auth=user_pass, timeout=TIMEOUT).status_code == 201
    )
    put = requests.put(
        f"{namespace}mynativestorage/UC1/sample_script.py", data=b"print(1)\n", auth=user_pass, timeout=TIMEOUT
    )
    assert put.status_code == 201
    assert requests.request("MKCOL", f"{namespace}hpc/UC1", headers=jwt, timeout=TIMEOUT).status_code == 201
    assert (
        requests.put(f"{namespace}hpc/UC1/ucdemo.simg", data=b"image", headers=jwt, timeout=TIMEOUT).status_code == 201
    )
    assert (clean_home.home / "UC1" / "ucdemo.simg").read_bytes() == b"image"
    for _ in range(4):  # the workers take turns; each serves the new namespace
        assert (
            requests.get(f"{namespace}mynativestorage/UC1/sample_script.py", headers=jwt, timeout=TIMEOUT).content
            == b"print(1)\n"
        )
        assert requests.get(f"{namespace}hpc/UC1/ucdemo.simg", auth=user_pass, timeout=TIMEOUT).content == b"image"
    assert (
        requests.get(f"{namespace}hpc/UC1/ucdemo.simg", auth=("alice", USERS["alice"]), timeout=TIMEOUT).status_code
        == 401
    )
    assert requests.get(f"{server.url}/data/", auth=user_pass, timeout=TIMEOUT).status_code == 401

    # 5. find files: written through davgate, and behind its back on the HPC host
    (clean_home.home / "UC1" / "behind.txt").write_bytes(b"nobody told davgate")
    wait_until(lambda: find(server, token, "behind.txt") == ["hpc:/UC1/behind.txt"], timeout=TIMEOUT)
    assert find(server, token, "sample_script.py") == ["mynativestorage:/UC1/sample_script.py"]
    assert find(server, token, "ucdemo.simg") == ["hpc:/UC1/ucdemo.simg"]

    # 6. stage a copy to the HPC host with a webhook; restart davgate in the middle of it
    data = os.urandom(6 * MiB)
    assert (
        requests.put(f"{namespace}mynativestorage/big.bin", data=data, auth=user_pass, timeout=TIMEOUT).status_code
        == 201
    )
    job = {"id": "copy-001", "from": "mynativestorage:/big.bin", "to": "hpc:/staged/big.bin", "webhook": webhook.url}
    assert api(server, "POST", "/copy", token, [job]).status_code == 202
    wait_until(lambda: api(server, "GET", "/copy/copy-001", token).json()["bytes"] > 0, timeout=TIMEOUT)
    first = server
    first.stop()
    server = serve(settings, workers=2)
    state = wait_until(lambda: (s := api(server, "GET", "/copy/copy-001", token).json())["state"] in ("done", "failed") and s,
                       timeout=60)  # fmt: skip
    checksum = "sha256:" + hashlib.sha256(data).hexdigest()
    assert (state["state"], state["bytes"], state["checksum"]) == ("done", len(data), checksum), state
    assert "copy copy-001 of scientist@example.org: mynativestorage:/big.bin -> hpc:/staged/big.bin" in first.log_text()
    assert "copy copy-001 of scientist@example.org: done" in server.log_text()
    assert (clean_home.home / "staged" / "big.bin").read_bytes() == data
    hooks = wait_until(lambda: webhook.bodies("copy-001"), timeout=TIMEOUT)
    assert [(h["state"], h["checksum"]) for h in hooks] == [("done", checksum)]

    # 7. remove the infrastructure: the namespace goes, the key leaves the host
    assert api(server, "DELETE", "/infrastructure/test-001", token).status_code == 204
    alice = ("alice", USERS["alice"])  # the other worker lets go of /test-001/ at its next generation check
    wait_until(lambda: requests.request("PROPFIND", f"{server.url}/test-001/", auth=alice, timeout=TIMEOUT).status_code == 404,
               timeout=5)  # fmt: skip
    assert "davgate" not in (clean_home.home / ".ssh" / "authorized_keys").read_text()
    assert not list((tmp_path / "state" / "api-keys" / "test-001").iterdir())
    assert_no_password(tmp_path, server, clean_home.password, DAV_PASS)


def find(server: Server, token: str, name: str) -> list[str]:
    return sorted(f"{e['location']['name']}:{e['filename']}" for e in api(server, "GET", f"/find/{name}", token).json())


def assert_no_password(tmp_path: Path, server: Server, *passwords: str) -> None:
    db = sqlite3.connect(tmp_path / "state" / "state.db")
    try:
        dump = "\n".join(db.iterdump())
    finally:
        db.close()
    logs = "".join(path.read_text(errors="replace") for path in (tmp_path / "servers").rglob("davgate.log"))
    for password in passwords:
        assert password not in dump and password not in logs


def native_infrastructure(password: str) -> dict[str, Any]:
    return {
        "name": "test-001",
        "storageAdaptorContainers": [{"name": "mynativestorage", "type": "native"}],
        "logicContainers": [{"name": "myDav", "type": "webdav", "user": DAV_USER, "pass": password}],
    }


def test_strangers_on_one_server(serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path) -> None:
    """A name freed by one user and taken by another starts empty; quotas hold; a deleted user's doors close."""
    settings = config(tmp_path, htpasswd_file)
    settings["api"]["quota_volume_bytes"] = 1000
    server = serve(settings, workers=2)
    first = api(server, "PUT", "/user", ADMIN, {"email": "a@example.org", "name": "A"}).json()["token"]
    second = api(server, "PUT", "/user", ADMIN, {"email": "b@example.org", "name": "B"}).json()["token"]
    url = f"{server.url}/test-001/mynativestorage/notes.txt"
    a_auth, b_auth = (DAV_USER, "a-password-of-a"), (DAV_USER, "b-password-of-b")

    assert api(server, "POST", "/infrastructure", first, native_infrastructure(a_auth[1])).status_code == 201
    assert requests.put(url, data=b"a's notes", auth=a_auth, timeout=TIMEOUT).status_code == 201
    patch = b"""<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:a"><D:set><D:prop>
        <Z:note>a-private-note</Z:note></D:prop></D:set></D:propertyupdate>"""
    assert requests.request("PROPPATCH", url, data=patch, auth=a_auth, timeout=TIMEOUT).status_code == 207
    too_big = requests.put(f"{url}.big", data=b"x" * 2000, auth=a_auth, timeout=TIMEOUT)
    assert too_big.status_code == 507 and "api.quota_volume_bytes" in too_big.text
    assert api(server, "DELETE", "/infrastructure/test-001", first).status_code == 204

    assert api(server, "POST", "/infrastructure", second, native_infrastructure(b_auth[1])).status_code == 201
    for _ in range(4):  # both workers
        assert requests.get(url, auth=b_auth, timeout=TIMEOUT).status_code == 404
    assert requests.put(url, data=b"b's", auth=b_auth, timeout=TIMEOUT).status_code == 201
    found = requests.request("PROPFIND", url, auth=b_auth, headers={"Depth": "0"}, timeout=TIMEOUT)
    assert found.status_code == 207 and b"a-private-note" not in found.content

    assert api(server, "DELETE", "/user/b@example.org", ADMIN).status_code == 204
    for _ in range(4):  # at once, in both workers
        assert requests.get(url, auth=b_auth, timeout=TIMEOUT).status_code == 401
        assert requests.get(url, headers={"Authorization": f"Bearer {second}"}, timeout=TIMEOUT).status_code == 401
    metrics = requests.get(f"{server.url}/metrics", auth=("alice", USERS["alice"]), timeout=TIMEOUT).text
    assert 'davgate_api_quota_refusals_total{quota="volume_bytes"} 1.0' in metrics
