"""Request ids and log lines: text or one JSON object per line, each naming its request."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from davgate.access_log import AccessLog
from davgate.ops import logs, requestid
from tests.wsgi.client import Client


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Root logging configured by davgate (JSON) into a buffer; restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    logs.configure("INFO", "json", stream)
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.captureWarnings(False)


def chatty(environ: dict, start_response):
    """An application that logs while it serves, as a storage backend might."""
    logging.getLogger("davgate.sftp").warning("connection to %s was slow", "hpc")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_sane_incoming_request_id_is_kept_and_echoed() -> None:
    response = Client(AccessLog(chatty)).get("/x", **{"X-Request-ID": "lb-42.abc"})
    assert response.headers["x-request-id"] == "lb-42.abc"


@pytest.mark.parametrize("incoming", ["", "x" * 129, "a b", "bad\\id", "<script>", "-starts-with-dash", "é"])
def test_an_insane_request_id_is_replaced(incoming: str) -> None:
    response = Client(AccessLog(chatty)).get("/x", **{"X-Request-ID": incoming})
    made = response.headers["x-request-id"]
    assert made != incoming
    assert len(made) == 32 and int(made, 16) >= 0


def test_every_log_line_of_a_request_names_it(captured: io.StringIO) -> None:
    response = Client(AccessLog(chatty)).get("/data/a.txt")
    request_id = response.headers["x-request-id"]
    entries = lines(captured)
    assert [e["logger"] for e in entries] == ["davgate.sftp", "davgate.access"]
    assert all(e["request_id"] == request_id for e in entries)
    access = entries[-1]
    assert access["method"] == "GET" and access["path"] == "/data/a.txt"
    assert (access["status"], access["bytes_out"], access["user"]) == ("200", 5, "-")
    assert access["duration_ms"] >= 0
    assert access["time"].endswith("Z")
    logging.getLogger("davgate.server").info("between requests")
    assert "request_id" not in lines(captured)[-1]


def test_json_lines_stay_one_line_and_carry_exceptions(captured: io.StringIO) -> None:
    log = logging.getLogger("davgate.test")
    try:
        raise ValueError("two\nlines")
    except ValueError:
        log.exception("failed with %s", "a\nnewline")
    raw = captured.getvalue()
    assert raw.count("\n") == 1
    entry = json.loads(raw)
    assert entry["message"] == "failed with a\nnewline"
    assert "ValueError: two\nlines" in entry["exception"]


def test_text_lines_carry_the_request_id_in_brackets() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.TextFormatter())
    handler.addFilter(requestid.RequestIdFilter())
    log = logging.getLogger("davgate.text-test")
    log.addHandler(handler)
    log.propagate = False
    try:
        requestid.current.set("abc123")
        log.warning("inside")
        requestid.current.set("")
        log.warning("outside")
    finally:
        log.removeHandler(handler)
    inside, outside = stream.getvalue().splitlines()
    assert " WARNING davgate.text-test [abc123]: inside" in inside
    assert " WARNING davgate.text-test: outside" in outside


def test_text_lines_escape_what_is_not_printable_but_keep_a_tracebacks_lines() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.TextFormatter())
    log = logging.getLogger("davgate.escape-test")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("GET %s by %s", "/a\n\r\x1b[2J\x85\u2028b", "bob\tx")
        try:
            raise ValueError("broken")
        except ValueError:
            log.exception("failed on %s", "/c\nd")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert text.splitlines()[0].endswith("GET /a\\n\\r\\x1b[2J\\x85\\u2028b by bob\\tx")
    assert "failed on /c\\nd\nTraceback (most recent call last):\n" in text
    assert text.rstrip("\n").endswith("ValueError: broken")


def test_credentials_never_reach_the_access_log(captured: io.StringIO) -> None:
    Client(AccessLog(chatty)).get("/x", Authorization="Bearer secret-token-value")
    assert "secret-token-value" not in captured.getvalue()
    assert "wonderland" not in captured.getvalue()  # the Basic password the client sends
