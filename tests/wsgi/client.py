"""A minimal in-process WSGI client: requests without sockets, for logic tests."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from wsgiref.util import setup_testing_defaults

from tests.helpers import basic


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class Client:
    """Calls a WSGI app as one authenticated user (``user=None``: anonymous)."""

    def __init__(self, app: Callable, user: str | None = "alice") -> None:
        self.app = app
        self.user = user

    def request(self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Response:
        environ = self.environ(method, path, body, headers or {})
        captured: dict = {}

        def start_response(status: str, response_headers: list, exc_info=None):
            captured["status"] = int(status.split()[0])
            headers: dict[str, str] = {}
            for name, value in response_headers:  # repeated headers joined, as requests does
                key = name.lower()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            captured["headers"] = headers

        chunks = self.app(environ, start_response)
        try:
            data = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        return Response(captured["status"], captured["headers"], data)

    def environ(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> dict:
        environ: dict = {"REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "wsgi.input": io.BytesIO(body)}
        setup_testing_defaults(environ)
        environ["HTTP_HOST"] = "127.0.0.1"
        environ["CONTENT_LENGTH"] = str(len(body))
        if self.user is not None:
            environ["HTTP_AUTHORIZATION"] = basic(self.user)
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
        return environ

    def get(self, path: str, **headers: str) -> Response:
        return self.request("GET", path, headers=headers)

    def put(self, path: str, body: bytes, **headers: str) -> Response:
        return self.request("PUT", path, body, headers)

    def propfind(self, path: str, depth: str = "1", body: bytes = b"") -> Response:
        return self.request("PROPFIND", path, body, {"Depth": depth})
