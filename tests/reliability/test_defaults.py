"""Defaults reviewed for safety: bind address, credentials over plain HTTP, XSS in listings, CORS, secrets in logs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
import yaml

from davgate.config import ConfigError, parse_config
from davgate.config.schema import ServerConfig
from tests.helpers import USERS, Server, ServerLauncher, write_htpasswd
from tests.reliability import rawhttp
from tests.rgw import Rgw

REPO = Path(__file__).resolve().parents[2]
AUTH = ("alice", USERS["alice"])
MARKUP_NAMES = [
    "<script>alert(1)<\\script>.txt",
    '"><img src=x onerror=alert(1)>',
    "'onmouseover='alert(1)",
    "javascript:alert(1)",
    "<b onmouseover=alert(2)>x",
]


def test_the_default_bind_address_is_loopback() -> None:
    assert ServerConfig().host == "127.0.0.1"
    shipped = yaml.safe_load((REPO / "conf" / "davgate.yaml").read_text())
    assert shipped["server"]["host"] == "127.0.0.1"
    assert shipped["auth"]["anonymous"] == "none"


def test_serving_passwords_over_plain_http_beyond_loopback_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    config = {
        "auth": {"htpasswd": str(write_htpasswd(tmp_path / "htpasswd"))},
        "mounts": {"/data": {"type": "local", "root": str(tmp_path / "data")}},
        "state": {"type": "sqlite", "path": str(tmp_path / "state.db")},
    }
    path = tmp_path / "davgate.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "davgate", "serve", "--config", str(path), "--host", "0.0.0.0", "--port", "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "configuration error: server.host" in done.stderr and "allow_insecure_basic" in done.stderr
    assert "listening" not in done.stderr


@pytest.fixture(scope="module")
def listing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("defaults")
    data = base / "data"
    data.mkdir()
    for name in MARKUP_NAMES:
        (data / name).write_text("x") if "<b" not in name else (data / name).mkdir()
    launcher = ServerLauncher(base / "servers")
    config = {
        "auth": {"htpasswd": write_htpasswd(base / "htpasswd")},
        "mounts": {"/data": {"type": "local", "root": data}},
        "state": {"type": "sqlite", "path": base / "state.db"},
    }
    yield launcher(config)
    launcher.stop_all()


RAW_MARKUP = ["<script>alert", "<img", "<b onmouseover", 'href="javascript:', "href='javascript:"]  # as live markup


def test_markup_in_file_names_is_escaped_in_the_html_listing(listing_server: Server) -> None:
    page = requests.get(listing_server.url + "/data/", auth=AUTH, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "&lt;script&gt;alert(1)" in page.text  # the names are there, as text
    for markup in RAW_MARKUP:
        assert markup not in page.text, markup
    folder = requests.get(
        listing_server.url + "/data/" + quote("<b onmouseover=alert(2)>x") + "/", auth=AUTH, timeout=10
    )
    assert folder.status_code == 200 and "&lt;b onmouseover" in folder.text
    for markup in RAW_MARKUP:
        assert markup not in folder.text, markup


def test_markup_in_a_path_is_not_reflected_as_html(listing_server: Server) -> None:
    for path in (
        "/data/%3Cscript%3Ealert(1)%3C%5Cscript%3E",
        "/data/%3Cimg%20src=x%20onerror=alert(1)%3E",
        "/nowhere/%3Cscript%3E",
    ):
        reply = rawhttp.send(listing_server.url, "GET", path)
        assert 400 <= reply.status < 500
        if reply.headers.get("content-type", "").startswith("text/html"):
            for markup in RAW_MARKUP:
                assert markup not in reply.text, (path, markup)


def test_cors_is_off_by_default(listing_server: Server) -> None:
    origin = {"Origin": "http://evil.example"}
    preflight = rawhttp.send(
        listing_server.url, "OPTIONS", "/data/", {**origin, "Access-Control-Request-Method": "PUT"}, auth=False
    )
    got = requests.get(listing_server.url + "/data/", auth=AUTH, headers=origin, timeout=10)
    for headers in (preflight.headers, {k.lower(): v for k, v in got.headers.items()}):
        assert not [name for name in headers if name.startswith("access-control-")], headers


def test_no_secret_reaches_the_log_even_at_debug(tmp_path: Path, rgw: Rgw) -> None:
    (tmp_path / "data").mkdir()
    s3 = rgw.mount_config(timeout=5.0)
    config = {
        "auth": {"htpasswd": write_htpasswd(tmp_path / "htpasswd")},
        "mounts": {"/data": {"type": "local", "root": tmp_path / "data"}, "/s3": s3},
        "state": {"type": "sqlite", "path": tmp_path / "state.db"},
    }
    launcher = ServerLauncher(tmp_path / "servers")
    server = launcher(config, extra_args=["--log-level", "DEBUG"])
    try:
        wrong = "hunter2-not-the-password"
        assert requests.get(server.url + "/data/", auth=AUTH, timeout=10).status_code == 200
        assert requests.get(server.url + "/data/", auth=("alice", wrong), timeout=10).status_code == 401
        assert requests.get(server.url + "/data/?password=topsecret-in-query", auth=AUTH, timeout=10).status_code == 200
        assert (
            requests.get(
                server.url + "/data/", headers={"Authorization": "Bearer eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl"}
            ).status_code
            == 401
        )
        assert requests.put(server.url + "/s3/x.txt", data=b"x", auth=AUTH, timeout=30).status_code == 201
        assert (
            requests.put(server.url + "/data/x.txt", data=b"x", auth=AUTH, headers={"If": "garbage"}).status_code == 400
        )
    finally:
        launcher.stop_all()
    log = server.log_text()
    secrets = [USERS["alice"], wrong, "topsecret-in-query", "c2lnbmF0dXJl", s3["secret_key"],
               rawhttp.basic().split()[1], rawhttp.basic("alice", wrong).split()[1]]  # fmt: skip
    assert "DEBUG" in log  # the level was on
    for secret in secrets:
        assert secret not in log, f"a secret is in the log: {secret[:6]}..."


@pytest.mark.parametrize("value", [123456789, ["s3cr3t"], {"k": "s3cr3t"}])
def test_a_secret_of_the_wrong_type_is_not_echoed_by_config_errors(value: object) -> None:
    s3 = {"type": "s3", "endpoint": "http://127.0.0.1:1", "bucket": "b", "access_key": "AK", "secret_key": value}
    with pytest.raises(ConfigError) as caught:
        parse_config({"state": {"type": "sqlite", "path": "/tmp/x.db"}, "mounts": {"/s3": s3}}, "f.yaml")
    assert caught.value.key == "mounts./s3.secret_key" and "not shown" in str(caught.value), caught.value
    assert "123456789" not in str(caught.value) and "s3cr3t" not in str(caught.value)
