"""The 401 response: which credentials davgate takes, and a one-line reason.

Every 401 offers both schemes, Basic first for clients that read only the
first challenge::

    WWW-Authenticate: Basic realm="davgate"
    WWW-Authenticate: Bearer realm="davgate"[, error="invalid_token"]

``error="invalid_token"`` (RFC 6750) is added when a token was refused. The
body is the reason as plain text; reasons are written by davgate and never
quote what the client sent.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["unauthorized"]


def unauthorized(start_response: Callable, realm: str, reason: str, *, invalid_token: bool = False) -> list[bytes]:
    """Start a 401 response and return its body."""
    quoted = _quote(realm)
    bearer = f'Bearer realm="{quoted}"' + (', error="invalid_token"' if invalid_token else "")
    body = f"401 Unauthorized: {reason}\n".encode()
    start_response(
        "401 Unauthorized",
        [
            ("WWW-Authenticate", f'Basic realm="{quoted}"'),
            ("WWW-Authenticate", bearer),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
