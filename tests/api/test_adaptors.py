"""sshfs and s3 adaptors in-process, on the tests' real sshd and real Ceph RGW."""

from __future__ import annotations

import logging
import socket
import sqlite3
from pathlib import Path

import pytest

from tests.api.conftest import Api, basic, infrastructure
from tests.helpers import wait_until
from tests.rgw import Rgw
from tests.sshd import LocalUser, Sshd, local_user, sshd

__all__ = ["local_user", "sshd"]  # session fixtures, shared through this import

DAV = basic("user", "s3cret-pass")


@pytest.fixture
def owner(api: Api) -> str:
    return api.register("owner@example.org")


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


def test_an_unreachable_sshfs_host_is_a_bad_gateway(api: Api, owner: str, sshd: Sshd, local_user: LocalUser) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    reply = api.call("POST", "/infrastructure", infrastructure(extra=[sshfs(sshd, local_user, "x", port)]), token=owner)
    assert (reply.status, reply.json["error"]) == (502, "bad_gateway"), reply.text


def test_an_s3_adaptor_with_a_sealed_secret(api: Api, owner: str, rgw: Rgw, tmp_path: Path) -> None:
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
