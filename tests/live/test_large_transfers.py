"""Large bodies through a real davgate: streamed both ways in bounded memory, Range intact, pipelining kept."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import pytest

from tests.helpers import ServerLauncher, basic, group_members

MiB = 1024 * 1024
BODY_MIB = 256
RSS_GROWTH_LIMIT = 64 * MiB  # far below the body: nothing holds it whole
PAGE = os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def server(serve: ServerLauncher, tmp_path: Path, root: Path, htpasswd_file: Path):
    config = {
        "auth": {"htpasswd": htpasswd_file},
        "mounts": {"/data": {"type": "local", "root": root}},
        "state": {"type": "sqlite", "path": tmp_path / "state.db"},
    }
    return serve(config)


def connect(url: str) -> http.client.HTTPConnection:
    address = urlsplit(url)
    return http.client.HTTPConnection(address.hostname, address.port, timeout=60)


def group_rss(pgid: int) -> int:
    total = 0
    for pid in group_members(pgid):
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


class PeakRss:
    """The largest RSS of a process group while the ``with`` block runs."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self.peak = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.peak = max(self.peak, group_rss(self.pgid))

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def blocks(seed: bytes, count: int) -> Iterator[bytes]:
    """``count`` distinct 1 MiB blocks, made on the fly."""
    for number in range(count):
        yield hashlib.shake_256(seed + number.to_bytes(4, "big")).digest(MiB)


def test_a_large_put_and_get_stream_in_bounded_memory(server, root: Path) -> None:
    expected = hashlib.sha256()
    headers = {"Authorization": basic("alice"), "Content-Length": str(BODY_MIB * MiB)}
    conn = connect(server.url)
    conn.request("GET", "/data/", headers={"Authorization": headers["Authorization"]})  # warm up: auth, imports
    conn.getresponse().read()
    before = group_rss(server.process.pid)

    def body() -> Iterator[bytes]:
        for block in blocks(b"put", BODY_MIB):
            expected.update(block)
            yield block

    with PeakRss(server.process.pid) as put_rss:
        conn.request("PUT", "/data/big.bin", body=body(), headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 201
    assert hashlib.sha256((root / "big.bin").read_bytes()).digest() == expected.digest()

    received = hashlib.sha256()
    with PeakRss(server.process.pid) as get_rss:
        conn.request("GET", "/data/big.bin", headers={"Authorization": headers["Authorization"]})
        response = conn.getresponse()
        assert response.status == 200
        while chunk := response.read(MiB):
            received.update(chunk)
    assert received.digest() == expected.digest()
    for name, peak in (("PUT", put_rss.peak), ("GET", get_rss.peak)):
        assert peak - before < RSS_GROWTH_LIMIT, f"{name}: RSS grew by {(peak - before) / MiB:.0f} MiB"


def test_range_requests_still_answer_the_asked_bytes(server, root: Path) -> None:
    data = b"".join(blocks(b"range", 3))
    (root / "three.bin").write_bytes(data)
    conn = connect(server.url)
    for first, last in ((0, 0), (1000, 1999), (MiB - 10, 2 * MiB + 9), (3 * MiB - 5, 3 * MiB - 1)):
        headers = {"Authorization": basic("alice"), "Range": f"bytes={first}-{last}"}
        conn.request("GET", "/data/three.bin", headers=headers)
        response = conn.getresponse()
        assert response.status == 206
        assert response.getheader("Content-Range") == f"bytes {first}-{last}/{len(data)}"
        assert response.read() == data[first : last + 1]


def test_pipelined_requests_are_all_answered(server, root: Path) -> None:
    """Requests that arrive in one packet are served from the reader's buffer, none left waiting."""
    (root / "a.txt").write_bytes(b"first")
    (root / "b.txt").write_bytes(b"second")
    address = urlsplit(server.url)
    request = "GET /data/{} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\r\n"
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(
            b"".join(request.format(name, address.netloc, basic("alice")).encode() for name in ("a.txt", "b.txt"))
        )
        received = b""
        while received.count(b"HTTP/1.1 200 ") < 2 or not received.endswith(b"second"):
            chunk = sock.recv(65536)  # a request left in the server's buffer would time this out
            assert chunk, f"connection closed after {received!r}"
            received += chunk
    first, second = received.split(b"HTTP/1.1 200 ")[1:]
    assert first.endswith(b"\r\n\r\nfirst") and second.endswith(b"\r\n\r\nsecond")
