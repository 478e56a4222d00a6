"""Webhooks: a job's outcome POSTed to the URL its submitter gave, with retries.

The body is ``{"id", "state", "from", "to", "bytes", "total", "error",
"checksum"}`` (``state`` is ``done`` or ``failed``). A 2xx answer is a
delivery; anything else (another status, a redirect, no answer within
``api.webhook_timeout``) is tried again after ``api.webhook_backoff``
seconds, doubled each time up to 300, until ``api.webhook_attempts``
attempts were made. Attempts are records in the state store, so a restart
neither loses nor repeats a delivered webhook.
"""

from __future__ import annotations

import http.client
import json
import logging
from typing import Any
from urllib.parse import urlsplit

from davgate.state import CopyJob

__all__ = ["deliver", "payload", "retry_at"]

log = logging.getLogger("davgate.api.webhooks")

MAX_BACKOFF = 300.0


def payload(job: CopyJob) -> dict[str, Any]:
    return {
        "id": job.id, "state": job.state, "from": job.source, "to": job.target,
        "bytes": job.bytes_done, "total": job.bytes_total, "error": job.error or None, "checksum": job.checksum or None,
    }  # fmt: skip


def deliver(url: str, body: dict[str, Any], timeout: float) -> bool:
    """POST ``body`` as JSON to ``url``; True on a 2xx answer. Never raises."""
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.hostname}:{parts.port or ''}{parts.path}"  # never the query: it may hold a secret
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    data = json.dumps(body).encode("utf-8")
    try:
        connection = cls(parts.hostname or "", parts.port, timeout=timeout)
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


def retry_at(attempts_before: int, max_attempts: int, backoff: float, now: float) -> float | None:
    """When to try again after attempt number ``attempts_before + 1`` failed; None to give up."""
    if attempts_before + 1 >= max_attempts:
        return None
    return now + min(MAX_BACKOFF, backoff * 2**attempts_before)
