"""Micro-infrastructures in-process: live namespaces, their own access methods, persistence, checks."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from davgate.auth.tokens import generate_key
from tests.api.conftest import ALICE, Api, JwtUser, basic, bearer, infrastructure

DAV = basic("user", "s3cret-pass")
FILE = "/test-001/mynativestorage/in/a.txt"


@pytest.fixture
def owner(api: Api) -> str:
    return api.register("owner@example.org")


@pytest.fixture
def created(api: Api, owner: str, jwt_user: JwtUser) -> Api:
    reply = api.call("POST", "/infrastructure", infrastructure(jwt=jwt_user), token=owner)
    assert reply.status == 201, reply.text
    assert reply.headers["location"] == "http://127.0.0.1:8080/api/v1/infrastructure/test-001"
    return api


def test_endpoints_in_the_seeds_shape(created: Api, owner: str) -> None:
    listed = created.call("GET", "/infrastructure", token=owner).json
    kinds = {entry["type"]: entry for entry in listed}
    assert kinds["webdav"] == {"type": "webdav", "name": "test-001-myDav", "infrastructure": "test-001", "host": "127.0.0.1",
                               "port": 8080, "url": "http://127.0.0.1:8080/test-001/", "user": "user"}  # fmt: skip
    assert kinds["webdav-jwt"]["users"] == ["ee@example.org"]
    assert kinds["query"]["list"] == "http://127.0.0.1:8080/api/v1/list?infrastructure=test-001"
    assert listed[-1] == {"type": "token", "header": "x-access-token"}
    storage = [e["url"] for e in listed if e["type"] == "storage"]
    assert storage == ["http://127.0.0.1:8080/test-001/mynativestorage/", "http://127.0.0.1:8080/test-001/other/"]
    described = created.call("GET", "/infrastructure/test-001", token=owner).json
    assert (described["namespace"], described["location"], described["owner"]) == (
        "user-001",
        "uva",
        "owner@example.org",
    )
    assert described["storageAdaptorContainers"][0]["volume"] == {"name": "pv-001", "size": "1Gi"}
    assert "pass" not in json.dumps(described["logicContainers"]) and "passwordHash" not in json.dumps(described)


def test_each_access_method_works_in_its_namespace(created: Api, owner: str, jwt_user: JwtUser) -> None:
    assert created.dav("MKCOL", "/test-001/mynativestorage/in", DAV).status == 201
    assert created.dav("PUT", FILE, DAV, b"hello").status == 201
    assert created.dav("GET", FILE, bearer(jwt_user.token())).body == b"hello"
    assert created.dav("GET", FILE, basic("anyone", jwt_user.token())).body == b"hello"  # a JWT as Basic password
    assert created.dav("GET", FILE, bearer(owner)).body == b"hello"  # the owner's API token
    listing = created.dav("PROPFIND", "/test-001/", DAV, Depth="1")
    assert listing.status == 207 and b"mynativestorage" in listing.body and b"other" in listing.body
    copied = created.dav("COPY", FILE, DAV, Destination="http://127.0.0.1:8080/test-001/other/b.txt")
    assert copied.status == 201


def test_credentials_stay_in_their_place(created: Api, api: Api, jwt_user: JwtUser) -> None:
    created.dav("PUT", "/test-001/mynativestorage/a.txt", DAV, b"x")
    assert created.dav("GET", "/test-001/mynativestorage/a.txt", ALICE).status == 401  # a global user
    assert created.dav("GET", "/test-001/mynativestorage/a.txt", basic("user", "wrong")).status == 401
    assert created.dav("GET", "/test-001/mynativestorage/a.txt", "").status == 401
    stranger = JwtUser("ee@example.org", generate_key("ed25519"))
    assert created.dav("GET", "/test-001/mynativestorage/a.txt", bearer(stranger.token())).status == 401
    other_user = api.register("other@example.org")
    assert created.dav("GET", "/test-001/mynativestorage/a.txt", bearer(other_user)).status == 401
    assert created.dav("GET", "/data/", DAV).status == 401  # namespace users are nobody elsewhere
    out = created.dav("COPY", "/test-001/mynativestorage/a.txt", DAV, Destination="http://127.0.0.1:8080/data/a.txt")
    assert out.status == 403
    (Path(created.app.mounts["/data"].root) / "d.txt").write_bytes(b"d")
    into = created.dav("COPY", "/data/d.txt", ALICE, Destination="http://127.0.0.1:8080/test-001/other/d.txt")
    assert into.status == 403
    assert created.dav("PROPFIND", "/", DAV, Depth="1").status == 401  # above the spaces: global users only


def test_other_users_cannot_see_or_remove_it(created: Api, api: Api) -> None:
    other = api.register("other@example.org")
    assert api.call("GET", "/infrastructure", token=other).json == [{"type": "token", "header": "x-access-token"}]
    assert api.call("GET", "/infrastructure/test-001", token=other).status == 403
    assert api.call("DELETE", "/infrastructure/test-001", token=other).status == 403
    assert any(e["type"] == "webdav" for e in api.call("GET", "/infrastructure").json)  # the admin sees all


def test_persisted_for_other_processes_and_restarts(created: Api, make_api: Callable[..., Api], owner: str) -> None:
    created.dav("PUT", "/test-001/mynativestorage/a.txt", DAV, b"kept")
    other = make_api()  # another worker process, or davgate after a restart
    assert other.dav("GET", "/test-001/mynativestorage/a.txt", DAV).body == b"kept"
    assert other.call("DELETE", "/infrastructure/test-001", token=owner).status == 204
    created.app.api.namespace.refresh(wait=True)  # what the next generation check does within a second
    assert created.dav("GET", "/test-001/mynativestorage/a.txt", DAV).status == 401
    assert created.dav("PROPFIND", "/test-001/", ALICE).status == 404


def test_delete_keeps_volumes_unless_purged(created: Api, owner: str, tmp_path: Path) -> None:
    created.dav("PUT", "/test-001/mynativestorage/a.txt", DAV, b"x")
    first = created.app.store.infra_get("test-001").id  # type: ignore[union-attr]
    volume = tmp_path / "state-volumes" / first / "mynativestorage"  # beside the state's folder, not in it
    assert (volume / "a.txt").read_bytes() == b"x"
    assert created.call("DELETE", "/infrastructure/test-001", token=owner).status == 204
    assert created.call("DELETE", "/infrastructure/test-001", token=owner).status == 404
    assert (volume / "a.txt").exists()
    assert created.call("POST", "/infrastructure", infrastructure(), token=owner).status == 201
    assert created.dav("GET", "/test-001/mynativestorage/a.txt", DAV).status == 404  # a new infrastructure
    second = created.app.store.infra_get("test-001").id  # type: ignore[union-attr]
    created.dav("PUT", "/test-001/mynativestorage/b.txt", DAV, b"y")
    assert created.call("DELETE", "/infrastructure/test-001?purge=true", token=owner).status == 204
    assert not (tmp_path / "state-volumes" / second).joinpath("mynativestorage").exists()
    assert (volume / "a.txt").exists()  # the first one's volume was not purged


def test_passwords_are_not_stored(created: Api, tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "state" / "state.db")
    try:
        dump = "\n".join(db.iterdump())
    finally:
        db.close()
    assert "s3cret-pass" not in dump and "$2b$" in dump


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        (lambda b: b.update(name="api"), 400, "invalid_value"),
        (lambda b: b.update(name="data"), 409, "exists"),
        (lambda b: b.update(name="a/b"), 400, "invalid_value"),
        (lambda b: b.update(storageAdaptorContainers=[]), 400, "invalid_value"),
        (lambda b: b["storageAdaptorContainers"].append({"name": "other", "type": "native"}), 400, "invalid_value"),
        (lambda b: b["storageAdaptorContainers"].append({"name": "g", "type": "gridftp"}), 400, "unsupported_type"),
        (lambda b: b["logicContainers"].append({"name": "j", "type": "jupyter", "pass": "x"}), 400, "unsupported_type"),
        (lambda b: b["logicContainers"].append({"name": "w", "type": "webdav", "user": "u"}), 400, "missing_field"),
        (lambda b: b["storageAdaptorContainers"][0].update(colour="red"), 400, "unknown_field"),
        (lambda b: b["storageAdaptorContainers"][0].update(volume="1Gi"), 400, "wrong_type"),
        (lambda b: b["logicContainers"].append({"name": "t", "type": "webdav-jwt", "users": {"a@b": {"publicKey": "x"}}}),
         400, "invalid_value"),
        (lambda b: b["storageAdaptorContainers"].append(
            {"name": "c", "type": "s3", "endpoint": "ftp://x", "bucket": "b", "access_key": "a", "secret_key": "s"}),
         400, "invalid_value"),
    ],
)  # fmt: skip
def test_descriptions_are_checked(api: Api, owner: str, change: Callable, status: int, code: str) -> None:
    body = infrastructure()
    change(body)
    reply = api.call("POST", "/infrastructure", body, token=owner)
    assert (reply.status, reply.json["error"]) == (status, code), reply.text
    assert api.call("GET", "/infrastructure", token=owner).json == [{"type": "token", "header": "x-access-token"}]


def test_a_name_is_taken_once(created: Api, owner: str) -> None:
    reply = created.call("POST", "/infrastructure", infrastructure(), token=owner)
    assert (reply.status, reply.json["error"]) == (409, "exists")
