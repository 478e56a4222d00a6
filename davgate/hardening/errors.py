"""The one exception of the request guard: a refusal with its status and reason."""

from __future__ import annotations

from collections.abc import Callable, Iterable

REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    411: "Length Required",
    413: "Content Too Large",
    416: "Range Not Satisfiable",
}


class Refused(Exception):
    """A request refused before it reaches WsgiDAV; ``reason`` is one line for the client."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason

    @property
    def status_line(self) -> str:
        return f"{self.status} {REASONS.get(self.status, 'Error')}"

    def respond(self, start_response: Callable) -> Iterable[bytes]:
        """``<status line>: <reason>`` as plain text, as DISPEL's errors are."""
        body = f"{self.status_line}: {self.reason}\n".encode()
        start_response(
            self.status_line,
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("X-Content-Type-Options", "nosniff"),  # the reason may quote the request: never render it
            ],
        )
        return [body]
