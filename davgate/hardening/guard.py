"""The request guard: WSGI middleware in front of WsgiDAV that refuses malformed requests.

It sits outside WsgiDAV because WsgiDAV's own entry point decodes the path
before any of its middleware runs (a path that is not UTF-8 there ends the
connection without an answer). For every request it checks, in order:

- the path: valid UTF-8 once percent-decoded (overlong forms are not), no
  encoded '/' or '\\', no control characters, no '.' or '..' segments;
- Content-Length: a plain non-negative number;
- Depth, Overwrite, If, Timeout (LOCK), Range (GET, HEAD) and Destination
  (COPY, MOVE), by :mod:`davgate.hardening.headers`; a Range in a unit
  other than bytes is dropped (ignored), as RFC 9110 says; the If header's
  resource tags are rewritten as the quoted paths WsgiDAV matches them with;
  a malformed Destination (a fragment, another scheme or host, garbage) is
  taken out of the request and its refusal left under :data:`DEFERRED`, for
  the access control to answer after authentication (401 comes first);
- the bodies WsgiDAV reads whole (PROPFIND, PROPPATCH, LOCK, COPY, MOVE):
  at most ``max_xml_body`` bytes, and XML without DTDs or entities
  (:mod:`davgate.hardening.xmlbody`).

A refusal is a 4xx whose plain-text body is the status and a one-line
reason; nothing behind the guard runs, so nothing is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from davgate.hardening import headers, xmlbody
from davgate.hardening.errors import DEFERRED, Refused

log = logging.getLogger("davgate.hardening")

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What the guard allows; from ``server.max_xml_body`` and ``server.max_xml_elements``."""

    max_xml_body: int = 1 * MiB
    max_xml_elements: int = 10_000


class RequestGuard:
    """Refuses malformed requests with a 4xx and a reason; passes the rest to ``app``."""

    def __init__(self, app: Callable, limits: Limits | None = None) -> None:
        self.app = app
        self.limits = limits or Limits()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            self.check(environ)
        except Refused as refused:
            path = headers.shown(environ.get("PATH_INFO", ""), 200)
            log.info("refused %s %s: %s %s", environ.get("REQUEST_METHOD", "-"), path, refused.status, refused.reason)
            return refused.respond(start_response)
        return self.app(environ, start_response)

    def check(self, environ: dict) -> None:
        method = environ.get("REQUEST_METHOD", "")
        check_path(environ)
        xmlbody.content_length(environ)
        check_headers(environ, method)
        if method in xmlbody.BOUNDED_METHODS:
            xmlbody.checked_body(environ, method, self.limits.max_xml_body, self.limits.max_xml_elements)


def check_path(environ: dict) -> None:
    """The request path, as sent (REQUEST_URI) where the server gives it, else PATH_INFO."""
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if raw:
        headers.request_path(raw.split("?", 1)[0], "the request path")
        return
    try:
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise Refused(400, "the request path is not valid UTF-8 (overlong or broken sequence)") from None
    headers.check_segments(path, "the request path")


def check_headers(environ: dict, method: str) -> None:
    for key, check in ONE_VALUE_HEADERS:
        if key in environ:
            environ[key] = check(environ[key])
    if "HTTP_IF" in environ:
        environ["HTTP_IF"] = headers.if_header(environ["HTTP_IF"])
    if method == "LOCK" and "HTTP_TIMEOUT" in environ:
        headers.timeout(environ["HTTP_TIMEOUT"])
    if method in ("GET", "HEAD") and "HTTP_RANGE" in environ and not headers.byte_ranges(environ["HTTP_RANGE"]):
        del environ["HTTP_RANGE"]
    if method in ("COPY", "MOVE") and "HTTP_DESTINATION" in environ:
        check_destination(environ)


ONE_VALUE_HEADERS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("HTTP_DEPTH", headers.depth),
    ("HTTP_OVERWRITE", headers.overwrite),
)


def check_destination(environ: dict) -> None:
    """A Destination naming this server by the host and scheme the request came with, or none at all."""
    try:
        headers.destination(environ["HTTP_DESTINATION"], origins(environ))
    except Refused as refused:
        del environ["HTTP_DESTINATION"]
        environ[DEFERRED] = refused


def origins(environ: dict) -> headers.Origins:
    """The schemes and hosts this request reached us by, as WsgiDAV accepts them in a Destination."""
    schemes = {environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_X_FORWARDED_PROTO", "")}
    hosts = {environ.get("HTTP_HOST", ""), environ.get("HTTP_X_FORWARDED_HOST", "")}
    return headers.Origins(frozenset(s.lower() for s in schemes if s), frozenset(h.lower() for h in hosts if h))
