"""Operations on a real server: metrics over worker processes, JSON logs, TLS, status lines, health."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests import helpers
from tests.helpers import USERS, Server, group_members, wait_until
from tests.ops.test_metrics import value
from tests.ops.tls_files import write_self_signed

AUTH = ("alice", USERS["alice"])


@pytest.fixture
def config(tmp_path: Path, htpasswd_file: Path) -> dict:
    (tmp_path / "data").mkdir()
    return {
        "mounts": {"/data": {"type": "local", "root": tmp_path / "data"}},
        "auth": {"htpasswd": htpasswd_file},
        "state": {"type": "sqlite", "path": tmp_path / "state" / "state.db"},
    }


def scrape(server: Server) -> str:
    response = requests.get(f"{server.url}/metrics", auth=AUTH, timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def workers_of(server: Server) -> list[int]:
    return [pid for pid in group_members(server.process.pid) if pid != server.process.pid]


def put_files(server: Server, names: range) -> None:
    def put(number: int) -> None:
        with requests.Session() as session:  # a connection each, so both workers take some
            response = session.put(f"{server.url}/data/f{number}.txt", data=b"x" * 100, auth=AUTH, timeout=10)
            assert response.status_code == 201, response.text

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, names))


def stalled_upload(server: Server) -> socket.socket:
    """A PUT whose body never finishes: a request in flight in some worker."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    conn = socket.create_connection((host, int(port)), timeout=10)
    auth = requests.auth._basic_auth_str(*AUTH)
    head = f"PUT /data/stalled.txt HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 1000\r\n\r\n"
    conn.sendall(head.encode() + b"abc")
    return conn


def test_metrics_are_totals_over_workers_and_survive_their_deaths(serve, config: dict, tmp_path: Path) -> None:
    server = serve(config, workers=2)
    folder = tmp_path / "state" / "metrics" / str(server.process.pid)
    sent = 0
    while len(list(folder.glob("counter_*.db"))) < 2 and sent < 400:  # until both workers have served
        put_files(server, range(sent, sent + 20))
        sent += 20
    assert len(list(folder.glob("counter_*.db"))) == 2, "one worker served every request"
    wait_until(lambda: value(scrape(server), "davgate_requests_total", method="PUT", status="201") == sent, 10)
    text = scrape(server)
    assert value(text, "davgate_received_bytes_total", method="PUT") == 100 * sent

    stalled = [stalled_upload(server) for _ in range(4)]
    wait_until(lambda: value(scrape(server), "davgate_requests_in_flight") == 5, 10)  # 4 stalled + the scrape
    before = workers_of(server)
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: len(workers_of(server)) == 2 and not set(workers_of(server)) & set(before), 20)
    for conn in stalled:
        conn.close()
    after = scrape(server)
    assert value(after, "davgate_requests_total", method="PUT", status="201") == sent  # the dead workers' counts stay
    assert value(after, "davgate_requests_in_flight") == 1  # their requests in flight do not


def test_json_logs_name_each_request(serve, config: dict) -> None:
    config["server"] = {"log_format": "json"}
    server = serve(config)
    response = requests.get(f"{server.url}/data/", auth=AUTH, headers={"X-Request-ID": "trace-7"}, timeout=10)
    assert response.headers["X-Request-ID"] == "trace-7"
    made = requests.get(f"{server.url}/data/nothing", auth=AUTH, timeout=10).headers["X-Request-ID"]

    def access_lines() -> list[dict]:
        lines = [line for line in server.log_text().splitlines() if not line.startswith("davgate: listening on")]
        entries = [json.loads(line) for line in lines]  # every line is one JSON object
        return [e for e in entries if e["logger"] == "davgate.access"]

    entries = wait_until(lambda: len(access_lines()) >= 2 and access_lines(), 10)
    by_id = {entry["request_id"]: entry for entry in entries}
    assert by_id["trace-7"]["path"] == "/data/" and by_id["trace-7"]["user"] == "alice"
    assert by_id[made]["status"] == "404"


def test_log_format_flag_wins_over_the_config(serve, config: dict) -> None:
    config["server"] = {"log_format": "json"}
    server = serve(config, extra_args=["--log-format", "text"])
    requests.get(f"{server.url}/data/", auth=AUTH, headers={"X-Request-ID": "plain-1"}, timeout=10)
    line = re.compile(r" INFO davgate\.access \[plain-1\]: 127\.0\.0\.1 alice \"GET /data/\" 20\d ")
    wait_until(lambda: line.search(server.log_text()), 10)


def test_tls_from_certificate_and_key_files(
    serve, config: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(helpers, "LISTENING", re.compile(r"davgate: listening on (https://\S+)"))
    cert, key = write_self_signed(tmp_path)
    config["server"] = {"tls_cert": cert, "tls_key": key}
    server = serve(config, workers=2)
    assert server.url.startswith("https://127.0.0.1:")
    put = requests.put(f"{server.url}/data/secret.txt", data=b"over TLS", auth=AUTH, verify=cert, timeout=10)
    assert put.status_code == 201
    assert requests.get(f"{server.url}/data/secret.txt", auth=AUTH, verify=cert, timeout=10).content == b"over TLS"
    assert requests.get(f"{server.url}/healthz", verify=cert, timeout=10).json() == {"status": "ok"}
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{server.url}/healthz", timeout=10)  # not trusted without the certificate
    plain = server.url.replace("https://", "http://")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{plain}/healthz", timeout=5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_backend_outage_is_503_service_unavailable_counted_and_not_ready(serve, config: dict) -> None:
    config["mounts"]["/ceph"] = {
        "type": "s3",
        "endpoint": f"http://127.0.0.1:{free_port()}",
        "bucket": "gone",
        "access_key": "k",
        "secret_key": "s",
        "timeout": 1,
        "retries": 0,
    }  # fmt: skip (nothing listens there)
    server = serve(config)
    response = requests.get(f"{server.url}/ceph/a.txt", auth=AUTH, timeout=30)
    assert (response.status_code, response.reason) == (503, "Service Unavailable")
    ready = requests.get(f"{server.url}/readyz", timeout=30)
    assert ready.status_code == 503
    assert ready.json() == {"status": "not ready"}  # public: what is down is for the log
    assert "not ready: /ceph (storage backend unavailable)" in server.log_text()
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
    wait_until(lambda: value(scrape(server), "davgate_backend_errors_total", mount="/ceph", status="503") == 1, 10)


def test_readyz_of_a_healthy_server(serve, config: dict) -> None:
    server = serve(config)
    response = requests.get(f"{server.url}/readyz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


FORGED = '2026-12-06 05:00:00,000 INFO davgate.access: 127.0.0.9 admin "DELETE /data" 204 0 1.0ms'


def test_a_path_or_user_name_cannot_forge_a_text_log_line(serve, config: dict) -> None:
    server = serve(config)
    forged = quote("\x1b[2J\r\n" + FORGED, safe="/")  # clear the terminal, then a line of one's own
    path = f"/data/x{forged}"
    requests.get(server.url + path, timeout=10)  # unauthenticated, as an attacker would
    requests.get(server.url + "/data/", auth=("bob\r\n" + FORGED, "x"), timeout=10)
    escaped = ["/data/x\\x1b[2J\\r\\n" + FORGED, "user 'bob\\r\\n2026"]  # as written: backslash, n
    wait_until(
        lambda: all(e in server.log_text() for e in escaped), 10, message=lambda: helpers.tail(server.log_text())
    )
    assert not [line for line in server.log_text().splitlines() if line.startswith(FORGED[:20])]
    assert "\x1b" not in server.log_text() and "\r" not in server.log_text()
