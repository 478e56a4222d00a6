"""Request ids: one per request, echoed in ``X-Request-ID`` and named in every log line.

An incoming ``X-Request-ID`` is kept when it is sane (1 to 128 characters
from a conservative set, so it is safe in a header, a log line and a JSON
string); otherwise davgate makes one: a random prefix drawn once per
process (again in a forked child) and a counter, 32 hexadecimal digits in
all, unique without asking the kernel for random bytes on every request.
The id of the request a thread is serving lives in a context variable,
which :class:`RequestIdFilter` copies onto each log record.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
from contextvars import ContextVar

HEADER = "X-Request-ID"
ENVIRON_KEY = "davgate.request_id"
INCOMING = "HTTP_X_REQUEST_ID"
SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,127}\Z")

current: ContextVar[str] = ContextVar("davgate_request_id", default="")


def choose(incoming: str | None) -> str:
    """The client's id if it is sane, else a new one (32 hex digits)."""
    if incoming and SANE.match(incoming):
        return incoming
    return new_id()


class IdSource:
    """Ids unique across processes and restarts: a random 64-bit prefix, then a 64-bit counter."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count()  # next() on it is atomic under the GIL

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


new_id = IdSource()
os.register_at_fork(after_in_child=new_id.restart)  # a forked worker must not repeat its parent's ids


class RequestIdFilter(logging.Filter):
    """Puts the current request's id (or "") on every record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = current.get()
        return True
