"""The API's errors: one exception per status, and the one JSON shape every error has.

Handlers raise :class:`ApiError` subclasses; the router turns them into
``{"error": "<code>", "detail": "<one line>"}`` with the status. Details are
written by davgate and never quote what the client sent (a wrong value may
be a password).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

__all__ = [
    "ApiError",
    "BadGateway",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "QuotaExceeded",
    "Unauthorized",
    "json_response",
]

JSON_TYPE = "application/json"


class ApiError(Exception):
    """An error answered as JSON: ``status``, a short ``code`` and a one-line ``detail``."""

    status = 500
    code = "internal_error"

    def __init__(self, detail: str, code: str | None = None, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.code
        self.headers = list(headers)

    def body(self) -> dict[str, str]:
        return {"error": self.code, "detail": self.detail}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"

    def __init__(self, detail: str, code: str | None = None) -> None:
        super().__init__(detail, code, [("WWW-Authenticate", 'Bearer realm="davgate-api"')])


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"

    def __init__(self, allowed: Iterable[str]) -> None:
        methods = ", ".join(sorted(allowed))
        super().__init__(f"allowed methods: {methods}", headers=[("Allow", methods)])


class Conflict(ApiError):
    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class QuotaExceeded(ApiError):
    """The caller holds all a quota allows (:mod:`davgate.api.quotas`); the same call succeeds once they free some."""

    status, code = 507, "quota_exceeded"


class BadGateway(ApiError):
    """A storage adaptor (an SSH host, an S3 endpoint) failed us."""

    status, code = 502, "bad_gateway"


REASONS = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
    500: "Internal Server Error", 502: "Bad Gateway", 507: "Insufficient Storage",
}  # fmt: skip


def status_line(status: int) -> str:
    return f"{status} {REASONS.get(status, 'Unknown')}"


def json_response(
    start_response: Callable, status: int, body: object, headers: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    """Start a response with ``body`` as JSON (no body for 204) and return its chunks."""
    data = b"" if status == 204 else json.dumps(body, ensure_ascii=False).encode("utf-8") + b"\n"
    sent = [("Content-Length", str(len(data))), ("Cache-Control", "no-store"), *headers]
    if status != 204:
        sent.insert(0, ("Content-Type", f"{JSON_TYPE}; charset=utf-8"))
    start_response(status_line(status), sent)
    return [data]
