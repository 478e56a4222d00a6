"""A real davgate on an ephemeral port: federation, atomic PUT, shutdown, shared state."""

from __future__ import annotations

import os
import signal
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.helpers import USERS, Server, ServerLauncher, basic, wait_until

AUTH = ("alice", USERS["alice"])
TEMP_PREFIX = ".davgate-upload-"


@pytest.fixture
def config(tmp_path: Path, root: Path, htpasswd_file: Path) -> dict:
    (tmp_path / "archive").mkdir()
    return {
        "auth": {"htpasswd": htpasswd_file},
        "mounts": {
            "/data": {"type": "local", "root": root},
            "/archive": {"type": "local", "root": tmp_path / "archive"},
        },
        "state": {"type": "sqlite", "path": tmp_path / "state.db"},
        "server": {"shutdown_timeout": 10},
    }


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def start_partial_put(server: Server, path: str, total: int, sent: int) -> socket.socket:
    """Open a PUT of ``total`` bytes and send only ``sent`` of them."""
    address = urlsplit(server.url)
    sock = socket.create_connection((address.hostname, address.port))
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Authorization: {basic('alice')}\r\nContent-Length: {total}\r\n\r\n"
    )
    sock.sendall(head.encode() + b"n" * sent)
    return sock


def test_propfind_root_lists_the_mounts(serve: ServerLauncher, config: dict) -> None:
    server = serve(config)
    response = requests.request("PROPFIND", server.url + "/", auth=AUTH, headers={"Depth": "1"}, timeout=10)
    assert response.status_code == 207
    assert "<D:href>/data/</D:href>" in response.text
    assert "<D:href>/archive/</D:href>" in response.text


def test_unauthenticated_gets_401_with_basic_challenge(serve: ServerLauncher, config: dict) -> None:
    server = serve(config)
    response = requests.request("PROPFIND", server.url + "/", headers={"Depth": "0"}, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="davgate", Bearer realm="davgate"'
    wrong = requests.get(server.url + "/data/", auth=("alice", "not-her-password"), timeout=10)
    assert wrong.status_code == 401
    assert "not-her-password" not in server.log_text()
    assert USERS["alice"] not in server.log_text()


def test_put_dropped_mid_body_keeps_the_old_content(serve: ServerLauncher, config: dict, root: Path) -> None:
    server = serve(config)
    assert requests.put(server.url + "/data/f.bin", data=b"old", auth=AUTH, timeout=10).status_code == 201
    sock = start_partial_put(server, "/data/f.bin", total=10_000_000, sent=1_000_000)
    wait_until(lambda: temp_files(root), message="the upload never started")
    sock.close()
    wait_until(lambda: not temp_files(root), message="the aborted upload left its temp file")
    assert (root / "f.bin").read_bytes() == b"old"
    assert requests.get(server.url + "/data/f.bin", auth=AUTH, timeout=10).content == b"old"


def test_kill_9_during_put_then_restart_leaves_old_content_and_no_litter(
    serve: ServerLauncher, config: dict, root: Path
) -> None:
    server = serve(config)
    requests.put(server.url + "/data/f.bin", data=b"old", auth=AUTH, timeout=10)
    sock = start_partial_put(server, "/data/f.bin", total=10_000_000, sent=1_000_000)
    wait_until(lambda: temp_files(root), message="the upload never started")
    server.kill()
    sock.close()
    assert (root / "f.bin").read_bytes() == b"old"
    assert temp_files(root), "the killed upload should have left its temp file for recovery"
    serve.servers.remove(server)
    restarted = serve(config)
    assert not temp_files(root)
    assert requests.get(restarted.url + "/data/f.bin", auth=AUTH, timeout=10).content == b"old"


def test_sigterm_lets_an_in_flight_upload_finish(serve: ServerLauncher, config: dict, root: Path) -> None:
    server = serve(config)
    sock = start_partial_put(server, "/data/slow.bin", total=2_000_000, sent=1_000_000)
    wait_until(lambda: temp_files(root), message="the upload never started")
    server.process.send_signal(signal.SIGTERM)
    sock.sendall(b"n" * 1_000_000)
    reply = sock.makefile("rb").readline()
    sock.close()
    assert reply.startswith(b"HTTP/1.1 201"), reply
    assert server.process.wait(timeout=20) == 0
    assert (root / "slow.bin").stat().st_size == 2_000_000


def test_two_processes_on_one_state_store_share_locks_and_properties(serve: ServerLauncher, config: dict) -> None:
    first, second = serve(config), serve(config)
    requests.put(first.url + "/data/shared.txt", data=b"v1", auth=AUTH, timeout=10)
    lock_body = (
        '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
        "<D:locktype><D:write/></D:locktype><D:owner>test</D:owner></D:lockinfo>"
    )
    locked = requests.request("LOCK", first.url + "/data/shared.txt", data=lock_body, auth=AUTH, timeout=10)
    assert locked.status_code == 200
    token = locked.headers["Lock-Token"]
    assert requests.put(second.url + "/data/shared.txt", data=b"v2", auth=AUTH, timeout=10).status_code == 423
    relock = requests.request("LOCK", second.url + "/data/shared.txt", data=lock_body, auth=AUTH, timeout=10)
    assert relock.status_code == 423
    with_token = requests.put(
        second.url + "/data/shared.txt", data=b"v2", auth=AUTH, headers={"If": f"({token})"}, timeout=10
    )
    assert with_token.status_code == 204
    unlock = requests.request(
        "UNLOCK", second.url + "/data/shared.txt", auth=AUTH, headers={"Lock-Token": token}, timeout=10
    )
    assert unlock.status_code == 204
    assert requests.put(first.url + "/data/shared.txt", data=b"v3", auth=AUTH, timeout=10).status_code == 204


def test_multiple_workers_serve_concurrent_requests(serve: ServerLauncher, config: dict) -> None:
    server = serve(config, workers=2)
    errors: list[str] = []

    def worker(n: int) -> None:
        for i in range(10):
            body = os.urandom(1000)
            url = f"{server.url}/data/w{n}-{i}.bin"
            if requests.put(url, data=body, auth=AUTH, timeout=10).status_code != 201:
                errors.append(f"PUT {url}")
            if requests.get(url, auth=AUTH, timeout=10).content != body:
                errors.append(f"GET {url}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


@pytest.mark.parametrize(
    "raw_path",
    [
        "/data/../../../etc/passwd",
        "/data/%2e%2e/%2e%2e/etc/passwd",
        "/data/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/data/..%2f..%2fetc/passwd",
        "/data/..%5c..%5cetc%5cpasswd",
        "/data/escape/passwd",
        "/data/%00",
    ],
)
def test_paths_never_escape_the_mount(serve: ServerLauncher, config: dict, root: Path, raw_path: str) -> None:
    (root / "escape").symlink_to("/etc")
    server = serve(config)
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        request = f"GET {raw_path} HTTP/1.1\r\nHost: {address.netloc}\r\nAuthorization: {basic('alice')}\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode())
        reply = b"".join(iter(lambda: sock.recv(65536), b""))
    status = int(reply.split(b" ", 2)[1])
    assert 400 <= status < 500, reply[:300]
    assert b"root:" not in reply


UPLOADS = {
    "page.html": b"<html><head><title>static</title></head><body><script>document.title='ran'</script></body></html>",
    "image.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "plain.txt": b"<script>alert(1)</script>",
}


def test_files_from_mounts_never_run_as_davgate(serve: ServerLauncher, config: dict) -> None:
    server = serve(config)
    for name, content in UPLOADS.items():
        assert requests.put(f"{server.url}/data/{name}", data=content, auth=AUTH, timeout=10).status_code == 201
        for method in ("GET", "HEAD"):
            response = requests.request(method, f"{server.url}/data/{name}", auth=AUTH, timeout=10)
            assert response.status_code == 200
            assert response.headers["Content-Security-Policy"] == "sandbox", (name, method)
            assert response.headers["X-Content-Type-Options"] == "nosniff", (name, method)
        ranged = requests.get(f"{server.url}/data/{name}", auth=AUTH, headers={"Range": "bytes=0-3"}, timeout=10)
        assert ranged.status_code == 206 and ranged.headers["Content-Security-Policy"] == "sandbox"
    listing = requests.get(f"{server.url}/data/", auth=AUTH, timeout=10)  # davgate's own page
    assert listing.status_code == 200 and "page.html" in listing.text
    assert "sandbox" not in listing.headers.get("Content-Security-Policy", "")
