"""Python WebDAV clients: webdav4 (httpx, with its fsspec file system) and webdavclient3 (requests)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from webdav3.client import Client as Client3
from webdav4.client import Client as Client4
from webdav4.fsspec import WebdavFileSystem

from tests.clients.gateway import PASSWORD, USER, Gateway

MiB = 1024 * 1024


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "src.bin"
    path.write_bytes(os.urandom(3 * MiB + 5))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("mount", ["/data", "/s3"])
def test_webdav4(gateway: Gateway, source: Path, tmp_path: Path, mount: str) -> None:
    client = Client4(gateway.url + mount, auth=(USER, PASSWORD), timeout=60)
    client.mkdir("w4")
    client.upload_file(source, "w4/a.bin")
    assert [entry["name"] for entry in client.ls("w4", detail=True)] == ["w4/a.bin"]
    client.download_file("w4/a.bin", tmp_path / "got.bin")
    assert sha256(tmp_path / "got.bin") == sha256(source)
    client.copy("w4/a.bin", "w4/b.bin")
    client.move("w4/b.bin", "w4/c.bin")
    assert sorted(client.ls("w4", detail=False)) == ["w4/a.bin", "w4/c.bin"]
    assert client.content_length("w4/a.bin") == source.stat().st_size
    assert client.etag("w4/a.bin")

    fs = WebdavFileSystem(gateway.url + mount, auth=(USER, PASSWORD), timeout=60)
    with fs.open("w4/fs.txt", "wb") as file:
        file.write(b"via fsspec")
    assert fs.cat_file("w4/fs.txt") == b"via fsspec"
    with fs.open("w4/a.bin", "rb") as file:  # ranged reads
        file.seek(MiB)
        assert file.read(10) == source.read_bytes()[MiB : MiB + 10]
    assert fs.info("w4/a.bin")["size"] == source.stat().st_size
    fs.rm("w4", recursive=True)
    assert not client.exists("w4")


@pytest.mark.parametrize("mount", ["/data", "/s3"])
def test_webdavclient3(gateway: Gateway, source: Path, tmp_path: Path, mount: str) -> None:
    client = Client3(
        {
            "webdav_hostname": gateway.url + mount,
            "webdav_login": USER,
            "webdav_password": PASSWORD,
            "webdav_timeout": 60,
        }
    )
    client.mkdir("w3")
    client.upload_sync(remote_path="w3/a.bin", local_path=str(source))
    assert "a.bin" in client.list("w3")
    client.download_sync(remote_path="w3/a.bin", local_path=str(tmp_path / "got.bin"))
    assert sha256(tmp_path / "got.bin") == sha256(source)
    assert int(client.info("w3/a.bin")["size"]) == source.stat().st_size
    client.copy("w3/a.bin", "w3/b.bin")
    client.move("w3/b.bin", "w3/c.bin")
    # set_property sends PROPPATCH with "Depth: 1", which stock WsgiDAV refuses with 400
    client.set_property("w3/a.bin", {"namespace": "urn:test", "name": "color", "value": "red"})
    assert client.get_property("w3/a.bin", {"namespace": "urn:test", "name": "color"}) == "red"
    assert sorted(name for name in client.list("w3") if name != "w3/") == ["a.bin", "c.bin"]
    client.clean("w3")
    assert not client.check("w3")
