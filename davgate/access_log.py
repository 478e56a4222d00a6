"""One log line per request: who did what, the status, bytes sent and the time taken.

Only the method, path, status, user and sizes are logged: never headers,
so credentials and tokens cannot reach the log.

The middleware is also each request's scope. It gives the request its id
(:mod:`davgate.ops.requestid`: a sane incoming ``X-Request-ID``, or a new
one), echoes it in the ``X-Request-ID`` response header, makes it the id of
every log line the request causes, and tells observers (the metrics) when
a request starts and when its response is done. With JSON logs
(:mod:`davgate.ops.logs`) the line's parts are keys of its object:
``remote``, ``user``, ``method``, ``path``, ``status``, ``bytes_in``,
``bytes_out``, ``duration_ms``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol

from davgate import sendfile
from davgate.ops import requestid

log = logging.getLogger("davgate.access")


class Finished(NamedTuple):  # a tuple: made once per request, cheaply
    """A request whose response is done (sent, or abandoned by the client)."""

    method: str
    path: str
    status: str  # "200"; "-" if the application never started a response
    received: int  # request body bytes the application read
    sent: int  # response body bytes
    seconds: float


class RequestObserver(Protocol):
    def request_started(self, environ: dict) -> None: ...

    def request_finished(self, done: Finished) -> None: ...


class AccessLog:
    """WSGI middleware that logs each request when its response is done."""

    def __init__(self, app: Callable, observers: Sequence[RequestObserver] = ()) -> None:
        self.app = app
        self.observers = tuple(observers)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.monotonic()
        request_id = environ[requestid.ENVIRON_KEY] = requestid.choose(environ.get(requestid.INCOMING))
        requestid.current.set(request_id)
        if "wsgi.input" in environ:
            environ["wsgi.input"] = CountingInput(environ["wsgi.input"])
        status: list[str] = []

        def record_status(code: str, headers: list, exc_info=None):
            status[:] = [code.split(" ", 1)[0]]
            headers = [*headers, (requestid.HEADER, request_id)]
            return start_response(code, headers, exc_info) if exc_info else start_response(code, headers)

        for observer in self.observers:
            observer.request_started(environ)
        try:
            body = self.app(environ, record_status)
        except BaseException:
            LoggedBody((), environ, status or ["500"], started, self.observers).close()
            raise
        return LoggedBody(body, environ, status, started, self.observers)


class CountingInput:
    """``wsgi.input``, counting the bytes the application reads; anything else passes through."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.count = 0

    def read(self, *args: Any) -> bytes:
        data = self.stream.read(*args)
        self.count += len(data)
        return data

    def readline(self, *args: Any) -> bytes:
        line = self.stream.readline(*args)
        self.count += len(line)
        return line

    def readlines(self, *args: Any) -> list[bytes]:
        lines = self.stream.readlines(*args)
        self.count += sum(map(len, lines))
        return lines

    def __iter__(self) -> Iterator[bytes]:
        for line in self.stream:
            self.count += len(line)
            yield line

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class LoggedBody:
    """The response body, passed through; logs when the server closes it."""

    def __init__(
        self,
        body: Iterable[bytes],
        environ: dict,
        status: list[str],
        started: float,
        observers: tuple[RequestObserver, ...] = (),
    ) -> None:
        self.body = body
        self.environ = environ
        self.status = status
        self.started = started
        self.observers = observers
        self.sent = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            getattr(self.body, "close", lambda: None)()
        finally:
            self.finish()

    def finish(self) -> None:
        environ = self.environ
        stream = environ.get("wsgi.input")
        done = Finished(
            method=environ.get("REQUEST_METHOD", "-"),
            path=environ.get("PATH_INFO", "-"),
            status=self.status[0] if self.status else "-",
            received=stream.count if isinstance(stream, CountingInput) else 0,
            sent=self.sent + environ.get(sendfile.SENT, 0),
            seconds=time.monotonic() - self.started,
        )
        try:
            for observer in self.observers:
                observer.request_finished(done)
            if log.isEnabledFor(logging.INFO):
                self.log(done)
        finally:
            requestid.current.set("")

    def log(self, done: Finished) -> None:
        remote = self.environ.get("REMOTE_ADDR", "-")
        user = self.environ.get("wsgidav.auth.user_name") or "-"
        milliseconds = done.seconds * 1000
        fields = {
            "remote": remote, "user": user, "method": done.method, "path": done.path, "status": done.status,
            "bytes_in": done.received, "bytes_out": done.sent, "duration_ms": round(milliseconds, 3),
        }  # fmt: skip
        log.info(
            '%s %s "%s %s" %s %d %.1fms',
            remote, user, done.method, done.path, done.status, done.sent, milliseconds,
            extra={"fields": fields},
        )  # fmt: skip
