"""The outbound rule on a real server: a name that resolves inside by the time davgate connects is refused.

davgate runs in a mount namespace of its own (``unshare --mount``) whose
``/etc/hosts`` is a file of this test: changing that file is a DNS answer
changing under a running server, with nothing of davgate's replaced.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers import USERS, Server, ServerLauncher, wait_until
from tests.ops.test_metrics import value
from tests.rgw import Rgw

ADMIN = "live-admin-token-0123456789abcdef"
DAV = ("user", "dav-pass-for-outbound")
HOSTS = "127.0.0.1 localhost\n{address} store.test\n"
IN_OWN_HOSTS = ["unshare", "--mount", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"']


def api(server: Server, method: str, path: str, token: str, body: Any = None) -> requests.Response:
    return requests.request(
        method, f"{server.url}/api/v1{path}", json=body, headers={"x-access-token": token}, timeout=60
    )


def answer(hosts: Path, address: str) -> None:
    """What ``store.test`` resolves to in davgate's namespace from now on (the file is rewritten in place)."""
    hosts.write_text(HOSTS.format(address=address))


def test_a_name_that_resolves_inside_when_connecting_is_refused(
    serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path, rgw: Rgw
) -> None:
    hosts = tmp_path / "hosts"
    answer(hosts, "127.0.0.1")
    port = int(rgw.allowance.rsplit(":", 1)[1])
    settings = {
        "auth": {"htpasswd": htpasswd_file},
        "state": {"type": "sqlite", "path": tmp_path / "state" / "state.db"},
        "server": {"outbound_allow": [rgw.allowance]},  # the gateway at 127.0.0.1, that port only
        "api": {"admin_token": ADMIN},
    }
    server = serve(settings, wrap=[*IN_OWN_HOSTS, str(hosts)])
    token = api(server, "PUT", "/user", ADMIN, {"email": "u@example.org", "name": "U"}).json()["token"]
    options = rgw.mount_config()
    adaptor = {"name": "ceph", "type": "s3", "endpoint": f"http://store.test:{port}",
               **{key: options[key] for key in ("bucket", "access_key", "secret_key", "prefix")}}  # fmt: skip
    body = {"name": "test-001", "storageAdaptorContainers": [adaptor],
            "logicContainers": [{"name": "dav", "type": "webdav", "user": DAV[0], "pass": DAV[1]}]}  # fmt: skip
    created = api(server, "POST", "/infrastructure", token, body)
    assert created.status_code == 201, created.text  # store.test was 127.0.0.1:<port>, which is allowed

    with socket.socket() as inside:  # a service inside, on the same port at another loopback address
        inside.bind(("127.0.0.2", port))
        inside.listen()
        inside.settimeout(0)
        answer(hosts, "127.0.0.2")  # the name now points at it
        refused = requests.put(f"{server.url}/test-001/ceph/a.txt", data=b"x", auth=DAV, timeout=60)
        assert refused.status_code in (502, 503), refused.text
        with pytest.raises(BlockingIOError):
            inside.accept()  # davgate never connected to it
    metrics = requests.get(f"{server.url}/metrics", auth=("alice", USERS["alice"]), timeout=10).text
    assert value(metrics, "davgate_outbound_refused_total", kind="s3") >= 1
    assert "outbound rule: s3 connection to store.test" in server.log_text()

    answer(hosts, "127.0.0.1")  # and back: the same request goes through
    wait_until(lambda: requests.put(f"{server.url}/test-001/ceph/a.txt", data=b"x", auth=DAV, timeout=60).ok)
    assert requests.get(f"{server.url}/test-001/ceph/a.txt", auth=DAV, timeout=60).content == b"x"
