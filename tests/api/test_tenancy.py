"""Users who may be strangers, in-process: identity not name, quotas, a deleted user's credentials, old records."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import ALICE, Api, JwtUser, basic, bearer, infrastructure, volume_of
from tests.api.test_staging import finished, job_state

DAV = basic("user", "s3cret-pass")
URL = "http://127.0.0.1:8080"
PROPPATCH = b"""<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:a">
<D:set><D:prop><Z:secret>a-private-note</Z:secret></D:prop></D:set></D:propertyupdate>"""
LOCK = b"""<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>
<D:locktype><D:write/></D:locktype><D:owner>a</D:owner></D:lockinfo>"""

QUOTA = b"""<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/></D:prop></D:propfind>"""


def refusals(api: Api) -> dict[str, float]:
    """``davgate_api_quota_refusals_total`` by quota, from /metrics."""
    reply = api.dav("GET", "/metrics", ALICE)
    assert reply.status == 200, reply.text
    found = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            if sample.name == "davgate_api_quota_refusals_total":
                found[sample.labels["quota"]] = sample.value
    return found


def refused(reply, setting: str) -> None:
    """A quota refusal: 507 with one line naming the setting (the API's JSON detail, WebDAV's error page)."""
    assert reply.status == 507, reply.text
    if reply.headers["content-type"].startswith("application/json"):
        detail = reply.json["detail"]
        assert reply.json["error"] == "quota_exceeded" and "\n" not in detail
    else:
        detail = next(line for line in reply.text.splitlines() if "507 Insufficient Storage:" in line)
    assert f"quota {setting} is " in detail, detail


# --- identity, not name -----------------------------------------------------------------


def test_a_reused_name_starts_empty(api: Api, tmp_path: Path) -> None:
    alice, bob = api.register("a@example.org"), api.register("b@example.org")
    assert api.call("POST", "/infrastructure", infrastructure(), token=alice).status == 201
    assert api.dav("PUT", "/test-001/mynativestorage/a.txt", DAV, b"alice's").status == 201
    assert api.dav("PROPPATCH", "/test-001/mynativestorage/a.txt", DAV, PROPPATCH).status == 207
    locked = api.dav("LOCK", "/test-001/other/l.txt", DAV, LOCK, Timeout="Second-3600")
    assert locked.status in (200, 201), locked.text
    assert api.call("GET", "/find/a.txt", token=alice).json != []
    first = api.app.store.infra_get("test-001")
    assert api.call("DELETE", "/infrastructure/test-001", token=alice).status == 204  # volumes kept

    assert api.call("POST", "/infrastructure", infrastructure(), token=bob).status == 201  # the same adaptor names
    assert api.dav("GET", "/test-001/mynativestorage/a.txt", DAV).status == 404
    assert api.dav("PUT", "/test-001/mynativestorage/a.txt", DAV, b"bob's").status == 201
    props = api.dav("PROPFIND", "/test-001/mynativestorage/a.txt", DAV, Depth="0")
    assert props.status == 207 and b"a-private-note" not in props.body
    assert api.dav("PUT", "/test-001/other/l.txt", DAV, b"no lock of alice's here").status == 201
    assert api.call("GET", "/find/a.txt", token=bob).json[0]["size"] == len(b"bob's")
    old_volume = tmp_path / "state-volumes" / first.id / "mynativestorage"  # type: ignore[union-attr]
    assert (old_volume / "a.txt").read_bytes() == b"alice's"  # kept for alice, out of bob's reach
    assert volume_of(api, tmp_path, "test-001", "mynativestorage") != old_volume


def test_a_job_of_a_replaced_infrastructure_fails_instead_of_touching_the_new_one(
    make_api: Callable[..., Api], tmp_path: Path
) -> None:
    first = make_api()
    first.app.api.stager.stop()  # this process runs no copies: the job waits in the queue
    alice, bob = first.register("a@example.org"), first.register("b@example.org")
    first.call("POST", "/infrastructure", infrastructure(), token=alice)
    job = [{"id": "c1", "from": "mynativestorage:/in.bin", "to": "other:/out.bin"}]
    assert first.call("POST", "/copy", job, token=alice).status == 202
    first.call("DELETE", "/infrastructure/test-001", token=alice)
    first.call("POST", "/infrastructure", infrastructure(), token=bob)
    assert first.dav("PUT", "/test-001/mynativestorage/in.bin", DAV, b"bob's").status == 201
    second = make_api()  # another process takes the job up
    state = finished(second, alice, "c1")
    assert state["state"] == "failed" and "removed after the job was queued" in state["error"]
    assert second.dav("GET", "/test-001/other/out.bin", DAV).status == 404
    assert state["attempts"] == 1  # failed at once, not retried


# --- a deleted user ---------------------------------------------------------------------


def test_deleting_a_user_disables_their_infrastructures_credentials(api: Api, jwt_user: JwtUser) -> None:
    owner = api.register("owner@example.org")
    assert api.call("POST", "/infrastructure", infrastructure(jwt=jwt_user), token=owner).status == 201
    api.dav("PUT", "/test-001/mynativestorage/a.txt", DAV, b"x")
    for auth in (DAV, bearer(jwt_user.token()), bearer(owner)):
        assert api.dav("GET", "/test-001/mynativestorage/a.txt", auth).status == 200
    assert api.call("DELETE", "/user/owner@example.org").status == 204
    for auth in (DAV, bearer(jwt_user.token()), basic("anyone", jwt_user.token()), bearer(owner)):
        assert api.dav("GET", "/test-001/mynativestorage/a.txt", auth).status == 401
    assert api.dav("PUT", "/test-001/mynativestorage/b.txt", DAV, b"y").status == 401


def test_what_the_administrator_made_is_not_touched_by_deleting_users(api: Api) -> None:
    assert api.call("POST", "/infrastructure", infrastructure()).status == 201  # the admin token
    api.register("someone@example.org")
    assert api.call("DELETE", "/user/someone@example.org").status == 204
    assert api.dav("PUT", "/test-001/mynativestorage/a.txt", DAV, b"x").status == 201


# --- quotas -------------------------------------------------------------------------------


def test_infrastructures_per_user(make_api: Callable[..., Api]) -> None:
    api = make_api(quota_infrastructures=1)
    user = api.register("u@example.org")
    assert api.call("POST", "/infrastructure", infrastructure("one"), token=user).status == 201
    reply = api.call("POST", "/infrastructure", infrastructure("two"), token=user)
    refused(reply, "api.quota_infrastructures")
    assert api.call("GET", "/infrastructure/two", token=user).status == 404  # nothing was made
    assert (
        api.call("POST", "/infrastructure", infrastructure("three")).status == 201
    )  # the administrator is not limited
    other = api.register("v@example.org")
    assert api.call("POST", "/infrastructure", infrastructure("four"), token=other).status == 201  # per user
    assert api.call("DELETE", "/infrastructure/one", token=user).status == 204
    assert api.call("POST", "/infrastructure", infrastructure("two"), token=user).status == 201
    assert refusals(api)["infrastructures"] == 1


def test_metadata_entries_and_bytes_per_user(make_api: Callable[..., Api]) -> None:
    api = make_api(quota_metadata_entries=2, quota_metadata_bytes=200)
    user = api.register("u@example.org")
    assert api.call("PUT", "/metadata/c/a", {"n": 1}, token=user).status == 201
    assert api.call("PUT", "/metadata/d/b", {"n": 2}, token=user).status == 201
    refused(api.call("PUT", "/metadata/c/c", {"n": 3}, token=user), "api.quota_metadata_entries")
    assert api.call("GET", "/metadata/c/c", token=user).status == 404
    assert api.call("PUT", "/metadata/c/a", {"n": 4}, token=user).status == 204  # replacing adds no entry
    refused(api.call("PUT", "/metadata/c/a", {"s": "x" * 300}, token=user), "api.quota_metadata_bytes")
    assert api.call("GET", "/metadata/c/a", token=user).json == {"_id": "a", "n": 4}
    assert api.call("PUT", "/metadata/c/a", {"s": "x" * 150}, token=user).status == 204
    assert api.call("DELETE", "/metadata/d/b", token=user).status == 204
    assert api.call("PUT", "/metadata/c/c", {"n": 3}, token=user).status == 201
    assert refusals(api)["metadata_entries"] == 1 and refusals(api)["metadata_bytes"] == 1


def test_queued_jobs_per_user(make_api: Callable[..., Api]) -> None:
    api = make_api(quota_queued_jobs=2)
    api.app.api.stager.stop()  # nothing runs: queued jobs stay queued
    user = api.register("u@example.org")
    api.call("POST", "/infrastructure", infrastructure(), token=user)
    jobs = [{"id": f"c{i}", "from": "other:/a", "to": "other:/b"} for i in range(3)]
    refused(api.call("POST", "/copy", jobs, token=user), "api.quota_queued_jobs")
    assert api.call("GET", "/copy", token=user).json == []  # all or none
    assert api.call("POST", "/copy", jobs[:2], token=user).status == 202
    refused(api.call("POST", "/copy", jobs[2:], token=user), "api.quota_queued_jobs")
    assert job_state(api, user, "c0")["state"] == "queued"
    assert refusals(api)["queued_jobs"] == 2


def test_native_volume_bytes_per_user_through_webdav(make_api: Callable[..., Api]) -> None:
    api = make_api(quota_volume_bytes=1000)
    user = api.register("u@example.org")
    api.call("POST", "/infrastructure", infrastructure("one"), token=user)
    api.call("POST", "/infrastructure", infrastructure("two"), token=user)
    assert api.dav("PUT", "/one/mynativestorage/a.bin", DAV, b"a" * 600).status == 201
    quota = api.dav("PROPFIND", "/two/other/", DAV, QUOTA, Depth="0")
    assert b">400</D:quota-available-bytes>" in quota.body, quota.text  # the owner's room, not the disk's
    reply = api.dav("PUT", "/two/other/b.bin", DAV, b"b" * 600)  # the user's volumes together
    refused(reply, "api.quota_volume_bytes")
    assert api.dav("GET", "/two/other/b.bin", DAV).status == 404  # nothing of it kept
    assert api.dav("PUT", "/one/mynativestorage/a.bin", DAV, b"c" * 900).status == 204  # a replaced file is freed
    copy = api.dav("COPY", "/one/mynativestorage/a.bin", DAV, Destination=f"{URL}/one/mynativestorage/c.bin")
    refused(copy, "api.quota_volume_bytes")
    assert api.dav("PUT", "/two/other/d.bin", DAV, b"d" * 100).status == 201
    assert api.dav("DELETE", "/one/mynativestorage/a.bin", DAV).status == 204
    assert api.dav("PUT", "/two/other/b.bin", DAV, b"b" * 600).status == 201
    assert refusals(api)["volume_bytes"] == 2
    staged = [{"id": "c1", "from": "one/mynativestorage:/c.bin", "to": "two/other:/c.bin"}]
    api.dav("PUT", "/one/mynativestorage/c.bin", DAV, b"c" * 250)  # 950 of 1000 used, after this
    assert api.call("POST", "/copy", staged, token=user).status == 202
    assert finished(api, user, "c1")["state"] == "failed"  # a staging copy stays within the quota too
    assert api.dav("GET", "/two/other/c.bin", DAV).status == 404


@pytest.mark.parametrize("name", ["quota_infrastructures", "quota_volume_bytes"])
def test_quotas_are_checked_in_the_configuration(make_api: Callable[..., Api], name: str) -> None:
    from davgate.config import ConfigError

    with pytest.raises(ConfigError, match=rf"api\.{name}: expected 0 \(no limit\) or more"):
        make_api(**{name: -1})


# --- records of the previous version ------------------------------------------------------


def test_an_infrastructure_stored_before_ids_keeps_its_volume(make_api: Callable[..., Api], tmp_path: Path) -> None:
    api = make_api()
    user = api.register("u@example.org")
    api.call("POST", "/infrastructure", infrastructure(), token=user)
    api.app.close()
    with sqlite3.connect(tmp_path / "state" / "state.db") as db:  # as the previous davgate left it
        db.execute("UPDATE api_infrastructures SET id = name")
    db.close()
    old = tmp_path / "state" / "volumes" / "test-001" / "mynativestorage"  # where its volumes were
    old.mkdir(parents=True)
    (old / "kept.txt").write_bytes(b"from before")
    again = make_api()
    assert again.dav("GET", "/test-001/mynativestorage/kept.txt", DAV).body == b"from before"
    assert again.call("DELETE", "/infrastructure/test-001", token=user).status == 204
    assert again.call("POST", "/infrastructure", infrastructure(), token=user).status == 201
    assert again.dav("GET", "/test-001/mynativestorage/kept.txt", DAV).status == 404
