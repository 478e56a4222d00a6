"""Webhooks: a job's outcome POSTed to the URL its submitter gave, with retries.

The body is ``{"id", "state", "from", "to", "bytes", "total", "error",
"checksum"}`` (``state`` is ``done`` or ``failed``). A 2xx answer is a
delivery; anything else (another status, a redirect, no answer within
``api.webhook_timeout``) is tried again after ``api.webhook_backoff``
seconds, doubled each time up to 300, until ``api.webhook_attempts``
attempts were made. Attempts are records in the state store, so a restart
neither loses nor repeats a delivered webhook.

A webhook makes davgate send a request where its submitter says, from
inside the data centre's network. So a webhook goes only where the outbound
rule allows (:mod:`davgate.hardening.outbound`: public addresses, and what
``server.outbound_allow`` adds), checked when the job is submitted and again
when connecting. ``api.webhook_allow`` narrows that further: it lists the
URLs webhooks may go to (a URL is allowed below one of them: same scheme,
host and port, its path under that path); a job whose webhook is elsewhere
is refused when submitted, and one already queued is not delivered if the
list no longer allows it.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from davgate.hardening.outbound import DIRECT, Opener
from davgate.state import CopyJob

__all__ = ["KIND", "address_of", "allowed", "deliver", "payload", "retry_at"]

log = logging.getLogger("davgate.api.webhooks")

MAX_BACKOFF = 300.0
DEFAULT_PORTS = {"http": 80, "https": 443}
KIND = "webhook"  # the outbound rule's name for these connections


def allowed(url: str, allow: Sequence[str]) -> bool:
    """True if ``url`` is an http(s) URL that ``allow`` permits: any, when it is empty, else one below an entry."""
    try:
        target = urlsplit(url)
        if target.scheme not in DEFAULT_PORTS or not target.hostname or target.port == 0:
            return False
        if any(segment in (".", "..") for segment in unquote(target.path).split("/")):
            return False  # a path that climbs out of an allowed one once the receiver normalises it
        return not allow or any(below(target, urlsplit(entry)) for entry in allow)
    except ValueError:  # a port that is no number, a broken IPv6 literal
        return False


def address_of(url: str) -> tuple[str, int]:
    """The host and port a webhook URL (one :func:`allowed` accepted) connects to."""
    target = urlsplit(url)
    return target.hostname or "", target.port or DEFAULT_PORTS[target.scheme]


def below(target: SplitResult, entry: SplitResult) -> bool:
    if (target.scheme, target.hostname) != (entry.scheme.lower(), entry.hostname):
        return False
    if (target.port or DEFAULT_PORTS[target.scheme]) != (entry.port or DEFAULT_PORTS.get(entry.scheme.lower())):
        return False
    base = entry.path.rstrip("/")
    return target.path == base or target.path.startswith(base + "/")


def payload(job: CopyJob) -> dict[str, Any]:
    return {
        "id": job.id, "state": job.state, "from": job.source, "to": job.target,
        "bytes": job.bytes_done, "total": job.bytes_total, "error": job.error or None, "checksum": job.checksum or None,
    }  # fmt: skip


def deliver(url: str, body: dict[str, Any], timeout: float, opener: Opener = DIRECT) -> bool:
    """POST ``body`` as JSON to ``url``, connecting with ``opener``; True on a 2xx answer. Never raises."""
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.hostname}:{parts.port or ''}{parts.path}"  # never the query: it may hold a secret
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    data = json.dumps(body).encode("utf-8")
    try:
        connection = cls(parts.hostname or "", parts.port, timeout=timeout)
        connection._create_connection = opening(opener)  # http.client's seam for opening its socket
        try:
            connection.request("POST", target, data, {"Content-Type": "application/json", "User-Agent": "davgate"})
            status = connection.getresponse().status
        finally:
            connection.close()
    except (OSError, http.client.HTTPException) as error:
        log.warning("webhook %s for job %s: %s", where, body.get("id"), type(error).__name__)
        return False
    if 200 <= status < 300:
        log.info("webhook %s for job %s delivered (%d)", where, body.get("id"), status)
        return True
    log.warning("webhook %s for job %s answered %d", where, body.get("id"), status)
    return False


def opening(opener: Opener) -> Callable[..., socket.socket]:
    """``opener`` in the shape of ``socket.create_connection``, which http.client calls."""

    def create_connection(address: tuple[str, int], timeout: float | None, source: Any = None) -> socket.socket:
        return opener(address[0], address[1], timeout)

    return create_connection


def retry_at(attempts_before: int, max_attempts: int, backoff: float, now: float) -> float | None:
    """When to try again after attempt number ``attempts_before + 1`` failed; None to give up."""
    if attempts_before + 1 >= max_attempts:
        return None
    return now + min(MAX_BACKOFF, backoff * 2**attempts_before)
