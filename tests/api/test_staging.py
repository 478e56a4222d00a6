"""Staging in-process: copies between adaptors, checksums, webhooks with retries, a durable queue."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from davgate.state import CopyJob
from tests.api.conftest import Api, basic, infrastructure
from tests.api.webhooks import Listener, webhook
from tests.helpers import wait_until

__all__ = ["webhook"]

DAV = basic("user", "s3cret-pass")
MiB = 1024 * 1024


@pytest.fixture
def api(make_api: Callable[..., Api], webhook: Listener) -> Api:
    """The app, its outbound rule allowing this test's webhook listener (and nothing else on loopback)."""
    return make_api(outbound_allow=[webhook.allowance])


@pytest.fixture
def owner(api: Api) -> str:
    token = api.register("owner@example.org")
    assert api.call("POST", "/infrastructure", infrastructure(), token=token).status == 201
    return token


def job_state(api: Api, token: str, job_id: str) -> dict[str, Any]:
    reply = api.call("GET", f"/copy/{job_id}", token=token)
    assert reply.status == 200, reply.text
    return reply.json


def finished(api: Api, token: str, job_id: str, timeout: float = 15) -> dict[str, Any]:
    return wait_until(
        lambda: (s := job_state(api, token, job_id))["state"] in ("done", "failed") and s, timeout=timeout
    )


def put_source(api: Api, data: bytes, path: str = "/test-001/mynativestorage/UC1/data.bin") -> None:
    api.dav("MKCOL", path.rsplit("/", 1)[0], DAV)
    assert api.dav("PUT", path, DAV, data).status == 201


def test_a_copy_streams_verifies_and_calls_back(api: Api, owner: str, webhook: Listener, tmp_path: Path) -> None:
    data = os.urandom(3 * MiB + 17)
    put_source(api, data)
    jobs = [
        {
            "id": "copy-001",
            "from": "mynativestorage:/UC1/data.bin",
            "to": "other:/deep/new/data.bin",
            "webhook": webhook.url,
        }
    ]
    reply = api.call("POST", "/copy", jobs, token=owner)
    assert reply.status == 202 and reply.json == [
        {"id": "copy-001", "state": "queued", "url": "http://127.0.0.1:8080/api/v1/copy/copy-001"}
    ]
    state = finished(api, owner, "copy-001")
    checksum = "sha256:" + hashlib.sha256(data).hexdigest()
    assert (state["state"], state["bytes"], state["total"], state["checksum"]) == (
        "done",
        len(data),
        len(data),
        checksum,
    )
    assert api.dav("GET", "/test-001/other/deep/new/data.bin", DAV).body == data
    hook = wait_until(lambda: webhook.bodies("copy-001"), timeout=10)[0]
    assert hook == {"id": "copy-001", "state": "done", "from": "mynativestorage:/UC1/data.bin", "to": "other:/deep/new/data.bin",
                    "bytes": len(data), "total": len(data), "error": None, "checksum": checksum}  # fmt: skip
    wait_until(lambda: job_state(api, owner, "copy-001")["webhook"]["state"] == "delivered", timeout=5)
    found = api.call("GET", "/find/data.bin", token=owner).json
    assert sorted(e["location"]["name"] + e["filename"] for e in found) == [
        "mynativestorage/UC1/data.bin",
        "other/deep/new/data.bin",
    ]


def test_a_failed_copy_calls_back_too(api: Api, owner: str, webhook: Listener) -> None:
    api.call(
        "POST",
        "/copy",
        [{"id": "c1", "from": "other:/missing.bin", "to": "other:/x.bin", "webhook": webhook.url}],
        token=owner,
    )
    state = finished(api, owner, "c1")
    assert state["state"] == "failed" and "does not exist" in state["error"]
    hook = wait_until(lambda: webhook.bodies("c1"), timeout=10)[0]
    assert (hook["state"], hook["bytes"]) == ("failed", 0) and "does not exist" in hook["error"]


def test_into_a_folder_and_without_an_id_or_webhook(api: Api, owner: str) -> None:
    put_source(api, b"abc")
    api.dav("MKCOL", "/test-001/other/in", DAV)
    reply = api.call(
        "POST", "/copy", {"from": "test-001/mynativestorage:/UC1/data.bin", "to": "other:/in/"}, token=owner
    )
    job_id = reply.json[0]["id"]
    assert job_id.startswith("copy-") and finished(api, owner, job_id)["state"] == "done"
    assert api.dav("GET", "/test-001/other/in/data.bin", DAV).body == b"abc"
    assert job_state(api, owner, job_id)["webhook"] is None
    assert [j["id"] for j in api.call("GET", "/copy", token=owner).json] == [job_id]


def test_webhooks_are_retried_with_backoff(api: Api, owner: str, webhook: Listener) -> None:
    put_source(api, b"abc")
    webhook.failures = 2
    api.call(
        "POST",
        "/copy",
        [{"id": "c1", "from": "mynativestorage:/UC1/data.bin", "to": "other:/a", "webhook": webhook.url}],
        token=owner,
    )
    state = wait_until(lambda: (s := job_state(api, owner, "c1"))["webhook"]["state"] == "delivered" and s, timeout=15)
    assert state["webhook"]["attempts"] == 3 and len(webhook.bodies("c1")) == 3


def test_webhooks_are_given_up_after_their_attempts(make_api: Callable[..., Api], webhook: Listener) -> None:
    api = make_api(webhook_attempts=2, outbound_allow=[webhook.allowance])
    token = api.register("owner@example.org")
    api.call("POST", "/infrastructure", infrastructure(), token=token)
    webhook.failures = 100
    api.call(
        "POST", "/copy", [{"id": "c1", "from": "other:/none", "to": "other:/a", "webhook": webhook.url}], token=token
    )
    state = wait_until(lambda: (s := job_state(api, token, "c1"))["webhook"]["state"] == "failed" and s, timeout=15)
    assert state["webhook"]["attempts"] == 2 and len(webhook.bodies("c1")) == 2


@pytest.mark.parametrize(
    ("jobs", "status", "code"),
    [
        ([{"from": "nope:/a", "to": "other:/b"}], 400, "unknown_adaptor"),
        ([{"from": "other:a", "to": "other:/b"}], 400, "invalid_value"),
        ([{"from": "other:/../a", "to": "other:/b"}], 400, "invalid_value"),
        ([{"from": "other:/a", "to": "other:/b", "webhook": "ftp://x"}], 400, "invalid_value"),
        ([{"from": "other:/a", "to": "other:/b", "speed": 1}], 400, "unknown_field"),
        ([{"from": "other:/a", "to": 5}], 400, "wrong_type"),
        ([{"id": "x/y", "from": "other:/a", "to": "other:/b"}], 400, "invalid_value"),
        ([{"id": "same", "from": "other:/a", "to": "other:/b"}, {"id": "same", "from": "other:/a", "to": "other:/c"}], 400, "invalid_value"),
        ([{"id": "ok", "from": "other:/a", "to": "other:/b"}, {"from": "bad"}], 400, "missing_field"),
        ([], 400, "invalid_value"),
    ],
)  # fmt: skip
def test_requests_are_checked_and_queued_whole_or_not_at_all(
    api: Api, owner: str, jobs: list, status: int, code: str
) -> None:
    reply = api.call("POST", "/copy", jobs, token=owner)
    assert (reply.status, reply.json["error"]) == (status, code), reply.text
    assert api.call("GET", "/copy", token=owner).json == []


def test_ids_are_unique_and_adaptors_unambiguous(api: Api, owner: str) -> None:
    assert api.call("POST", "/copy", [{"id": "c1", "from": "other:/a", "to": "other:/b"}], token=owner).status == 202
    assert api.call("POST", "/copy", [{"id": "c1", "from": "other:/a", "to": "other:/b"}], token=owner).status == 409
    assert api.call("POST", "/infrastructure", infrastructure("second"), token=owner).status == 201
    reply = api.call("POST", "/copy", [{"from": "other:/a", "to": "other:/b"}], token=owner)
    assert reply.json["error"] == "ambiguous_adaptor"
    assert (
        api.call("POST", "/copy", [{"from": "second/other:/a", "to": "test-001/other:/b"}], token=owner).status == 202
    )
    stranger = api.register("stranger@example.org")
    assert api.call("POST", "/copy", [{"from": "test-001/other:/a", "to": "other:/b"}], token=stranger).status == 400
    assert api.call("GET", "/copy/c1", token=stranger).status == 404


def test_a_stopped_process_puts_its_copy_back_and_the_next_finishes_it(make_api: Callable[..., Api]) -> None:
    first = make_api(copy_rate_limit=MiB)
    token = first.register("owner@example.org")
    first.call("POST", "/infrastructure", infrastructure(), token=token)
    data = os.urandom(4 * MiB)
    put_source(first, data)
    first.call(
        "POST", "/copy", [{"id": "c1", "from": "mynativestorage:/UC1/data.bin", "to": "other:/d.bin"}], token=token
    )
    wait_until(lambda: job_state(first, token, "c1")["bytes"] > 0, timeout=10)
    first.app.api.close()  # what SIGTERM does to this process's part
    assert job_state(first, token, "c1")["state"] == "queued"
    second = make_api()
    state = finished(second, token, "c1")
    assert (state["state"], state["attempts"]) == ("done", 1)  # a stop does not count as a failed start
    assert second.dav("GET", "/test-001/other/d.bin", DAV).body == data


def test_the_copy_of_a_dead_process_is_taken_up_when_its_lease_ends(api: Api, owner: str) -> None:
    put_source(api, b"orphan")
    route = '{"from": ["test-001", "mynativestorage", "UC1/data.bin"], "to": ["test-001", "other", "o.bin"]}'
    now = time.time()
    orphan = CopyJob("owner@example.org", "c1", "mynativestorage:/UC1/data.bin", "other:/o.bin", route, state="running",
                     holder="dead-process", lease=now + 1.0, attempts=1, created=now, updated=now)  # fmt: skip
    api.app.store.job_add([orphan])
    assert job_state(api, owner, "c1")["state"] == "running"
    state = finished(api, owner, "c1")
    assert (state["state"], state["attempts"]) == ("done", 2)


def test_copies_run_at_most_copy_workers_at_once(make_api: Callable[..., Api]) -> None:
    api = make_api(copy_workers=1, copy_rate_limit=4 * MiB)
    token = api.register("owner@example.org")
    api.call("POST", "/infrastructure", infrastructure(), token=token)
    put_source(api, os.urandom(MiB))
    jobs = [{"id": f"c{i}", "from": "mynativestorage:/UC1/data.bin", "to": f"other:/c{i}.bin"} for i in range(3)]
    api.call("POST", "/copy", jobs, token=token)
    most = 0

    def all_done() -> bool:
        nonlocal most
        states = [job["state"] for job in api.call("GET", "/copy", token=token).json]
        most = max(most, states.count("running"))
        return states == ["done"] * 3

    wait_until(all_done, timeout=20, interval=0.02)
    assert most == 1


def test_webhooks_go_only_where_the_configuration_allows(make_api: Callable[..., Api], webhook: Listener) -> None:
    base = webhook.url.rsplit("/", 1)[0]
    api = make_api(webhook_allow=[f"{base}/hook"], outbound_allow=[webhook.allowance])
    token = api.register("owner@example.org")
    assert api.call("POST", "/infrastructure", infrastructure(), token=token).status == 201
    for elsewhere in (f"{base}/other", f"{base}/hook/../admin", "http://127.0.0.1:9/hook", f"{base}/hookX"):
        reply = api.call(
            "POST", "/copy", [{"id": "c0", "from": "other:/none", "to": "other:/a", "webhook": elsewhere}], token=token
        )
        assert (reply.status, reply.json["error"]) == (400, "invalid_value"), elsewhere
        assert "api.webhook_allow" in reply.text
    jobs = [{"id": "c1", "from": "other:/none", "to": "other:/a", "webhook": f"{webhook.url}/job?c=1"}]
    assert api.call("POST", "/copy", jobs, token=token).status == 202
    wait_until(lambda: webhook.bodies("c1"), timeout=10)


def test_a_queued_webhook_no_longer_allowed_is_not_sent(
    make_api: Callable[..., Api], webhook: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    api = make_api(webhook_allow=["https://engine.example.org/hooks"], outbound_allow=[webhook.allowance])
    job = CopyJob("owner@example.org", "c1", "other:/a", "other:/b", "{}", webhook.url, state="done")
    api.app.api.stager.run_webhook(job)  # as the scheduler would, for a job queued under another list
    assert "no longer allowed" in caplog.text
    assert not webhook.received
