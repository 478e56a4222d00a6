"""gridftp adaptors in-process, on the tests' real globus-gridftp-servers (GSI and anonymous FTP)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from tests.api.conftest import Api, basic, infrastructure
from tests.gridftp import GridftpServer, gridftp, gsiftp, proxy_of

__all__ = ["gridftp", "gsiftp"]  # session fixtures, shared through this import

DAV = basic("user", "s3cret-pass")


def allowance(server: GridftpServer) -> str:
    return f"{server.host}:{server.port}"


def state_dump(tmp_path: Path) -> str:
    db = sqlite3.connect(tmp_path / "state" / "state.db")
    try:
        return "\n".join(db.iterdump())
    finally:
        db.close()


def test_a_gsiftp_adaptor_with_a_sealed_proxy(
    make_api: Callable[..., Api], gsiftp: GridftpServer, tmp_path: Path
) -> None:
    api = make_api(outbound_allow=[allowance(gsiftp)])
    owner = api.register("owner@example.org")
    root = gsiftp.new_root()
    proxy = proxy_of(gsiftp).read_text()
    adaptor = {"name": "grid", "type": "gridftp", "url": gsiftp.url(root), "proxy": proxy}
    reply = api.call("POST", "/infrastructure", infrastructure(extra=[adaptor]), token=owner)
    assert reply.status == 201, reply.text
    assert api.dav("PUT", "/test-001/grid/file.txt", DAV, b"over gsiftp").status == 201
    assert api.dav("GET", "/test-001/grid/file.txt", DAV).body == b"over gsiftp"
    assert (root / "file.txt").read_bytes() == b"over gsiftp"
    key = proxy.split("-----BEGIN RSA PRIVATE KEY-----")[1][:200]
    assert key not in state_dump(tmp_path) and "sealedSecret" in state_dump(tmp_path)
    assert key not in api.call("GET", "/infrastructure/test-001", token=owner).text


def test_an_ftp_adaptor_with_a_login(make_api: Callable[..., Api], gridftp: GridftpServer, tmp_path: Path) -> None:
    api = make_api(outbound_allow=[allowance(gridftp)])
    owner = api.register("owner@example.org")
    root = gridftp.new_root()
    adaptor = {"name": "ftp", "type": "gridftp", "url": gridftp.url(root), "user": "anonymous", "password": "pw-0815x"}
    reply = api.call("POST", "/infrastructure", infrastructure(extra=[adaptor]), token=owner)
    assert reply.status == 201, reply.text
    assert api.dav("PUT", "/test-001/ftp/a.txt", DAV, b"over ftp").status == 201
    assert (root / "a.txt").read_bytes() == b"over ftp"
    assert "pw-0815x" not in state_dump(tmp_path)


def test_a_gridftp_server_inside_is_refused(make_api: Callable[..., Api], gridftp: GridftpServer) -> None:
    api = make_api()  # no server.outbound_allow: loopback is inside
    owner = api.register("owner@example.org")
    adaptor = {"name": "ftp", "type": "gridftp", "url": gridftp.url(gridftp.new_root())}
    reply = api.call("POST", "/infrastructure", infrastructure(extra=[adaptor]), token=owner)
    assert (reply.status, reply.json["error"]) == (400, "outbound_refused"), reply.text


def test_gridftp_descriptions_are_checked(api: Api) -> None:
    owner = api.register("owner@example.org")
    bad = [
        {"url": "http://host/x"},
        {"url": "ftp://user:pw@host/x"},
        {"url": "gsiftp://host:2811/x"},  # no proxy
        {"url": "ftp://host/x", "proxy": "pem"},
        {"url": "ftp://host/relative?x=1"},
    ]
    for fields in bad:
        adaptor = {"name": "g", "type": "gridftp", **fields}
        reply = api.call("POST", "/infrastructure", infrastructure(extra=[adaptor]), token=owner)
        assert (reply.status, reply.json["error"]) == (400, "invalid_value"), (fields, reply.text)
