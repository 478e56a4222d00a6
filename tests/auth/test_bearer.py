"""The credentials middleware in the real app, in-process: Bearer, JWT as Basic password, 401s."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from davgate.app import Application, build_app
from davgate.auth.bearer import MalformedCredentials, parse_authorization
from davgate.config import parse_config
from tests.auth.jwt_keys import ALICE, BOB, claims, key, token, write_users
from tests.helpers import USERS, wait_until, write_htpasswd
from tests.wsgi.client import Client, Response, basic


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    return write_users(tmp_path / "users.json", {ALICE: key("ed25519"), BOB: key("ec-p256")})


@pytest.fixture
def make(tmp_path: Path, users_file: Path) -> Iterator[Callable[..., Application]]:
    apps: list[Application] = []
    htpasswd = write_htpasswd(tmp_path / "htpasswd")
    (tmp_path / "data").mkdir()

    def make(jwt: dict[str, Any] | None = None, **auth: Any) -> Application:
        data = {
            "auth": {"htpasswd": str(htpasswd), **auth},
            "mounts": {"/data": {"type": "local", "root": str(tmp_path / "data")}},
            "state": {"type": "sqlite", "path": str(tmp_path / "state.db")},
        }
        if jwt is not False:
            data["auth"]["jwt"] = {"users": str(users_file), **(jwt or {})}
        apps.append(build_app(parse_config(data, "test")))
        return apps[-1]

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def app(make) -> Application:
    return make()


def call(app: Application, method: str, path: str, authorization: str | None, body: bytes = b"", **extra: Any):
    """One request; returns (response, environ) so tests can see what the app decided."""
    environ: dict = {"REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "wsgi.input": io.BytesIO(body)}
    setup_testing_defaults(environ)
    environ.update(HTTP_HOST="127.0.0.1", CONTENT_LENGTH=str(len(body)), **extra)
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    captured: dict = {}

    def start_response(status: str, headers: list, exc_info=None):
        captured["status"], captured["headers"] = int(status.split()[0]), headers

    chunks = app(environ, start_response)
    try:
        data = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    challenges = [v for k, v in captured["headers"] if k.lower() == "www-authenticate"]
    headers = {k.lower(): v for k, v in captured["headers"]}
    headers["www-authenticate"] = challenges  # type: ignore[assignment]
    return Response(captured["status"], headers, data), environ


def bearer(private: Any = None, **claim_values: Any) -> str:
    return "Bearer " + token(private or key("ed25519"), claims(**claim_values))


def basic_with(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# -- parsing --------------------------------------------------------------


def test_parse_authorization() -> None:
    jwt_text = token(key("ed25519"))
    assert parse_authorization(None) is None
    assert parse_authorization(f"Bearer {jwt_text}").secret == jwt_text
    assert parse_authorization(f"bearer   {jwt_text} ").scheme == "bearer"
    assert parse_authorization(jwt_text).scheme == "bearer"  # the original system's bare token
    parsed = parse_authorization(basic_with("alice", "pa:ss wörd"))
    assert (parsed.scheme, parsed.user, parsed.secret) == ("basic", "alice", "pa:ss wörd")


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Basic !!!", "not valid base64"),
        ("Basic YWxpY2U", "not valid base64"),  # missing padding
        ("Basic " + base64.b64encode(b"alice-no-colon").decode(), "no ':'"),
        ("Basic " + base64.b64encode(b"alice:\xff\xfe").decode(), "not UTF-8"),
        ("Basic", "no .:."),
        ("Bearer", "malformed bearer token"),
        ("Bearer a b", "malformed bearer token"),
        ("Bearer tok\u00e9n", "malformed bearer token"),
        ("Digest username=alice", "unsupported authorization scheme"),
        ("Negotiate abc", "unsupported authorization scheme"),
        ("garbage", "unsupported authorization scheme"),
        ("Basic " + "A" * 40000, "too long"),
    ],
)
def test_malformed_authorization_headers(header: str, reason: str) -> None:
    with pytest.raises(MalformedCredentials, match=reason):
        parse_authorization(header)


# -- in the app -----------------------------------------------------------


def test_bearer_token_reads_and_writes_as_its_user(app: Application) -> None:
    response, environ = call(app, "PUT", "/data/f.txt", bearer(), b"by token")
    assert response.status == 201
    assert environ["wsgidav.auth.user_name"] == ALICE
    response, _ = call(app, "GET", "/data/f.txt", bearer(key("ec-p256"), email=BOB))
    assert (response.status, response.body) == (200, b"by token")


def test_bare_token_is_accepted_like_the_original_system(app: Application) -> None:
    response, environ = call(app, "GET", "/data/", token(key("ed25519")))
    assert response.status == 200
    assert environ["wsgidav.auth.user_name"] == ALICE


def test_jwt_as_basic_password_is_the_tokens_user(app: Application) -> None:
    text = token(key("ed25519"))
    response, environ = call(app, "PUT", "/data/b.txt", basic_with("anything", text), b"x")
    assert response.status == 201
    assert environ["wsgidav.auth.user_name"] == ALICE


def test_bad_jwt_as_basic_password_is_refused_as_a_token(app: Application) -> None:
    text = token(key("ed25519", 1))
    response, _ = call(app, "GET", "/data/", basic_with(ALICE, text))
    assert response.status == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"][1]
    assert response.body == b"401 Unauthorized: bad signature\n"


def test_jwt_as_basic_user_name_is_taken_as_the_token(app: Application, make) -> None:
    text = token(key("ed25519"))
    response, environ = call(app, "GET", "/data/", basic_with(text, "x"))
    assert response.status == 200 and environ["wsgidav.auth.user_name"] == ALICE
    response, _ = call(make(jwt=False), "GET", "/data/", basic_with(text, "x"))
    assert response.body == b"401 Unauthorized: this server does not accept bearer tokens\n"


def test_htpasswd_users_still_log_in(app: Application) -> None:
    response, environ = call(app, "GET", "/data/", basic("alice"))
    assert response.status == 200
    assert environ["wsgidav.auth.user_name"] == "alice"


def test_no_credentials_get_both_challenges(app: Application) -> None:
    response, _ = call(app, "GET", "/data/", None)
    assert response.status == 401
    assert response.headers["www-authenticate"] == ['Basic realm="davgate"', 'Bearer realm="davgate"']
    assert response.body == b"401 Unauthorized: authentication required\n"


def test_wrong_password_gets_both_challenges(app: Application) -> None:
    response, _ = call(app, "GET", "/data/", basic("alice", "wrong"))
    assert response.status == 401
    assert response.headers["www-authenticate"] == ['Basic realm="davgate"', 'Bearer realm="davgate"']


def test_invalid_token_gets_invalid_token_error_and_a_reason(app: Application) -> None:
    sent = bearer(key("ed25519", 1))
    response, environ = call(app, "GET", "/data/", sent)
    assert response.status == 401
    assert response.headers["www-authenticate"] == [
        'Basic realm="davgate"',
        'Bearer realm="davgate", error="invalid_token"',
    ]
    assert response.body == b"401 Unauthorized: bad signature\n"
    assert environ.get("wsgidav.auth.user_name") in (None, "")


@pytest.mark.parametrize("header", ["Basic !!!", "Basic YWxpY2U=", "Basic //79", "Digest username=x", "Bearer"])
def test_malformed_headers_get_a_clean_401(app: Application, header: str) -> None:
    response, _ = call(app, "PROPFIND", "/data/", header, HTTP_DEPTH="0")
    assert response.status == 401
    assert response.headers["www-authenticate"] == ['Basic realm="davgate"', 'Bearer realm="davgate"']
    assert response.body.startswith(b"401 Unauthorized: ")


def test_bearer_is_refused_when_tokens_are_not_configured(make) -> None:
    response, _ = call(make(jwt=False), "GET", "/data/", bearer())
    assert response.status == 401
    assert response.body == b"401 Unauthorized: this server does not accept bearer tokens\n"


def test_jwt_shaped_basic_password_goes_to_htpasswd_when_tokens_are_not_configured(make) -> None:
    response, _ = call(make(jwt=False), "GET", "/data/", basic_with("alice", token(key("ed25519"))))
    assert response.status == 401
    assert 'error="invalid_token"' not in response.headers["www-authenticate"][1]


def test_verified_user_key_cannot_be_smuggled_in(app: Application) -> None:
    """Neither an environ key set upstream nor a look-alike header makes a user."""
    response, environ = call(app, "PUT", "/data/s.txt", None, b"x", **{"davgate.auth.verified_user": ALICE})
    assert response.status == 401
    assert "davgate.auth.verified_user" not in environ
    header = {"HTTP_DAVGATE.AUTH.VERIFIED_USER": ALICE, "HTTP_DAVGATE_AUTH_VERIFIED_USER": ALICE}
    assert call(app, "PUT", "/data/s.txt", None, b"x", **header)[0].status == 401
    smuggled = {"davgate.auth.verified_user": "mallory", "davgate.auth.scopes": None}
    response, environ = call(app, "GET", "/data/", basic("alice"), **smuggled)
    assert environ["wsgidav.auth.user_name"] == "alice"


def test_anonymous_policy_still_checks_sent_tokens(make) -> None:
    app = make(anonymous="read")
    assert call(app, "GET", "/data/", None)[0].status == 200
    assert call(app, "GET", "/data/", bearer(key("ed25519", 1)))[0].status == 401
    response, environ = call(app, "PUT", "/data/w.txt", bearer(), b"w")
    assert response.status == 201 and environ["wsgidav.auth.user_name"] == ALICE


def test_audience_from_config_is_enforced(make) -> None:
    app = make(jwt={"audience": "davgate"})
    assert call(app, "GET", "/data/", bearer(aud="davgate"))[0].status == 200
    assert call(app, "GET", "/data/", bearer())[0].body == b"401 Unauthorized: missing claim aud\n"


# -- changes without a restart ---------------------------------------------


def test_users_file_changes_take_effect_without_restart(make, users_file: Path) -> None:
    app = make(throttle={"failures": 0})  # carol's refused tries until the reload would throttle her
    carol = "carol@example.org"
    carol_token = bearer(key("rsa"), email=carol)
    assert call(app, "GET", "/data/", carol_token)[0].status == 401
    document = json.loads(users_file.read_text())
    write_users(users_file, {carol: key("rsa")})
    wait_until(lambda: call(app, "GET", "/data/", carol_token)[0].status == 200, message="carol never got in")
    assert ALICE not in json.loads(users_file.read_text()) and ALICE in document
    wait_until(lambda: call(app, "GET", "/data/", bearer())[0].status == 401, message="alice was never removed")


def test_htpasswd_changes_take_effect_without_restart(app: Application, tmp_path: Path) -> None:
    assert call(app, "GET", "/data/", basic("alice"))[0].status == 200
    write_htpasswd(tmp_path / "htpasswd", {**USERS, "alice": "new-password", "carol": "c"})
    wait_until(lambda: call(app, "GET", "/data/", basic("alice"))[0].status == 401, message="old password still works")
    assert call(app, "GET", "/data/", basic("alice", "new-password"))[0].status == 200
    assert call(app, "GET", "/data/", basic_with("carol", "c"))[0].status == 200


def test_in_process_client_still_works(app: Application) -> None:
    assert Client(app).put("/data/c.txt", b"c").status == 201


def test_no_token_or_password_is_logged_in_process(app: Application, caplog: pytest.LogCaptureFixture) -> None:
    good, forged = token(key("ed25519")), token(key("ed25519", 1))
    headers = [
        f"Bearer {good}",
        f"Bearer {forged}",
        basic_with("x", forged),
        basic_with(forged, "y"),
        basic_with("alice", "wrong-password-123"),
        basic("alice"),
        "Basic !!!secret!!!",
        f"Digest {forged}",
    ]
    with caplog.at_level(logging.DEBUG):
        for header in headers:
            call(app, "PUT", "/data/l.txt", header, b"x")
    assert "token refused" in caplog.text
    for secret in (good, forged, "wrong-password-123", USERS["alice"], "!!!secret!!!", *headers):
        assert secret not in caplog.text
    for part in (*good.split("."), *forged.split(".")):
        assert part not in caplog.text
