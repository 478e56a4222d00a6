"""A small WSGI router for the API: method + path pattern -> handler, with JSON in and out.

Patterns name path segments in braces (``/infrastructure/{name}``); a
segment matches anything but '/' and control characters, and a pattern
matches the whole path. Each route says who may call it:
``public`` (anyone), ``user`` (an API token or the admin token) or
``admin``. Handlers take a :class:`Request` and return a :class:`Reply`,
or raise :class:`~davgate.api.errors.ApiError`; anything else becomes a
logged 500 whose body says only that.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs

from davgate.api.checks import parse_json
from davgate.api.errors import (
    ApiError,
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    json_response,
)
from davgate.api.tokens import Caller
from davgate.state import StoreBusy

__all__ = ["Reply", "Request", "Router"]

logger = logging.getLogger("davgate.api")

Access = Literal["public", "user", "admin"]
Authenticate = Callable[[dict], Caller]
READ_SIZE = 64 * 1024


@dataclass
class Reply:
    """What a handler answers: a status, a JSON-able body, extra headers."""

    status: int = 200
    body: Any = None
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Request:
    """One API call: its environ, the pattern's parameters, who is calling."""

    environ: dict
    params: dict[str, str]
    caller: Caller
    max_body: int

    @property
    def query(self) -> dict[str, str]:
        """The query string's parameters (the last value of each)."""
        parsed = parse_qs(self.environ.get("QUERY_STRING", ""), keep_blank_values=True)
        return {name: values[-1] for name, values in parsed.items()}

    def json(self) -> Any:
        """The request body as JSON, read up to ``max_body`` bytes."""
        return parse_json(self.body())

    def body(self) -> bytes:
        length = self.environ.get("CONTENT_LENGTH") or ""
        if length.isdigit() and int(length) > self.max_body:
            raise PayloadTooLarge(f"the body may have at most {self.max_body} bytes")
        stream = self.environ["wsgi.input"]
        limit = int(length) if length.isdigit() else self.max_body + 1
        chunks, size = [], 0
        while size < limit:
            chunk = stream.read(min(READ_SIZE, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > self.max_body:
            raise PayloadTooLarge(f"the body may have at most {self.max_body} bytes")
        return b"".join(chunks)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[Request], Reply]
    access: Access


class Router:
    """Dispatches the paths below ``prefix`` (e.g. ``/api/v1``)."""

    def __init__(self, prefix: str, authenticate: Authenticate, max_body: int) -> None:
        self.prefix = prefix
        self.authenticate = authenticate
        self.max_body = max_body
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Callable[[Request], Reply], access: Access = "user") -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/\\x00-\\x1f\\x7f]+)", pattern)
        self.routes.append(Route(method, re.compile(regex), handler, access))

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            reply = self.dispatch(environ)
        except ApiError as error:
            return json_response(start_response, error.status, error.body(), error.headers)
        except StoreBusy:  # busy or gone (a database server that went away): worth a retry, as for WebDAV
            body = {"error": "unavailable", "detail": "the state store is busy or unreachable; try again"}
            return json_response(start_response, 503, body, [("Retry-After", "1")])
        except Exception:
            logger.exception("API %s %s failed", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            body = {"error": "internal_error", "detail": "the server failed; see its log"}
            return json_response(start_response, 500, body)
        return json_response(start_response, reply.status, reply.body, reply.headers)

    def dispatch(self, environ: dict) -> Reply:
        method, path = environ["REQUEST_METHOD"], self.path_of(environ)
        route, params = self.match(method, path)
        caller = Caller.nobody() if route.access == "public" else self.authenticate(environ)
        environ["wsgidav.auth.user_name"] = caller.name  # for the access log
        if route.access == "admin" and not caller.admin:
            raise Forbidden("this call needs the admin token")
        return route.handler(Request(environ, params, caller, self.max_body))

    def path_of(self, environ: dict) -> str:
        raw = environ.get("PATH_INFO", "")[len(self.prefix) :] or "/"
        try:
            path = raw.encode("latin-1").decode("utf-8")  # PEP 3333: PATH_INFO holds bytes as latin-1
        except UnicodeError:
            raise BadRequest("the path is not valid UTF-8", "invalid_value") from None
        if not path.isprintable():
            raise BadRequest("the path has a control character", "invalid_value")
        return path

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = set()
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict()
            allowed.add(route.method)
        if allowed:
            raise MethodNotAllowed(allowed)
        raise NotFound(f"no API call at {self.prefix}{path}")
