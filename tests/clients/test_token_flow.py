"""The execution environment's flow, with curl: get a token, PUT and GET with ``Authorization: Bearer``.

On every writable mount: a streamed upload that carries its checksum
(RFC 3230 ``Digest``), a download that asks for one (``Want-Digest``), a
Range, and the token as a Basic password for clients that only speak Basic.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.clients.gateway import EMAIL, WRITABLE, Gateway

MiB = 1024 * 1024


def curl(program: str, *args: str, stdin: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one curl request."""
    done = subprocess.run(
        [program, "-sS", "-D", "-", *args], input=stdin, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 100"):
        head, _, body = body.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("mount", WRITABLE)
def test_bearer_put_and_get_with_checksums(
    gateway: Gateway, tool: Callable[[str], str], tmp_path: Path, mount: str
) -> None:
    program = tool("curl")
    token = gateway.token()
    bearer = f"Authorization: Bearer {token}"
    data = os.urandom(12 * MiB + 1)
    (tmp_path / "result.bin").write_bytes(data)
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    url = gateway.url + gateway.folder(mount, "flow") + "result.bin"

    status, headers, _ = curl(
        program, "-H", bearer, "-H", f"Digest: sha-256={sha}", "-T", str(tmp_path / "result.bin"), url
    )
    assert status == 201 and headers["etag"]
    status, headers, body = curl(program, "-H", bearer, "-H", "Want-Digest: sha-256", url)
    assert status == 200 and body == data and headers["digest"] == f"sha-256={sha}"
    status, headers, body = curl(program, "-H", bearer, "-H", "Want-Digest: adler32", "-r", "1024-2047", url)
    assert status == 206 and body == data[1024:2048] and headers["digest"].startswith("adler32=")

    chunked = url.replace("result.bin", "chunked.bin")  # a body of unknown length, as a pipe sends it (and Finder)
    status, _, _ = curl(program, "-H", bearer, "-H", f"Digest: sha-256={sha}", "-T", "-", chunked, stdin=data)
    assert status == 201 and curl(program, "-H", bearer, chunked)[2] == data

    (tmp_path / "bad.bin").write_bytes(data[:-1] + b"!")
    status, _, body = curl(program, "-H", bearer, "-H", f"Digest: sha-256={sha}", "-T", str(tmp_path / "bad.bin"), url)
    assert status == 400 and b"sha-256" in body
    assert curl(program, "-u", f"{EMAIL}:{token}", url)[2] == data  # the old content, via the token as Basic password
    assert curl(program, "-H", "Authorization: Bearer not-a-token", url)[0] == 401
