"""Checksums (RFC 3230) on a real davgate with two worker processes, on every mount type.

Local, sftp, s3 and dispel: ``Want-Digest`` answered on GET and HEAD;
``Digest`` and ``Content-MD5`` on PUT verified before commit (on s3 a body
larger than a multipart part, so a refused upload is an aborted multipart
upload); digests kept in the shared state store by path and ETag.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import zlib
from collections.abc import Iterator

import pytest
import requests

from tests.clients.gateway import DISPEL_WINDOW, WRITABLE, Gateway, start_gateway
from tests.rgw import Rgw
from tests.sshd import Sshd, local_user, sshd

__all__ = ["local_user", "sshd"]  # session fixtures, shared through this import

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, sshd: Sshd, rgw: Rgw) -> Iterator[Gateway]:
    yield from start_gateway(tmp_path_factory.mktemp("digest-live"), sshd, rgw)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def expected(data: bytes) -> dict[str, str]:
    return {
        "sha-256": b64(hashlib.sha256(data).digest()),
        "md5": b64(hashlib.md5(data).digest()),
        "adler32": f"{zlib.adler32(data):08x}",
        "sha-512": b64(hashlib.sha512(data).digest()),
    }


def digests(response: requests.Response) -> dict[str, str]:
    return dict(item.split("=", 1) for item in response.headers.get("Digest", "").split(",") if item)


@pytest.mark.parametrize("mount", WRITABLE)
def test_digests_on_writable_mounts(gateway: Gateway, mount: str) -> None:
    data = os.urandom(9 * MiB + 7)  # more than one s3 part
    want = expected(data)
    path = gateway.folder(mount, "digest") + "f.bin"
    put = gateway.http(
        "PUT", path, data=data, headers={"Digest": f"sha-256={want['sha-256']}", "Content-MD5": want["md5"]}
    )
    assert put.status_code == 201, put.text
    for method in ("GET", "HEAD"):
        got = gateway.http(method, path, headers={"Want-Digest": "sha-256, md5;q=0.5, adler32;q=0.1, sha-512;q=0.1"})
        assert got.status_code == 200 and digests(got) == want, (method, got.headers)
    ranged = gateway.http("GET", path, headers={"Want-Digest": "adler32", "Range": "bytes=5-9"})
    assert (
        ranged.status_code == 206 and ranged.content == data[5:10] and digests(ranged) == {"adler32": want["adler32"]}
    )

    other = os.urandom(6 * MiB)
    refused = gateway.http("PUT", path, data=other, headers={"Digest": f"sha-256={want['sha-256']}"})
    assert refused.status_code == 400 and "sha-256" in refused.text
    assert gateway.http("GET", path).content == data  # the old content, whole
    assert gateway.http("PUT", path, data=other, headers={"Content-MD5": want["md5"]}).status_code == 400
    new = gateway.folder(mount, "digest") + "never.bin"
    assert gateway.http("PUT", new, data=other, headers={"Digest": "md5=" + want["md5"]}).status_code == 400
    assert not gateway.exists(new)

    assert gateway.http("PUT", path, data=other).status_code == 204
    assert digests(gateway.http("HEAD", path, headers={"Want-Digest": "md5"})) == {"md5": expected(other)["md5"]}


def test_dispel_results_have_digests(gateway: Gateway) -> None:
    result = gateway.http("GET", DISPEL_WINDOW, headers={"Want-Digest": "sha-256"})
    assert result.status_code == 200
    assert digests(result) == {"sha-256": b64(hashlib.sha256(result.content).digest())}
    head = gateway.http("HEAD", DISPEL_WINDOW.replace("/12/", "/11/"), headers={"Want-Digest": "md5"})
    assert head.status_code == 200 and set(digests(head)) == {"md5"}
    body = gateway.http("GET", DISPEL_WINDOW.replace("/12/", "/11/")).content
    assert digests(head)["md5"] == b64(hashlib.md5(body).digest())


def test_digests_are_kept_in_the_state_store(gateway: Gateway) -> None:
    """Computed by one worker, kept by (path, ETag) for every worker; a verified PUT seeds it."""
    data = b"kept once\n" * 1000
    path = gateway.folder("/data", "kept") + "k.txt"
    sha = b64(hashlib.sha256(data).digest())
    etag = gateway.http("PUT", path, data=data, headers={"Digest": f"sha-256={sha}"}).headers["ETag"].strip('"')
    with sqlite3.connect(gateway.base / "state.db") as db:
        rows = db.execute("SELECT etag, algorithm, value FROM digests WHERE path = ?", (path,)).fetchall()
    assert rows == [(etag, "sha-256", sha)]
    for _ in range(4):  # whichever worker answers
        assert digests(gateway.http("HEAD", path, headers={"Want-Digest": "sha-256"})) == {"sha-256": sha}
