"""One log line per request: who did what, the status, bytes sent and the time taken.

Only the method, path, status, user and sizes are logged: never headers,
so credentials and tokens cannot reach the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator

log = logging.getLogger("davgate.access")


class AccessLog:
    """WSGI middleware that logs each request when its response is done."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.monotonic()
        status: list[str] = []

        def record_status(code: str, headers: list, exc_info=None):
            status[:] = [code.split(" ", 1)[0]]
            return start_response(code, headers, exc_info) if exc_info else start_response(code, headers)

        body = self.app(environ, record_status)
        return LoggedBody(body, environ, status, started)


class LoggedBody:
    """The response body, passed through; logs when the server closes it."""

    def __init__(self, body: Iterable[bytes], environ: dict, status: list[str], started: float) -> None:
        self.body = body
        self.environ = environ
        self.status = status
        self.started = started
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            getattr(self.body, "close", lambda: None)()
        finally:
            self.log()

    def log(self) -> None:
        environ = self.environ
        log.info(
            '%s %s "%s %s" %s %d %.1fms',
            environ.get("REMOTE_ADDR", "-"),
            environ.get("wsgidav.auth.user_name") or "-",
            environ.get("REQUEST_METHOD", "-"),
            environ.get("PATH_INFO", "-"),
            self.status[0] if self.status else "-",
            self.sent,
            (time.monotonic() - self.started) * 1000,
        )
