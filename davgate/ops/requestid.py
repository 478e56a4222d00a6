"""Request ids: one per request, echoed in ``X-Request-ID`` and named in every log line.

An incoming ``X-Request-ID`` is kept when it is sane (1 to 128 characters
from a conservative set, so it is safe in a header, a log line and a JSON
string); otherwise davgate makes one. The id of the request a thread is
serving lives in a context variable, which :class:`RequestIdFilter` copies
onto each log record.
"""

from __future__ import annotations

import logging
import re
import secrets
from contextvars import ContextVar

HEADER = "X-Request-ID"
ENVIRON_KEY = "davgate.request_id"
INCOMING = "HTTP_X_REQUEST_ID"
SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,127}\Z")

current: ContextVar[str] = ContextVar("davgate_request_id", default="")


def choose(incoming: str | None) -> str:
    """The client's id if it is sane, else a new random one (32 hex digits)."""
    if incoming and SANE.match(incoming):
        return incoming
    return secrets.token_hex(16)


class RequestIdFilter(logging.Filter):
    """Puts the current request's id (or "") on every record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = current.get()
        return True
