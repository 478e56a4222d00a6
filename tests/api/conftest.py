"""In-process API tests: a davgate app over local mounts, called without sockets."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from davgate.app import Application, build_app
from davgate.auth.tokens import generate_key, mint, public_pem, users_entry
from davgate.config import parse_config
from tests.helpers import USERS, hash_password, write_htpasswd

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
FAST = {"rescan_interval": 0.3, "rescan_rate": 50, "poll_interval": 0.1, "webhook_backoff": 0.05, "copy_lease": 2.0}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Api:
    """Calls an app: the API with a token, WebDAV with any Authorization."""

    def __init__(self, app: Application) -> None:
        self.app = app

    def request(self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Reply:
        environ: dict = {"REQUEST_METHOD": method, "SCRIPT_NAME": "", "wsgi.input": io.BytesIO(body)}
        path, _, query = path.partition("?")
        environ.update(PATH_INFO=path, QUERY_STRING=query)
        setup_testing_defaults(environ)
        environ["HTTP_HOST"] = "127.0.0.1:8080"
        environ["CONTENT_LENGTH"] = str(len(body))
        for name, value in (headers or {}).items():
            key = name.upper().replace("-", "_")
            environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
        captured: dict = {}

        def start_response(status: str, response_headers: list, exc_info: Any = None) -> None:
            captured["status"] = int(status.split()[0])
            captured["headers"] = {name.lower(): value for name, value in response_headers}

        chunks = self.app(environ, start_response)
        try:
            data = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        return Reply(captured["status"], captured["headers"], data)

    def call(
        self, method: str, path: str, payload: Any = None, token: str | None = ADMIN_TOKEN, raw: bytes | None = None
    ) -> Reply:
        headers = {"x-access-token": token} if token else {}
        body = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        return self.request(method, f"/api/v1{path}", body, headers)

    def register(self, email: str, name: str = "A User") -> str:
        reply = self.call("PUT", "/user", {"email": email, "name": name})
        assert reply.status in (200, 201), reply.body
        return reply.json["token"]

    def dav(self, method: str, path: str, auth: str, body: bytes = b"", **headers: str) -> Reply:
        return self.request(method, path, body, {"Authorization": auth, **headers})


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bearer(token: str) -> str:
    return f"Bearer {token}"


@dataclass
class JwtUser:
    email: str
    key: Any

    def entry(self) -> dict[str, Any]:
        return users_entry(self.email, "EE", public_pem(self.key))

    def token(self, **claims: Any) -> str:
        return mint(self.key, self.email, ttl=600, **claims)


@pytest.fixture(scope="session")
def jwt_user() -> JwtUser:
    return JwtUser("ee@example.org", generate_key("ed25519"))


def infrastructure(name: str = "test-001", *, jwt: JwtUser | None = None, extra: list | None = None,
                   query: bool = True) -> dict[str, Any]:  # fmt: skip
    logic: list[dict[str, Any]] = [{"name": "myDav", "type": "webdav", "user": "user", "pass": "s3cret-pass"}]
    if jwt is not None:
        logic.append({"name": "myDavWithTokens", "type": "webdav-jwt", "users": jwt.entry()})
    if query:
        logic.append({"name": "mydataStaging", "type": "query"})
    adaptors = [
        {"name": "mynativestorage", "type": "native", "expose": "webdav", "volume": {"name": "pv-001", "size": "1Gi"}},
        {"name": "other", "type": "native"},
        *(extra or []),
    ]
    return {"name": name, "namespace": "user-001", "location": "uva",
            "storageAdaptorContainers": adaptors, "logicContainers": logic}  # fmt: skip


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """bcrypt with 4 rounds for webdav passwords (as tests.helpers does for htpasswd): fast, still real."""
    monkeypatch.setattr("davgate.api.infrastructures.hash_password", hash_password)


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """``make_api(outbound_allow=..., **api_options)``: an app with /data (local), htpasswd users, SQLite state in tmp_path.

    ``outbound_allow`` is ``server.outbound_allow``: the tests' own servers on
    loopback (sshd, RGW, webhook listeners), each by its port, for the tests
    that point an infrastructure or a webhook at them.
    """
    apps: list[Application] = []
    htpasswd = write_htpasswd(tmp_path / "htpasswd")
    (tmp_path / "data").mkdir(exist_ok=True)

    def make(outbound_allow: Sequence[str] = (), **options: Any) -> Api:
        data = {
            "server": {"outbound_allow": list(outbound_allow)},
            "auth": {"htpasswd": str(htpasswd)},
            "mounts": {"/data": {"type": "local", "root": str(tmp_path / "data")}},
            "state": {"type": "sqlite", "path": str(tmp_path / "state" / "state.db")},
            "api": {"admin_token": ADMIN_TOKEN, **FAST, **options},
        }
        (tmp_path / "state").mkdir(exist_ok=True)
        app = build_app(parse_config(data, "test"))
        apps.append(app)
        return Api(app)

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()


ALICE = basic("alice", USERS["alice"])


def volume_of(api: Api, tmp_path: Path, infrastructure: str, adaptor: str) -> Path:
    """Where ``make_api``'s server keeps a native volume: beside the state's folder, by the infrastructure's id."""
    record = api.app.store.infra_get(infrastructure)
    assert record is not None
    return tmp_path / "state-volumes" / record.id / adaptor
