"""An sftp mount inside davgate's WSGI application: listings, Range, errors as HTTP, properties and locks.

In-process (no HTTP server), beside a local mount, against the real sshd.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from davgate.app import Application, build_app
from davgate.config import parse_config
from tests.helpers import write_htpasswd
from tests.providers.test_sftp import counted_requests
from tests.sshd import Sshd, local_user, sshd, start_sshd
from tests.wsgi.client import Client

__all__ = ["local_user", "sshd"]  # session fixtures, shared through this import

PROPPATCH = (
    b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">'
    b"<D:set><D:prop><Z:color>%s</Z:color></D:prop></D:set></D:propertyupdate>"
)
COLOR = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:z"><D:prop><Z:color/></D:prop></D:propfind>'
LOCK = (
    b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    b"<D:locktype><D:write/></D:locktype><D:owner>t</D:owner></D:lockinfo>"
)


def hrefs(body: bytes) -> list[str]:
    return sorted(re.findall(r"<D:href>([^<]*)</D:href>", body.decode()))


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    folder = tmp_path / "remote"
    folder.mkdir()
    return folder


@pytest.fixture
def make_app(tmp_path: Path, sshd: Sshd, remote: Path) -> Iterator[Callable[..., Application]]:
    """``make_app(server=sshd, **sftp_options)``: /hpc on the sshd, /data a local folder."""
    apps: list[Application] = []
    (tmp_path / "local").mkdir()

    def make(server: Sshd = sshd, **extra: object) -> Application:
        hpc = {"type": "sftp", "host": server.host, "port": server.port, "user": server.user, "key": str(server.key)}
        hpc.update(root=str(remote), known_hosts=str(server.known_hosts), timeout=3.0)
        hpc.update(extra)
        data = {
            "auth": {"htpasswd": str(write_htpasswd(tmp_path / "htpasswd"))},
            "mounts": {"/hpc": hpc, "/data": {"type": "local", "root": str(tmp_path / "local")}},
            "state": {"type": "sqlite", "path": str(tmp_path / "state.db")},
        }
        apps.append(build_app(parse_config(data, "test")))
        return apps[-1]

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def client(make_app: Callable[..., Application]) -> Client:
    return Client(make_app())


def dest(path: str) -> dict[str, str]:
    return {"Destination": f"http://127.0.0.1{path}"}


@pytest.mark.parametrize("count", [10, 200])
def test_propfind_lists_a_folder_with_one_listing(client: Client, remote: Path, count: int) -> None:
    (remote / "dir").mkdir()
    for i in range(count):
        (remote / "dir" / f"f{i:03d}.txt").write_bytes(b"x" * i)
    assert client.propfind("/hpc/dir", depth="0").status == 207  # connected
    with counted_requests() as counts:
        response = client.propfind("/hpc/dir", depth="1")
    assert response.status == 207 and len(hrefs(response.body)) == count + 1
    assert "<D:getcontentlength>7</D:getcontentlength>" in response.text
    assert counts[17] + counts[7] <= 3, counts  # stat and lstat: the folder itself, not its members
    assert sum(counts.values()) <= 12 + count // 50, counts


def test_range_get(client: Client, remote: Path) -> None:
    data = os.urandom(3 * 1024 * 1024)
    (remote / "big.bin").write_bytes(data)
    whole = client.get("/hpc/big.bin")
    assert whole.status == 200 and whole.body == data
    part = client.get("/hpc/big.bin", Range="bytes=2000000-2000099")
    assert part.status == 206 and part.body == data[2000000:2000100]
    assert part.headers["content-range"] == f"bytes 2000000-2000099/{len(data)}"
    suffix = client.get("/hpc/big.bin", Range="bytes=-10")
    assert suffix.status == 206 and suffix.body == data[-10:]


def test_put_replaces_atomically_and_changes_the_etag(client: Client, remote: Path) -> None:
    assert client.put("/hpc/f.txt", b"one").status == 201
    first = client.propfind("/hpc/f.txt", depth="0").text
    assert client.put("/hpc/f.txt", b"two").status == 204
    assert (remote / "f.txt").read_bytes() == b"two"
    assert re.findall("<D:getetag>(.*?)</D:getetag>", first) != re.findall(
        "<D:getetag>(.*?)</D:getetag>", client.propfind("/hpc/f.txt", depth="0").text
    )
    assert [p.name for p in remote.iterdir()] == ["f.txt"]


def test_dead_properties_move_with_their_resource_and_vanish_with_it(client: Client) -> None:
    client.request("MKCOL", "/hpc/dir")
    client.put("/hpc/dir/p.txt", b"p")
    assert client.request("PROPPATCH", "/hpc/dir/p.txt", PROPPATCH % b"red").status == 207
    assert client.request("MOVE", "/hpc/dir", headers=dest("/hpc/moved")).status == 201
    assert b"red" in client.propfind("/hpc/moved/p.txt", "0", COLOR).body
    assert client.request("MOVE", "/hpc/moved/p.txt", headers=dest("/data/p.txt")).status == 201
    assert b"red" in client.propfind("/data/p.txt", "0", COLOR).body
    assert client.request("COPY", "/data/p.txt", headers=dest("/hpc/copy.txt")).status == 201
    assert b"red" in client.propfind("/hpc/copy.txt", "0", COLOR).body
    assert client.request("DELETE", "/hpc/copy.txt").status == 204
    client.put("/hpc/copy.txt", b"new")
    assert b"red" not in client.propfind("/hpc/copy.txt", "0", COLOR).body


def test_properties_are_kept_per_mount(client: Client) -> None:
    client.put("/hpc/same.txt", b"h")
    client.put("/data/same.txt", b"d")
    client.request("PROPPATCH", "/hpc/same.txt", PROPPATCH % b"blue")
    assert b"blue" in client.propfind("/hpc/same.txt", "0", COLOR).body
    assert b"blue" not in client.propfind("/data/same.txt", "0", COLOR).body


def test_locks_vanish_with_their_resource(client: Client) -> None:
    client.put("/hpc/l.txt", b"l")
    locked = client.request("LOCK", "/hpc/l.txt", LOCK, {"Timeout": "Second-600"})
    assert locked.status == 200
    token = locked.headers["lock-token"]
    assert client.put("/hpc/l.txt", b"x").status == 423
    assert client.request("DELETE", "/hpc/l.txt", headers={"If": f"({token})"}).status == 204
    assert client.put("/hpc/l.txt", b"free").status == 201  # no lock left behind


def test_a_lock_on_a_new_name_creates_an_empty_file(client: Client, remote: Path) -> None:
    locked = client.request("LOCK", "/hpc/new.txt", LOCK)
    assert locked.status == 201 and (remote / "new.txt").read_bytes() == b""
    token = locked.headers["lock-token"]
    assert client.put("/hpc/new.txt", b"mine", If=f"({token})").status == 204


def test_errors_become_their_http_status(client: Client, remote: Path, tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_bytes(b"secret")
    (remote / "out").symlink_to(tmp_path / "outside.txt")
    (remote / "dir").mkdir()
    assert client.get("/hpc/missing.txt").status == 404
    assert client.get("/hpc/out").status == 403
    assert client.request("MKCOL", "/hpc/dir").status == 405  # WsgiDAV: exists
    assert client.request("MKCOL", "/hpc/no/such").status == 409
    assert client.put("/hpc/.davgate-upload-x", b"x").status == 403


def test_a_full_remote_disk_is_507(make_app: Callable[..., Application], remote: Path) -> None:
    disk = remote / "disk"
    disk.mkdir()
    if os.system(f"mount -t tmpfs -o size=1m tmpfs {disk} 2>/dev/null") != 0:
        pytest.fail("cannot mount a tmpfs")
    try:
        client = Client(make_app())
        assert client.put("/hpc/disk/big.bin", b"x" * 2 * 1024 * 1024).status == 507
        assert os.listdir(disk) == []
    finally:
        os.system(f"umount {disk}")


def test_a_server_that_is_down_is_503_then_recovers(
    make_app: Callable[..., Application], remote: Path, tmp_path: Path
) -> None:
    server = start_sshd(tmp_path / "own-sshd")
    try:
        client = Client(make_app(server))
        assert client.put("/hpc/f.txt", b"f").status == 201
        server.stop()
        assert client.get("/hpc/f.txt").status == 503
        assert client.propfind("/hpc/", depth="1").status == 503
        server.start()
        assert client.get("/hpc/f.txt").body == b"f"
    finally:
        server.stop()


def test_a_refused_host_key_is_502(make_app: Callable[..., Application], tmp_path: Path, sshd: Sshd) -> None:
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sshd.port + 1} {sshd.host_key.read_text()}")
    client = Client(make_app(known_hosts=str(wrong)))
    assert client.get("/hpc/anything").status == 502
    assert client.propfind("/hpc/", depth="0").status == 502
