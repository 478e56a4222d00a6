"""The granian engine: the same server, streaming bodies through a Rust HTTP front end."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import requests

from tests.helpers import USERS, ServerLauncher, group_members

AUTH = ("alice", USERS["alice"])
MiB = 1024 * 1024
SIZE = 256 * MiB


def chunks(seed: bytes, count: int) -> Iterator[bytes]:
    block = hashlib.sha256(seed).digest() * (MiB // 32)
    for i in range(count):
        yield block[i % 32 :] + block[: i % 32]


def rss_mib(pid: int) -> float:
    """Resident memory of a process group, summed, in MiB."""
    total = 0
    for member in group_members(pid):
        try:
            fields = Path(f"/proc/{member}/statm").read_text().split()
        except OSError:
            continue
        total += int(fields[1]) * os.sysconf("SC_PAGE_SIZE")
    return total / MiB


def test_large_put_and_get_stream_through_granian(serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path) -> None:
    (tmp_path / "data").mkdir()
    server = serve(
        {
            "auth": {"htpasswd": htpasswd_file},
            "mounts": {"/data": {"type": "local", "root": tmp_path / "data", "fsync": False}},
            "state": {"type": "sqlite", "path": tmp_path / "state.db"},
            "server": {"engine": "granian"},
        },
        workers=2,
    )
    for _ in range(4):  # both workers import what a request needs before the baseline
        requests.put(f"{server.url}/data/warm.bin", data=b"w" * MiB, auth=AUTH, timeout=30)
        requests.get(f"{server.url}/data/warm.bin", auth=AUTH, timeout=30)
    baseline = rss_mib(server.process.pid)
    source = tmp_path / "source.bin"
    expected = hashlib.sha256()
    with source.open("wb") as out:
        for chunk in chunks(b"big", SIZE // MiB):
            expected.update(chunk)
            out.write(chunk)
    with source.open("rb") as body:
        put = requests.put(f"{server.url}/data/big.bin", data=body, auth=AUTH, timeout=120)
    assert put.status_code == 201, put.text
    got = hashlib.sha256()
    with requests.get(f"{server.url}/data/big.bin", auth=AUTH, stream=True, timeout=120) as response:
        assert response.status_code == 200
        for chunk in response.iter_content(MiB):
            got.update(chunk)
    assert got.hexdigest() == expected.hexdigest()
    growth = rss_mib(server.process.pid) - baseline
    assert growth < SIZE / MiB / 4, f"RSS grew {growth:.0f} MiB for a {SIZE // MiB} MiB body: it must stream"
