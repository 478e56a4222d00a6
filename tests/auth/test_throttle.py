"""Failed-authentication throttling against a real davgate: 429 before any check, per address and per name.

Clients come from different loopback addresses (127.0.0.2, 127.0.0.3, ...)
by binding their sockets, so one server sees several client addresses.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
from pathlib import Path
from typing import Any

import pytest

from davgate.auth.throttle import FailureLog, address_key
from davgate.config import ConfigError, parse_config
from tests.auth.conftest import FakeClock
from tests.auth.jwt_keys import ALICE, claims, key, token, write_users
from tests.helpers import USERS, Server, ServerLauncher, basic, wait_until

FAILURES = 3
ADMIN_TOKEN = "admin-token-for-the-throttle-tests"
WRONG = "not-the-password"


class Answer:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = response.headers
        self.body = response.read().decode("utf-8", "replace")


def ask(server: Server, source: str, path: str = "/data/", **headers: str) -> Answer:
    """One GET from the loopback address ``source``."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30, source_address=(source, 0))
    try:
        connection.request("GET", path, headers={k.replace("_", "-"): v for k, v in headers.items()})
        return Answer(connection.getresponse())
    finally:
        connection.close()


def start(
    serve: ServerLauncher, tmp_path: Path, htpasswd: Path, window: float = 600, engine: str = "cheroot", **auth: Any
) -> Server:
    (tmp_path / "data").mkdir(exist_ok=True)
    config = {
        "server": {"engine": engine},
        "auth": {"htpasswd": htpasswd, "throttle": {"failures": FAILURES, "window": window}, **auth},
        "mounts": {"/data": {"type": "local", "root": tmp_path / "data"}},
        "state": {"type": "sqlite", "path": tmp_path / "state.db"},
        "api": {"admin_token": ADMIN_TOKEN},
    }
    return serve(config)


@pytest.fixture
def server(serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path) -> Server:
    return start(serve, tmp_path, htpasswd_file)


def fail(server: Server, source: str, user: str = "alice", times: int = FAILURES) -> None:
    for _ in range(times):
        assert ask(server, source, Authorization=basic(user, WRONG)).status == 401


def wrong_password_lines(server: Server) -> int:
    return server.log_text().count("(wrong password)")


def test_after_too_many_failures_even_the_right_password_gets_429_without_a_check(server: Server) -> None:
    fail(server, "127.0.0.2")
    checked = wrong_password_lines(server)
    assert checked == FAILURES
    for password in (WRONG, USERS["alice"]):
        answer = ask(server, "127.0.0.2", Authorization=basic("alice", password))
        assert answer.status == 429
        assert 1 <= int(answer.headers["Retry-After"]) <= 600
        assert answer.body.startswith("429 Too Many Requests: too many failed authentications")
        assert answer.body.count("\n") == 1
    assert wrong_password_lines(server) == checked  # the password was never looked at
    assert USERS["alice"] not in server.log_text() and WRONG not in server.log_text()


def test_a_user_name_is_throttled_from_every_address(server: Server) -> None:
    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        fail(server, source, times=1)
    answer = ask(server, "127.0.0.5", Authorization=basic("alice"))
    assert answer.status == 429
    assert ask(server, "127.0.0.5", Authorization=basic("bob")).status == 200  # that address is not throttled


@pytest.mark.parametrize("engine", ["cheroot", "granian"])
def test_an_address_is_throttled_whatever_name_it_tries(
    serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path, engine: str
) -> None:
    server = start(serve, tmp_path, htpasswd_file, engine=engine)
    for user in ("carol", "dave", "erin"):
        fail(server, "127.0.0.2", user, times=1)
    assert ask(server, "127.0.0.2", Authorization=basic("bob")).status == 429
    assert ask(server, "127.0.0.3", Authorization=basic("bob")).status == 200


def test_successes_are_never_counted_nor_slowed(server: Server) -> None:
    for _ in range(3 * FAILURES):
        assert ask(server, "127.0.0.2", Authorization=basic("alice")).status == 200
    fail(server, "127.0.0.2", times=FAILURES - 1)
    assert ask(server, "127.0.0.2", Authorization=basic("alice")).status == 200


def test_requests_without_credentials_are_not_throttled(server: Server) -> None:
    fail(server, "127.0.0.2")
    answer = ask(server, "127.0.0.2")
    assert answer.status == 401  # asked for credentials, as always
    assert "Retry-After" not in answer.headers


def test_a_throttled_client_that_waits_gets_in(serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path) -> None:
    server = start(serve, tmp_path, htpasswd_file, window=2)
    fail(server, "127.0.0.2")
    refused = ask(server, "127.0.0.2", Authorization=basic("alice"))
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) <= 2
    wait_until(lambda: ask(server, "127.0.0.2", Authorization=basic("alice")).status == 200, timeout=10)


def test_refused_tokens_count_against_the_address_only(
    serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path
) -> None:
    users = write_users(tmp_path / "users.json", {ALICE: key("ed25519")})
    server = start(serve, tmp_path, htpasswd_file, jwt={"users": users})
    good, forged = token(key("ed25519"), claims(ALICE)), token(key("ed25519", 1), claims(ALICE))
    for _ in range(FAILURES):
        assert ask(server, "127.0.0.2", Authorization=f"Bearer {forged}").status == 401
    assert ask(server, "127.0.0.2", Authorization=f"Bearer {good}").status == 429
    assert ask(server, "127.0.0.2", Authorization=basic("bob")).status == 429
    assert ask(server, "127.0.0.3", Authorization=f"Bearer {good}").status == 200
    fail(server, "127.0.0.4", ALICE)  # her name throttled for passwords...
    assert ask(server, "127.0.0.5", Authorization=basic(ALICE, WRONG)).status == 429
    assert ask(server, "127.0.0.5", Authorization=f"Bearer {good}").status == 200  # ...not for her token


def test_the_api_token_check_is_throttled(server: Server) -> None:
    for _ in range(FAILURES):
        assert ask(server, "127.0.0.2", "/api/v1/user", X_Access_Token="not-the-admin-token-at-all").status == 401
    answer = ask(server, "127.0.0.2", "/api/v1/user", X_Access_Token=ADMIN_TOKEN)
    assert answer.status == 429 and answer.headers["Retry-After"]
    assert ask(server, "127.0.0.3", "/api/v1/user", X_Access_Token=ADMIN_TOKEN).status == 200


def test_a_spaces_own_passwords_are_throttled(server: Server) -> None:
    token = api(server, "PUT", "/user", {"email": "owner@example.org", "name": "Owner"}, ADMIN_TOKEN)["token"]
    space = {
        "name": "test-001",
        "storageAdaptorContainers": [{"name": "native", "type": "native"}],
        "logicContainers": [{"name": "dav", "type": "webdav", "user": "spaceuser", "pass": "a-long-password"}],
    }
    api(server, "POST", "/infrastructure", space, token)
    path = "/test-001/native/"
    assert ask(server, "127.0.0.2", path, Authorization=basic_with("spaceuser", "a-long-password")).status == 200
    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        assert ask(server, source, path, Authorization=basic_with("spaceuser", WRONG)).status == 401
    refused = ask(server, "127.0.0.5", path, Authorization=basic_with("spaceuser", "a-long-password"))
    assert refused.status == 429  # the name, from any address
    assert ask(server, "127.0.0.5", path, Authorization=f"Bearer {token}").status == 200  # the owner's token


def api(server: Server, method: str, path: str, payload: object, token: str) -> Any:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method, f"/api/v1{path}", json.dumps(payload), {"x-access-token": token})
        response = connection.getresponse()
        body = response.read()
        assert response.status in (200, 201), body
        return json.loads(body)
    finally:
        connection.close()


def basic_with(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_failures_and_throttled_requests_are_counted(server: Server) -> None:
    for user in ("carol", "dave", "erin"):
        fail(server, "127.0.0.2", user, times=1)
    for _ in range(2):
        assert ask(server, "127.0.0.2", Authorization=basic("bob")).status == 429
    for source in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):
        fail(server, source, times=1)
    assert ask(server, "127.0.0.6", Authorization=basic("alice")).status == 429
    page = ask(server, "127.0.0.7", "/metrics", Authorization=basic("bob")).body
    assert sample(page, "davgate_auth_failures_total") == 2 * FAILURES
    assert sample(page, 'davgate_auth_throttled_total{scope="address"}') == 2
    assert sample(page, 'davgate_auth_throttled_total{scope="user"}') == 1


def sample(page: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", page, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


# --- the failure log itself: a clock the test moves -------------------------------


def test_the_window_slides_one_failure_at_a_time(clock: FakeClock) -> None:
    log = FailureLog(failures=3, window=60, max_entries=10, clock=clock)
    for _ in range(3):
        log.failed("a")
        clock.advance(10)
    assert log.retry_after("a") == pytest.approx(30)
    clock.advance(30)
    assert log.retry_after("a") == 0  # the first failure aged out: one more try
    log.failed("a")
    assert log.retry_after("a") == pytest.approx(10)


def test_the_table_stays_bounded_when_keys_rotate(clock: FakeClock) -> None:
    log = FailureLog(failures=2, window=60, max_entries=100, clock=clock)
    for number in range(10_000):
        log.failed(f"key-{number}")
    assert len(log) == 100
    log.failed("key-9999")
    assert log.retry_after("key-9999") > 0  # the most recent are the ones kept


def test_ipv6_clients_count_by_their_64() -> None:
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert address_key("2001:db8:0:1::1") != address_key("2001:db8::1")
    assert address_key("::ffff:127.0.0.2") == address_key("127.0.0.2") == "127.0.0.2"


def test_the_defaults_and_bad_settings() -> None:
    state = {"type": "sqlite", "path": "state.db"}
    throttle = parse_config({"state": state}).auth.throttle
    assert (throttle.failures, throttle.window, throttle.max_entries) == (10, 600.0, 10_000)
    with pytest.raises(ConfigError, match="auth.throttle.window"):
        parse_config({"state": state, "auth": {"throttle": {"window": 0}}})
