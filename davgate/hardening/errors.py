"""The one exception of the request guard: a refusal with its status and reason."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from xml.sax.saxutils import escape

REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    411: "Length Required",
    413: "Content Too Large",
    416: "Range Not Satisfiable",
}
DEFERRED = "davgate.hardening.deferred"  # environ: a Refused the guard leaves for after authentication
REASON_NAMESPACE = "urn:davgate"  # RFC 4918 16 lets DAV:error carry elements of other namespaces


class Refused(Exception):
    """A request refused with a 4xx; ``reason`` is one line for the client.

    Raised by the request guard before WsgiDAV runs, and answered by
    davgate's own handlers behind it (a PROPFIND of a whole tree).

    ``condition`` names the WebDAV precondition that failed (RFC 4918 16),
    e.g. ``propfind-finite-depth``: the answer is then a ``DAV:error`` body
    naming it, with the reason beside it.
    """

    def __init__(self, status: int, reason: str, condition: str | None = None) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason
        self.condition = condition

    @property
    def status_line(self) -> str:
        return f"{self.status} {REASONS.get(self.status, 'Error')}"

    def respond(self, start_response: Callable) -> Iterable[bytes]:
        """``<status line>: <reason>`` as plain text, as DISPEL's errors are; a precondition as ``DAV:error``."""
        if self.condition is None:
            body, content_type = f"{self.status_line}: {self.reason}\n".encode(), "text/plain; charset=utf-8"
        else:
            body, content_type = self.dav_error().encode(), "application/xml; charset=utf-8"
        start_response(
            self.status_line,
            [
                ("Content-Type", content_type),
                ("Content-Length", str(len(body))),
                ("X-Content-Type-Options", "nosniff"),  # the reason may quote the request: never render it
            ],
        )
        return [body]

    def dav_error(self) -> str:
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f'<D:error xmlns:D="DAV:"><D:{self.condition}/>'
            f'<davgate:reason xmlns:davgate="{REASON_NAMESPACE}">{escape(self.reason)}</davgate:reason></D:error>\n'
        )
