"""davgate.sendfile: local files' GET bodies sent by the kernel, on a real cheroot server in this process."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from davgate.app import build_app
from davgate.config import parse_config
from davgate.server import PreboundServer, listen
from tests.helpers import USERS, write_htpasswd

MiB = 1024 * 1024
AUTH = ("alice", USERS["alice"])


class Served:
    def __init__(self, url: str, root: Path, sends: list[tuple[int, int]]) -> None:
        self.url, self.root, self.sends = url, root, sends


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every socket.sendfile call of the server: (offset, count)."""
    calls: list[tuple[int, int]] = []
    original = socket.socket.sendfile

    def recorded(self, file, offset=0, count=None):
        calls.append((offset, count))
        return original(self, file, offset, count)

    monkeypatch.setattr(socket.socket, "sendfile", recorded)
    return calls


@pytest.fixture
def served(tmp_path: Path, sends: list[tuple[int, int]]) -> Iterator[Served]:
    root = tmp_path / "data"
    root.mkdir()
    config = parse_config(
        {
            "auth": {"htpasswd": str(write_htpasswd(tmp_path / "htpasswd"))},
            "mounts": {"/data": {"type": "local", "root": str(root)}},
            "state": {"type": "sqlite", "path": str(tmp_path / "state.db")},
        },
        "test",
    )
    app = build_app(config)
    server = PreboundServer(listen("127.0.0.1", 0, 16), app, config)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    host, port = server.socket.getsockname()[:2]
    try:
        yield Served(f"http://{host}:{port}", root, sends)
    finally:
        server.stop()
        thread.join(10)
        app.close()


def test_a_get_body_is_sent_from_the_file(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    data = os.urandom(5 * MiB + 123)
    (served.root / "big.bin").write_bytes(data)
    with caplog.at_level(logging.INFO, logger="davgate.access"):
        answer = requests.get(f"{served.url}/data/big.bin", auth=AUTH, timeout=30)
    assert answer.status_code == 200 and answer.content == data
    assert served.sends == [(0, len(data))]
    logged = [record for record in caplog.records if getattr(record, "fields", {}).get("method") == "GET"]
    assert logged[-1].fields["bytes_out"] == len(data)  # counted although no WSGI chunk carried it


def test_a_range_is_sent_from_its_offset(served: Served) -> None:
    data = os.urandom(MiB)
    (served.root / "part.bin").write_bytes(data)
    answer = requests.get(f"{served.url}/data/part.bin", auth=AUTH, headers={"Range": "bytes=1000-2999"}, timeout=30)
    assert answer.status_code == 206 and answer.content == data[1000:3000]
    assert served.sends == [(1000, 2000)]


def test_head_empty_files_and_other_methods_send_nothing(served: Served) -> None:
    (served.root / "a.txt").write_bytes(b"abc")
    (served.root / "empty").write_bytes(b"")
    assert requests.head(f"{served.url}/data/a.txt", auth=AUTH, timeout=30).headers["Content-Length"] == "3"
    assert requests.get(f"{served.url}/data/empty", auth=AUTH, timeout=30).content == b""
    copy = requests.request(
        "COPY", f"{served.url}/data/a.txt", auth=AUTH, headers={"Destination": "/data/b.txt"}, timeout=30
    )
    assert copy.status_code == 201 and (served.root / "b.txt").read_bytes() == b"abc"
    assert served.sends == []


def test_a_digest_is_read_in_full_in_the_same_get(served: Served) -> None:
    data = os.urandom(3 * MiB)
    (served.root / "d.bin").write_bytes(data)
    answer = requests.get(f"{served.url}/data/d.bin", auth=AUTH, headers={"Want-Digest": "sha-256"}, timeout=30)
    assert answer.content == data
    assert answer.headers["Digest"] == "sha-256=" + base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert served.sends == [(0, len(data))]


def test_a_file_that_shrinks_ends_the_connection(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """Content-Length was promised: fewer bytes must close the connection, not leave the client waiting."""
    path = served.root / "shrinking.bin"
    path.write_bytes(os.urandom(2 * MiB))
    original = socket.socket.sendfile

    def truncated_first(self, file, offset=0, count=None):
        os.truncate(path, MiB)
        return original(self, file, offset, count)

    monkeypatch.setattr(socket.socket, "sendfile", truncated_first)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(f"{served.url}/data/shrinking.bin", auth=AUTH, timeout=30)
    assert requests.get(f"{served.url}/data/shrinking.bin", auth=AUTH, timeout=30).content == path.read_bytes()


def test_one_keep_alive_connection_carries_sent_files_and_other_answers(served: Served) -> None:
    data = os.urandom(2 * MiB)
    (served.root / "k.bin").write_bytes(data)
    with requests.Session() as session:
        session.auth = AUTH
        for _ in range(3):
            assert session.get(f"{served.url}/data/k.bin", timeout=30).content == data
            assert (
                session.get(f"{served.url}/data/k.bin", headers={"Range": "bytes=-10"}, timeout=30).content
                == data[-10:]
            )
            assert (
                session.request("PROPFIND", f"{served.url}/data/", headers={"Depth": "1"}, timeout=30).status_code
                == 207
            )
            assert session.put(f"{served.url}/data/small.txt", data=b"x", timeout=30).status_code in (201, 204)
    assert len(served.sends) == 6
