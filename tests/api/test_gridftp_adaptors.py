"""gridftp adaptors in-process, on the tests' real globus-gridftp-servers (GSI and anonymous FTP)."""

from __future__ import annotations

import os
import sqlite3
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Api, basic, infrastructure
from tests.api.webhooks import Listener, webhook
from tests.gridftp import GridftpServer, gridftp, gsiftp, proxy_of, remove, start_gridftp
from tests.helpers import wait_until

__all__ = ["gridftp", "gsiftp", "webhook"]  # fixtures, shared through this import

MiB = 1024 * 1024

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


# -- third-party staging ----------------------------------------------------------------


@pytest.fixture
def second_gridftp() -> Iterator[GridftpServer]:
    server = start_gridftp()
    try:
        yield server
    finally:
        remove(server)


def io_bytes() -> int:
    """Bytes this process (davgate, in-process) read and wrote through any file or socket so far."""
    counters = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(counters["rchar"]) + int(counters["wchar"])


def run_copy(api: Api, owner: str, job: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Queue ``job``, wait for its end; its final state and the bytes this process moved meanwhile."""
    before = io_bytes()
    assert api.call("POST", "/copy", [job], token=owner).status == 202
    state = wait_until(
        lambda: (s := api.call("GET", f"/copy/{job['id']}", token=owner).json)["state"] in ("done", "failed") and s,
        timeout=60,
    )
    return state, io_bytes() - before


def test_a_copy_between_two_gridftp_servers_moves_no_byte_through_davgate(
    make_api: Callable[..., Api], gridftp: GridftpServer, second_gridftp: GridftpServer, webhook: Listener
) -> None:
    api = make_api(outbound_allow=[allowance(gridftp), allowance(second_gridftp), webhook.allowance])
    owner = api.register("owner@example.org")
    here, there = gridftp.new_root(), second_gridftp.new_root()
    adaptors = [
        {"name": "site-a", "type": "gridftp", "url": gridftp.url(here)},
        {"name": "site-b", "type": "gridftp", "url": second_gridftp.url(there)},
    ]
    assert api.call("POST", "/infrastructure", infrastructure(extra=adaptors), token=owner).status == 201
    data = os.urandom(8 * MiB + 5)
    (here / "big.bin").write_bytes(data)
    job = {"id": "tpc", "from": "site-a:/big.bin", "to": "site-b:/in/copy.bin", "webhook": webhook.url}
    state, moved = run_copy(api, owner, job)
    checksum = f"adler32:{zlib.adler32(data):08x}"
    assert (state["state"], state["bytes"], state["total"], state["checksum"]) == (
        "done",
        len(data),
        len(data),
        checksum,
    )
    assert (there / "in" / "copy.bin").read_bytes() == data
    assert [p.name for p in (there / "in").iterdir()] == ["copy.bin"]  # no temporary name left
    assert moved < MiB, moved  # the servers moved the data, not davgate
    hook = wait_until(lambda: webhook.bodies("tpc"), timeout=10)[0]
    assert (hook["state"], hook["checksum"]) == ("done", checksum)
    # Other pairs stream through davgate, and the same measure sees it.
    state, moved = run_copy(api, owner, {"id": "streamed", "from": "site-a:/big.bin", "to": "other:/copy.bin"})
    assert state["state"] == "done" and moved > len(data)
