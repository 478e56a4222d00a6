"""Log output: text lines or one JSON object per line, each with its request id.

``configure(level, "json")`` gives lines such as::

    {"time": "2025-01-31T12:00:00.123Z", "level": "INFO", "logger": "davgate.access",
     "message": "127.0.0.1 alice \\"GET /data/a.txt\\" 200 5 1.2ms", "request_id": "9f0c...",
     "remote": "127.0.0.1", "user": "alice", "method": "GET", "path": "/data/a.txt", ...}

(on one line). Fields a caller passes as ``extra={"fields": {...}}`` become
top-level keys; the access log passes its request fields that way. Text
lines carry the request id in brackets after the logger's name.

One record is one line: in text, every character of the message that is
not printable (newline, carriage return, escape, U+2028, ...) is written
escaped (``\n``, ``\x1b``, ``\u2028``), so a path, user name or header a
client sent cannot forge a line or drive a terminal. A traceback keeps its
lines, below the record's.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Literal

from davgate.ops.requestid import RequestIdFilter, current

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s"
RESERVED = frozenset({"time", "level", "logger", "message", "request_id", "exception"})


class TextFormatter(logging.Formatter):
    """The classic line, with ``[request id]`` after the logger name inside a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", "") or current.get()
        record.request_tag = f" [{escaped(request_id)}]" if request_id else ""
        return super().format(record)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escaped(record.message)
        return super().formatMessage(record)


def escaped(text: str) -> str:
    """``text`` with each character that is not printable written as its Python escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "") or current.get()
        if request_id:
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update((k, v) for k, v in fields.items() if k not in RESERVED)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


def timestamp(created: float) -> str:
    """UTC, to the millisecond: ``2025-01-31T12:00:00.123Z``."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def configure(level: str, fmt: LogFormat = "text", stream: IO[str] | None = None) -> None:
    """davgate's loggers at ``level`` on one stream handler; WsgiDAV's internals only when they warn.

    Calling it again (e.g. once the configuration file asked for JSON)
    replaces the handler.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(RequestIdFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.captureWarnings(True)  # Python warnings become log lines too (JSON stays JSON)
    wsgidav = logging.getLogger("wsgidav")
    wsgidav.propagate = True
    wsgidav.setLevel(max(logging.WARNING, logging.getLogger().level))
    logging.getLogger("wsgidav.wsgidav_app").addFilter(expected_challenges)


def expected_challenges(record: logging.LogRecord) -> bool:
    """Every 401 carries two WWW-Authenticate headers (Basic and Bearer) on purpose;
    WsgiDAV reports any repeated header as an error, which here is noise."""
    return record.getMessage() != "Duplicate header in response: WWW-Authenticate"
