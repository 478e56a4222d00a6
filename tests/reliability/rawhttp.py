"""HTTP requests exactly as written: any path bytes, any header, any body (for hostile input).

``requests`` and ``http.client`` clean up what they send (they refuse control
characters, normalise paths); these tests must send what an attacker would.
"""

from __future__ import annotations

import base64
import select
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.helpers import USERS

AUTH = ("alice", USERS["alice"])


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def basic(user: str = AUTH[0], password: str = AUTH[1]) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def send(
    base_url: str,
    method: str,
    path: str,
    headers: Mapping[str, str | None] | None = None,
    body: bytes = b"",
    *,
    auth: bool = True,
    timeout: float = 30.0,
) -> Reply:
    """One request on its own connection; ``None`` as a header value leaves that header out."""
    address = urlsplit(base_url)
    fields: dict[str, str | None] = {"Host": address.netloc, "Connection": "close"}
    if auth:
        fields["Authorization"] = basic()
    if body or method in ("PUT", "PROPFIND", "PROPPATCH", "LOCK"):
        fields["Content-Length"] = str(len(body))
    fields.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items() if v is not None)
    with socket.create_connection((address.hostname, address.port), timeout=timeout) as sock:
        sock.sendall(head.encode("utf-8", "surrogateescape") + b"\r\n")
        send_until_answered(sock, body)
        data = b"".join(iter(lambda: sock.recv(65536), b""))
    return parse(data)


def send_until_answered(sock: socket.socket, body: bytes, chunk: int = 64 * 1024) -> None:
    """Send ``body``, but stop as soon as the server answers (as it does to refuse a body early)."""
    for start in range(0, len(body), chunk):
        if select.select([sock], [], [], 0)[0]:
            return
        try:
            sock.sendall(body[start : start + chunk])
        except (BrokenPipeError, ConnectionResetError):
            return


def parse(data: bytes) -> Reply:
    if not data:
        raise AssertionError("the server closed the connection without an answer")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(status, headers, body)
