"""Names and ids are matched whole; a stored record that cannot be served stops nothing, and an operator can remove it."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable
from urllib.parse import quote

import pytest

from davgate.api import metadata
from davgate.api.errors import BadRequest
from davgate.state import InfraRecord
from tests.api.conftest import ADMIN_TOKEN, Api, basic, infrastructure

DAV = basic("user", "s3cret-pass")
BAD = ["evil\n", "evil\r\n", "ev\til", "evil\x7f", "evil\x00"]


@pytest.fixture
def owner(api: Api) -> str:
    return api.register("owner@example.org")


@pytest.mark.parametrize("name", BAD)
def test_a_name_with_a_control_character_is_a_400(api: Api, owner: str, name: str) -> None:
    reply = api.call("POST", "/infrastructure", infrastructure(name), token=owner)
    assert (reply.status, reply.json["error"]) == (400, "invalid_value"), reply.text
    adaptor = infrastructure("fine", extra=[{"name": name, "type": "native"}])
    reply = api.call("POST", "/infrastructure", adaptor, token=owner)
    assert (reply.status, reply.json["error"]) == (400, "invalid_value"), reply.text
    assert api.call("GET", "/infrastructure", token=owner).json == [{"type": "token", "header": "x-access-token"}]


def behind_the_guard(api: Api, method: str, path: str, token: str, body: bytes = b"") -> int:
    """The API router's own answer to ``path`` as it would see it decoded (the request guard in front not asked)."""
    environ = {"REQUEST_METHOD": method, "PATH_INFO": f"/api/v1{path}", "QUERY_STRING": "", "HTTP_X_ACCESS_TOKEN": token,
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}  # fmt: skip
    statuses: list[int] = []
    b"".join(api.app.api.router(environ, lambda status, headers, exc_info=None: statuses.append(int(status[:3]))))
    return statuses[0]


@pytest.mark.parametrize("name", BAD)
def test_ids_with_a_control_character_are_a_400(api: Api, owner: str, name: str) -> None:
    assert api.call("POST", "/infrastructure", infrastructure(), token=owner).status == 201
    job = api.call("POST", "/copy", [{"id": name, "from": "other:/a", "to": "other:/b"}], token=owner)
    assert (job.status, job.json["error"]) == (400, "invalid_value"), job.text
    assert api.call("GET", "/copy", token=owner).json == []
    for method, path in (("PUT", f"/metadata/c/{name}"), ("PUT", f"/metadata/{name}/x"), ("GET", f"/copy/{name}"),
                         ("GET", f"/infrastructure/{name}"), ("DELETE", f"/infrastructure/{name}")):  # fmt: skip
        assert behind_the_guard(api, method, path, owner, b'{"a": 1}') == 400, path


def test_metadata_keys_are_matched_whole() -> None:
    for key in BAD:
        with pytest.raises(BadRequest):
            metadata.check_key(key, "id")
    assert metadata.check_key("a b:c@d", "id") == "a b:c@d"


def test_route_patterns_match_the_whole_path(api: Api, owner: str) -> None:
    assert api.call("POST", "/infrastructure", infrastructure(), token=owner).status == 201
    assert api.call("GET", "/infrastructure/test-001", token=owner).status == 200
    assert api.call("GET", "/infrastructure/test-001/extra", token=owner).status == 404
    assert behind_the_guard(api, "GET", "/infrastructure/test-001", owner) == 200


def store_raw(api: Api, name: str, spec: str) -> None:
    """A record written straight into the state store, as an older version (or a broken one) left it."""
    assert api.app.store.infra_create(InfraRecord(name, "owner@example.org", spec, time.time()))


def test_records_that_cannot_be_served_are_skipped_and_removable(
    make_api: Callable[..., Api], caplog: pytest.LogCaptureFixture
) -> None:
    first = make_api()
    owner = first.register("owner@example.org")
    assert first.call("POST", "/infrastructure", infrastructure("good-1"), token=owner).status == 201
    good = json.loads(first.app.store.infra_get("good-1").spec)  # type: ignore[union-attr]
    store_raw(first, "evil\n", json.dumps({**good, "name": "evil\n"}))
    store_raw(first, "broken", '{"name": "broken", "storageAdaptorContainers": [')
    bad_adaptor = {**good, "name": "bad-adaptor",
                   "storageAdaptorContainers": [{"name": "x\n", "type": "native"}, {"name": "ok", "type": "native"}]}  # fmt: skip
    store_raw(first, "bad-adaptor", json.dumps(bad_adaptor))
    assert first.call("POST", "/infrastructure", infrastructure("good-2"), token=owner).status == 201

    with caplog.at_level(logging.ERROR, logger="davgate.api"):
        second = make_api()  # a restart, with the bad records in the store
    for name in ("good-1", "good-2", "bad-adaptor"):
        path = f"/{name}/other/" if name.startswith("good") else f"/{name}/ok/"
        assert second.dav("PROPFIND", path, DAV, Depth="0").status == 207, name
    assert "'evil\\n' cannot be served" in caplog.text and "broken cannot be served" in caplog.text
    listed = {e.get("infrastructure") for e in second.call("GET", "/infrastructure", token=ADMIN_TOKEN).json}
    assert {"good-1", "good-2", "bad-adaptor", "evil\n"} <= listed
    copy = [{"id": "c1", "from": "good-1/other:/a", "to": "good-2/other:/a"}]
    assert second.call("POST", "/copy", copy, token=owner).status == 202  # the owner of the broken ones too

    assert second.call("DELETE", f"/infrastructure?name={quote('evil' + chr(10))}", token=owner).status == 403
    for name in ("evil\n", "broken"):
        reply = second.call("DELETE", f"/infrastructure?name={quote(name)}", token=ADMIN_TOKEN)
        assert reply.status == 204, reply.text
        assert second.app.store.infra_get(name) is None
    assert second.call("DELETE", "/infrastructure?name=evil", token=ADMIN_TOKEN).status == 404
    assert second.dav("PROPFIND", "/good-1/other/", DAV, Depth="0").status == 207
