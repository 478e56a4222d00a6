"""The API's surface: routing, JSON errors, tokens, users, the OpenAPI document."""

from __future__ import annotations

import stat
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from davgate.auth.tokens import generate_key, mint
from tests.api.conftest import ADMIN_TOKEN, Api
from tests.helpers import wait_until


def error_of(reply) -> tuple[int, str]:
    assert reply.headers["content-type"].startswith("application/json")
    assert set(reply.json) == {"error", "detail"}
    return reply.status, reply.json["error"]


def test_unknown_paths_and_methods(api: Api) -> None:
    assert error_of(api.call("GET", "/nothing")) == (404, "not_found")
    reply = api.call("PATCH", "/infrastructure")
    assert error_of(reply) == (405, "method_not_allowed")
    assert reply.headers["allow"] == "DELETE, GET, POST"  # DELETE: the admin removes a record by ?name=


def test_tokens_missing_wrong_or_not_admin(api: Api) -> None:
    assert error_of(api.call("GET", "/infrastructure", token=None)) == (401, "missing_token")
    assert error_of(api.call("GET", "/infrastructure", token="not-a-token")) == (401, "invalid_token")
    assert api.call("GET", "/infrastructure", token=None).headers["www-authenticate"].startswith("Bearer")
    user = api.register("u@example.org")
    assert error_of(api.call("PUT", "/user", {"email": "v@example.org", "name": "V"}, token=user)) == (403, "forbidden")
    reply = api.request("GET", "/api/v1/infrastructure", headers={"Authorization": f"Bearer {user}"})
    assert reply.status == 200


def test_bad_bodies(api: Api) -> None:
    assert error_of(api.call("PUT", "/user", raw=b"{not json")) == (400, "bad_json")
    assert error_of(api.call("PUT", "/user", raw=b"")) == (400, "bad_json")
    assert error_of(api.call("PUT", "/user", {"email": "a@b", "name": "A", "role": "x"})) == (400, "unknown_field")
    assert error_of(api.call("PUT", "/user", {"email": "a@b", "name": 7})) == (400, "wrong_type")
    assert error_of(api.call("PUT", "/user", {"email": "a@b"})) == (400, "missing_field")
    assert error_of(api.call("PUT", "/user", {"email": "no-at-sign", "name": "x"})) == (400, "invalid_value")
    assert error_of(api.call("PUT", "/user", ["a"])) == (400, "wrong_type")
    assert error_of(api.call("PUT", "/user", raw=b"{" + b" " * (2 << 20) + b"}")) == (413, "payload_too_large")


def test_errors_never_quote_secrets(api: Api) -> None:
    body = {"name": "t", "storageAdaptorContainers": [{"name": "s", "type": "sshfs", "user": "u", "host": "h",
                                                         "password": 12345678901}]}  # fmt: skip
    reply = api.call("POST", "/infrastructure", body)
    assert error_of(reply) == (400, "wrong_type")
    assert "storageAdaptorContainers[0].password" in reply.json["detail"] and "12345678901" not in reply.text


def test_register_returns_a_token_that_expires(api: Api, tmp_path: Path) -> None:
    created = api.call("PUT", "/user", {"email": "u@example.org", "name": "U"})
    assert created.status == 201 and created.json["email"] == "u@example.org"
    assert created.json["expires"] > time.time() + 3600
    again = api.call("PUT", "/user", {"email": "u@example.org", "name": "U2"})
    assert again.status == 200
    for token in (created.json["token"], again.json["token"]):
        assert api.call("GET", "/infrastructure", token=token).status == 200
    users = api.call("GET", "/user").json
    assert [(u["email"], u["name"]) for u in users] == [("u@example.org", "U2")]
    key_path = tmp_path / "state" / "api-signing-key.pem"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    claims = {"audience": "davgate-api", "issuer": "davgate", "kid": "davgate-api"}
    expired = mint(key, "u@example.org", ttl=60, now=time.time() - 3600, **claims)
    assert "expired" in api.call("GET", "/infrastructure", token=expired).json["detail"]
    forged = mint(generate_key("ed25519"), "u@example.org", ttl=60, **claims)
    assert "signature" in api.call("GET", "/infrastructure", token=forged).json["detail"]
    assert api.call("GET", "/infrastructure", token=mint(key, "u@example.org", ttl=60)).status == 401  # no aud/iss


def test_a_removed_user_loses_their_tokens(api: Api) -> None:
    token = api.register("u@example.org")
    assert api.call("DELETE", "/user/u@example.org").status == 204
    assert api.call("DELETE", "/user/u@example.org").status == 404
    wait_until(lambda: api.call("GET", "/infrastructure", token=token).status == 401, timeout=5)


def test_tokens_survive_a_restart_and_the_key_is_shared(make_api: Callable[..., Api]) -> None:
    first = make_api()
    token = first.register("u@example.org")
    second = make_api()  # another process, or the next start: same state folder, same key
    assert second.call("GET", "/infrastructure", token=token).status == 200


def test_openapi_document(api: Api) -> None:
    reply = api.call("GET", "/openapi.json", token=None)
    assert reply.status == 200
    doc = reply.json
    assert doc["openapi"].startswith("3.") and doc["servers"] == [{"url": "http://127.0.0.1:8080/api/v1"}]
    assert {"/infrastructure", "/infrastructure/{name}", "/user", "/list", "/find/{name}", "/copy", "/copy/{id}",
            "/metadata/{collection}", "/metadata/{collection}/{id}"} <= set(doc["paths"])  # fmt: skip
    assert doc["components"]["securitySchemes"]["accessToken"]["name"] == "x-access-token"


def test_admin_token_is_required_to_be_long(tmp_path: Path) -> None:
    import pytest

    from davgate.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"api.admin_token: expected at least 16 characters \(f\)"):
        parse_config({"state": {"type": "sqlite", "path": str(tmp_path / "s")}, "api": {"admin_token": "short"}}, "f")
    with pytest.raises(ConfigError, match=r"api.copy_workers: expected at least 1"):
        parse_config({"state": {"type": "sqlite", "path": str(tmp_path / "s")}, "api": {"copy_workers": 0}}, "f")
    assert ADMIN_TOKEN not in repr(
        parse_config({"state": {"type": "sqlite", "path": "s"}, "api": {"admin_token": ADMIN_TOKEN}})
    )
