"""sshfs and s3 adaptors in-process, on the tests' real sshd and real Ceph RGW."""

from __future__ import annotations

import logging
import socket
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.api.conftest import Api, basic, infrastructure
from tests.helpers import wait_until
from tests.rgw import Rgw
from tests.sshd import LocalUser, Sshd, local_user, sshd

__all__ = ["local_user", "sshd"]  # session fixtures, shared through this import

DAV = basic("user", "s3cret-pass")


@pytest.fixture
def api(make_api: Callable[..., Api], sshd: Sshd) -> Api:
    """The app, its outbound rule allowing the tests' sshd by its port (and nothing else on loopback)."""
    return make_api(outbound_allow=[sshd.allowance])


@pytest.fixture
def owner(api: Api) -> str:
    return api.register("owner@example.org")


def closed_port() -> int:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def refusals(api: Api, kind: str) -> float:
    """The ``davgate_outbound_refused_total`` of ``kind`` on the app's /metrics page."""
    assert api.app.ops is not None and api.app.ops.exporter is not None
    page = api.app.ops.exporter.render().decode()
    line = next(
        line for line in page.splitlines() if line.startswith(f'davgate_outbound_refused_total{{kind="{kind}"}}')
    )
    return float(line.split()[-1])


def sshfs(sshd: Sshd, user: LocalUser, password: str, port: int | None = None) -> dict:
    return {"name": "hpc", "type": "sshfs", "user": user.name, "host": sshd.host, "port": port or sshd.port,
            "path": str(user.home), "password": password}  # fmt: skip


def test_a_wrong_sshfs_password_creates_nothing(
    api: Api, owner: str, sshd: Sshd, local_user: LocalUser, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        reply = api.call(
            "POST", "/infrastructure", infrastructure(extra=[sshfs(sshd, local_user, "wrong-pw-xyz")]), token=owner
        )
    assert (reply.status, reply.json["error"]) == (400, "adaptor_refused"), reply.text
    assert "hpc" in reply.json["detail"] and "wrong-pw-xyz" not in reply.text + caplog.text
    assert api.call("GET", "/infrastructure/test-001", token=owner).status == 404
    assert not any((tmp_path / "state" / "api-keys").rglob("*-*"))


def test_an_unreachable_sshfs_host_is_a_bad_gateway(
    make_api: Callable[..., Api], sshd: Sshd, local_user: LocalUser
) -> None:
    port = closed_port()
    api = make_api(outbound_allow=[f"127.0.0.1:{port}"])
    owner = api.register("owner@example.org")
    reply = api.call("POST", "/infrastructure", infrastructure(extra=[sshfs(sshd, local_user, "x", port)]), token=owner)
    assert (reply.status, reply.json["error"]) == (502, "bad_gateway"), reply.text


def test_an_sshfs_host_inside_is_refused_the_same_whether_its_port_is_open_or_closed(
    make_api: Callable[..., Api], sshd: Sshd, local_user: LocalUser, tmp_path: Path
) -> None:
    api = make_api()  # no server.outbound_allow: loopback is inside
    owner = api.register("owner@example.org")
    answers = []
    for port in (sshd.port, closed_port()):  # sshd listens on the first, nobody on the second
        adaptor = sshfs(sshd, local_user, local_user.password, port)
        reply = api.call("POST", "/infrastructure", infrastructure(extra=[adaptor]), token=owner)
        answers.append((reply.status, reply.body))
    assert answers[0] == answers[1], answers
    status, body = answers[0]
    assert status == 400 and b'"outbound_refused"' in body and b"server.outbound_allow" in body
    assert b"outbound rule" in body and str(sshd.port).encode() not in body
    assert refusals(api, "sshfs") == 2
    assert not any((tmp_path / "state" / "api-keys").rglob("*-*"))  # enrolment never started
    assert api.call("GET", "/infrastructure/test-001", token=owner).status == 404


def test_an_sshfs_host_allowed_when_made_is_refused_at_connect_once_it_no_longer_is(
    make_api: Callable[..., Api], sshd: Sshd, local_user: LocalUser
) -> None:
    allowed = make_api(outbound_allow=[sshd.allowance])
    owner = allowed.register("owner@example.org")
    adaptor = sshfs(sshd, local_user, local_user.password)
    reply = allowed.call("POST", "/infrastructure", infrastructure(extra=[adaptor], query=False), token=owner)
    assert reply.status == 201, reply.text
    try:
        narrowed = make_api()  # another process, started after the operator took the allowance out
        answer = narrowed.dav("PROPFIND", "/test-001/hpc/", DAV, Depth="1")
        assert answer.status in (502, 503), answer.text
        assert refusals(narrowed, "sshfs") >= 1
        assert allowed.dav("PROPFIND", "/test-001/hpc/", DAV, Depth="1").status == 207  # where it still is allowed
    finally:
        assert allowed.call("DELETE", "/infrastructure/test-001", token=owner).status == 204  # takes the key off


def test_an_s3_adaptor_with_a_sealed_secret(make_api: Callable[..., Api], rgw: Rgw, tmp_path: Path) -> None:
    api = make_api(outbound_allow=[rgw.allowance])
    owner = api.register("owner@example.org")
    options = rgw.mount_config()
    adaptor = {
        "name": "ceph",
        "type": "s3",
        **{k: options[k] for k in ("endpoint", "bucket", "access_key", "secret_key", "prefix")},
    }
    reply = api.call("POST", "/infrastructure", infrastructure(extra=[adaptor]), token=owner)
    assert reply.status == 201, reply.text
    assert api.dav("PUT", "/test-001/ceph/obj.txt", DAV, b"in ceph").status == 201
    assert api.dav("GET", "/test-001/ceph/obj.txt", DAV).body == b"in ceph"
    listed = rgw.client().list_objects_v2(Bucket=options["bucket"], Prefix=options["prefix"])
    assert [o["Key"] for o in listed["Contents"]] == [f"{options['prefix']}/obj.txt"]
    assert (
        api.call(
            "POST", "/copy", [{"id": "c", "from": "ceph:/obj.txt", "to": "other:/from-ceph.txt"}], token=owner
        ).status
        == 202
    )
    done = wait_until(lambda: (s := api.call("GET", "/copy/c", token=owner).json)["state"] in ("done", "failed") and s)
    assert done["state"] == "done" and api.dav("GET", "/test-001/other/from-ceph.txt", DAV).body == b"in ceph"
    db = sqlite3.connect(tmp_path / "state" / "state.db")
    try:
        dump = "\n".join(db.iterdump())
    finally:
        db.close()
    assert options["secret_key"] not in dump and "sealedSecret" in dump
    assert options["secret_key"] not in api.call("GET", "/infrastructure/test-001", token=owner).text
    bad = {**adaptor, "name": "nobucket", "bucket": rgw.new_bucket_name()}
    reply = api.call("POST", "/infrastructure", infrastructure("second", extra=[bad]), token=owner)
    assert (reply.status, reply.json["error"]) == (400, "adaptor_refused") and "nobucket" in reply.json["detail"]
