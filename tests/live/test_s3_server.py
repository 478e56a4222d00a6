"""A real davgate with a local and an s3 mount on the real Ceph RGW.

COPY and MOVE between the mounts (streamed) and inside the s3 mount
(server-side), dead properties and locks that follow their resource, Range,
ETags after multipart uploads, and a 503 while the gateway is down.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.helpers import USERS, Server, ServerLauncher, write_htpasswd
from tests.rgw import SESSION_BUCKET, Rgw

AUTH = ("alice", USERS["alice"])
MiB = 1024 * 1024
DATA = os.urandom(20 * MiB)
TIMEOUT = 2.0
PATCH = (
    '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">'
    "<D:set><D:prop><Z:color>red</Z:color></D:prop></D:set></D:propertyupdate>"
)
FIND = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:z"><D:prop><Z:color/></D:prop></D:propfind>'
LOCK = (
    '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>test</D:owner></D:lockinfo>"
)


@pytest.fixture(scope="module")
def local_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("s3-server-local")


@pytest.fixture(scope="module")
def s3_prefix(rgw: Rgw) -> str:
    return rgw.options().prefix


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, rgw: Rgw, local_root: Path, s3_prefix: str) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("s3-server")
    config = {
        "mounts": {
            "/data": {"type": "local", "root": local_root},
            "/s3": rgw.mount_config(prefix=s3_prefix, timeout=TIMEOUT, retries=1),
        },
        "auth": {"htpasswd": write_htpasswd(base / "htpasswd")},
        "state": {"type": "sqlite", "path": base / "state.db"},
    }
    launcher = ServerLauncher(base / "servers")
    yield launcher(config)
    launcher.stop_all()


def call(server: Server, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, server.url + path, auth=AUTH, timeout=30, **kwargs)


def move_or_copy(server: Server, method: str, source: str, target: str, **headers: str) -> requests.Response:
    return call(server, method, source, headers={"Destination": server.url + target, **headers})


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def color(server: Server, path: str) -> bool:
    found = call(server, "PROPFIND", path, data=FIND, headers={"Depth": "0"})
    assert found.status_code == 207, found.text
    return "red" in found.text


def test_copy_and_move_files_between_local_and_s3(server: Server, local_root: Path) -> None:
    assert call(server, "PUT", "/data/big.bin", data=DATA).status_code == 201
    assert move_or_copy(server, "COPY", "/data/big.bin", "/s3/big.bin").status_code == 201
    assert sha(call(server, "GET", "/s3/big.bin").content) == sha(DATA)
    assert move_or_copy(server, "MOVE", "/s3/big.bin", "/data/moved.bin").status_code == 201
    assert call(server, "GET", "/s3/big.bin").status_code == 404
    assert sha((local_root / "moved.bin").read_bytes()) == sha(DATA)


def test_copy_and_move_folders_between_local_and_s3(server: Server, local_root: Path) -> None:
    assert call(server, "MKCOL", "/data/tree").status_code == 201
    assert call(server, "MKCOL", "/data/tree/empty").status_code == 201
    call(server, "PUT", "/data/tree/a.txt", data=b"a")
    call(server, "PUT", "/data/tree/Grüße über.txt", data=b"u")
    assert move_or_copy(server, "COPY", "/data/tree/", "/s3/tree/").status_code == 201
    listing = call(server, "PROPFIND", "/s3/tree/", headers={"Depth": "1"})
    assert listing.status_code == 207
    for href in ("/s3/tree/empty/", "/s3/tree/a.txt", "/s3/tree/Gr%c3%bc%c3%9fe%20%c3%bcber.txt"):
        assert href.lower() in listing.text.lower(), listing.text
    assert move_or_copy(server, "MOVE", "/s3/tree/", "/data/back/").status_code == 201
    assert call(server, "PROPFIND", "/s3/tree/", headers={"Depth": "0"}).status_code == 404
    assert sorted(p.name for p in (local_root / "back").iterdir()) == ["Grüße über.txt", "a.txt", "empty"]


def test_move_inside_s3_overwrites_and_keeps_the_data(server: Server) -> None:
    call(server, "PUT", "/s3/one.txt", data=b"one")
    call(server, "PUT", "/s3/two.txt", data=b"two")
    assert move_or_copy(server, "MOVE", "/s3/one.txt", "/s3/two.txt", Overwrite="F").status_code == 412
    assert move_or_copy(server, "MOVE", "/s3/one.txt", "/s3/two.txt").status_code == 204
    assert call(server, "GET", "/s3/two.txt").content == b"one"
    assert call(server, "GET", "/s3/one.txt").status_code == 404


def test_dead_properties_follow_moves_and_vanish_with_deletes(server: Server) -> None:
    call(server, "PUT", "/s3/p.txt", data=b"p")
    assert call(server, "PROPPATCH", "/s3/p.txt", data=PATCH).status_code == 207
    assert move_or_copy(server, "MOVE", "/s3/p.txt", "/s3/q.txt").status_code == 201
    assert color(server, "/s3/q.txt")
    assert call(server, "DELETE", "/s3/q.txt").status_code == 204
    call(server, "PUT", "/s3/q.txt", data=b"new")
    assert not color(server, "/s3/q.txt")
    call(server, "MKCOL", "/s3/f")
    call(server, "PUT", "/s3/f/inner.txt", data=b"i")
    call(server, "PROPPATCH", "/s3/f/inner.txt", data=PATCH)
    assert move_or_copy(server, "MOVE", "/s3/f/", "/s3/g/").status_code == 201
    assert color(server, "/s3/g/inner.txt")
    assert move_or_copy(server, "MOVE", "/s3/g/inner.txt", "/data/inner.txt").status_code == 201
    assert color(server, "/data/inner.txt")


def test_locks_on_s3_are_kept_in_the_state_store(server: Server) -> None:
    call(server, "PUT", "/s3/locked.txt", data=b"v1")
    locked = call(server, "LOCK", "/s3/locked.txt", data=LOCK)
    assert locked.status_code == 200
    token = locked.headers["Lock-Token"]
    assert call(server, "PUT", "/s3/locked.txt", data=b"v2").status_code == 423
    assert call(server, "PUT", "/s3/locked.txt", data=b"v2", headers={"If": f"({token})"}).status_code == 204
    assert call(server, "UNLOCK", "/s3/locked.txt", headers={"Lock-Token": token}).status_code == 204
    assert call(server, "DELETE", "/s3/locked.txt").status_code == 204


def test_range_and_etag_after_a_multipart_put(server: Server, rgw: Rgw, s3_prefix: str) -> None:
    created = call(server, "PUT", "/s3/r.bin", data=DATA)
    assert created.status_code == 201
    raw = rgw.client().head_object(Bucket=SESSION_BUCKET, Key=f"{s3_prefix}/r.bin")["ETag"]
    assert raw.endswith('-3"') and created.headers["ETag"] == raw  # read back by HEAD, not from Complete
    assert call(server, "HEAD", "/s3/r.bin").headers["ETag"] == raw
    start = 10 * MiB + 7
    part = call(server, "GET", "/s3/r.bin", headers={"Range": f"bytes={start}-{start + 999}"})
    assert part.status_code == 206 and part.content == DATA[start : start + 1000]
    tail = call(server, "GET", "/s3/r.bin", headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == DATA[-100:]


def test_gateway_down_is_503_in_bounded_time_then_recovers(server: Server, rgw: Rgw) -> None:
    call(server, "PUT", "/s3/up.txt", data=b"up")
    rgw.stop_gateway()
    try:
        for method, path in (("GET", "/s3/up.txt"), ("PROPFIND", "/s3/"), ("PUT", "/s3/new.txt")):
            started = time.monotonic()
            answer = call(server, method, path, data=b"x" if method == "PUT" else None, headers={"Depth": "1"})
            assert answer.status_code == 503, (method, answer.status_code, answer.text)
            assert time.monotonic() - started < 2 * TIMEOUT + 3
        assert call(server, "GET", "/data/").status_code == 200  # the other mount serves on
    finally:
        rgw.start_gateway()
    assert call(server, "GET", "/s3/up.txt").content == b"up"


def test_gateway_down_during_a_put_is_503_and_keeps_the_old_content(server: Server, rgw: Rgw) -> None:
    call(server, "PUT", "/s3/cut.bin", data=b"old")
    address = urlsplit(server.url)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=30)
    connection.putrequest("PUT", "/s3/cut.bin")
    connection.putheader("Authorization", "Basic " + base64.b64encode(":".join(AUTH).encode()).decode())
    connection.putheader("Content-Length", str(len(DATA)))
    connection.endheaders()
    try:
        try:
            for number, start in enumerate(range(0, len(DATA), MiB)):
                if number == 10:  # one 8 MiB part is out; the next will fail
                    rgw.stop_gateway()
                connection.send(DATA[start : start + MiB])
        except OSError:
            pass  # the server answered early and closed
        status = connection.getresponse().status
    finally:
        connection.close()
        rgw.start_gateway()
    assert call(server, "GET", "/s3/cut.bin").content == b"old"
    assert status == 503
