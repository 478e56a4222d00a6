"""Staging copies through real outages: Ceph RGW and sshd stopped mid-copy, and left down.

A copy that meets an unavailable adaptor is put back in the queue and
started again later; it succeeds once the server is back, and ends
"failed" (its webhook called) after ``api.copy_attempts`` starts if the
server stays down.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.api.conftest import Api, infrastructure
from tests.api.test_staging import DAV, finished, job_state, put_source
from tests.api.webhooks import Listener, webhook
from tests.helpers import wait_until
from tests.rgw import Rgw
from tests.sshd import LocalUser, Sshd, local_user, start_sshd

__all__ = ["local_user", "webhook"]  # fixtures, shared through this import

MiB = 1024 * 1024
SOURCE = "mynativestorage:/UC1/data.bin"


def ceph(rgw: Rgw) -> dict[str, Any]:
    """An s3 adaptor on the session's gateway, under a fresh prefix."""
    options = rgw.mount_config()
    fields = ("endpoint", "bucket", "access_key", "secret_key", "prefix")
    return {"name": "ceph", "type": "s3", **{name: options[name] for name in fields}}


def owner_of(api: Api, *adaptors: dict[str, Any]) -> str:
    token = api.register("owner@example.org")
    reply = api.call("POST", "/infrastructure", infrastructure(extra=list(adaptors)), token=token)
    assert reply.status == 201, reply.text
    return token


def put_back_after_a_failed_start(api: Api, token: str, job_id: str) -> dict[str, Any]:
    """The job once its first start has met the outage: queued again, one start counted."""

    def put_back() -> dict[str, Any] | None:
        state = job_state(api, token, job_id)
        assert state["state"] not in ("done", "failed"), f"the outage did not make the copy start again: {state}"
        return state if state["state"] == "queued" and state["attempts"] == 1 else None

    return wait_until(put_back, timeout=60, message=lambda: f"still {job_state(api, token, job_id)}")


@pytest.fixture
def outage_rgw(rgw: Rgw) -> Iterator[Rgw]:
    """The session's gateway, for a test that stops it: started again whatever happens."""
    try:
        yield rgw
    finally:
        rgw.start_gateway()


def test_a_copy_whose_target_gateway_goes_down_mid_copy_is_retried_and_succeeds(
    make_api: Callable[..., Api], outage_rgw: Rgw, webhook: Listener
) -> None:
    # about 3 s for 12 MiB: a multipart upload, its parts sent mid-outage
    api = make_api(copy_rate_limit=4 * MiB, outbound_allow=[outage_rgw.allowance, webhook.allowance])
    adaptor = ceph(outage_rgw)
    token = owner_of(api, adaptor)
    data = os.urandom(12 * MiB)
    put_source(api, data)
    job = {"id": "c1", "from": SOURCE, "to": "ceph:/staged/data.bin", "webhook": webhook.url}
    assert api.call("POST", "/copy", [job], token=token).status == 202
    wait_until(lambda: job_state(api, token, "c1")["bytes"] > 0, timeout=10)
    outage_rgw.stop_gateway()
    put_back_after_a_failed_start(api, token, "c1")
    outage_rgw.start_gateway()
    state = finished(api, token, "c1", timeout=60)
    checksum = "sha256:" + hashlib.sha256(data).hexdigest()
    assert (state["state"], state["attempts"], state["checksum"]) == ("done", 2, checksum), state
    key = f"{adaptor['prefix']}/staged/data.bin"
    assert outage_rgw.client().get_object(Bucket=adaptor["bucket"], Key=key)["Body"].read() == data
    hooks = wait_until(lambda: webhook.bodies("c1"), timeout=10)
    assert [(h["state"], h["checksum"]) for h in hooks] == [("done", checksum)]


def test_a_copy_whose_gateway_stays_down_fails_after_its_attempts_and_calls_back(
    make_api: Callable[..., Api], outage_rgw: Rgw, webhook: Listener
) -> None:
    api = make_api(copy_attempts=2, outbound_allow=[outage_rgw.allowance, webhook.allowance])
    token = owner_of(api, ceph(outage_rgw))
    put_source(api, os.urandom(MiB))
    outage_rgw.stop_gateway()
    job = {"id": "c1", "from": SOURCE, "to": "ceph:/staged/data.bin", "webhook": webhook.url}
    assert api.call("POST", "/copy", [job], token=token).status == 202
    put_back_after_a_failed_start(api, token, "c1")  # retried, not failed at the first outage
    state = finished(api, token, "c1", timeout=60)
    assert (state["state"], state["attempts"], state["checksum"]) == ("failed", 2, None), state
    assert "unreachable" in state["error"]
    hooks = wait_until(lambda: webhook.bodies("c1"), timeout=10)
    assert [(h["state"], h["error"]) for h in hooks] == [("failed", state["error"])]
    wait_until(lambda: job_state(api, token, "c1")["webhook"]["state"] == "delivered", timeout=10)


@pytest.fixture
def own_sshd(tmp_path_factory: pytest.TempPathFactory, local_user: LocalUser) -> Iterator[Sshd]:
    """An sshd of this test's own (it is stopped mid-copy), with password login for ``local_user``."""
    server = start_sshd(tmp_path_factory.mktemp("own-sshd"), local_user)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def remote_source(local_user: LocalUser) -> Iterator[tuple[str, bytes]]:
    """A file in ``local_user``'s home (on the sshd's host), owned by that user: its name and bytes."""
    name, data = f"source-{uuid.uuid4().hex[:8]}.bin", os.urandom(16 * MiB)
    path = local_user.home / name
    path.write_bytes(data)
    shutil.chown(path, local_user.name, local_user.name)
    try:
        yield name, data
    finally:
        path.unlink()


def test_a_copy_whose_source_sshd_goes_down_mid_copy_is_retried_and_succeeds(
    make_api: Callable[..., Api], own_sshd: Sshd, local_user: LocalUser, remote_source: tuple[str, bytes]
) -> None:
    api = make_api(copy_rate_limit=4 * MiB, outbound_allow=[own_sshd.allowance])
    hpc = {"name": "hpc", "type": "sshfs", "user": local_user.name, "host": own_sshd.host, "port": own_sshd.port,
           "path": str(local_user.home), "password": local_user.password}  # fmt: skip
    token = owner_of(api, hpc)
    try:
        name, data = remote_source
        jobs = [{"id": "c1", "from": f"hpc:/{name}", "to": "other:/d.bin"}]
        assert api.call("POST", "/copy", jobs, token=token).status == 202
        wait_until(lambda: job_state(api, token, "c1")["bytes"] > 0, timeout=10)
        own_sshd.stop()
        put_back_after_a_failed_start(api, token, "c1")
        own_sshd.start()
        state = finished(api, token, "c1", timeout=60)
        assert (state["state"], state["attempts"]) == ("done", 2), state
        assert state["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
        assert api.dav("GET", "/test-001/other/d.bin", DAV).body == data
    finally:  # the enrolled key leaves the user's authorized_keys
        assert api.call("DELETE", "/infrastructure/test-001", token=token).status == 204
