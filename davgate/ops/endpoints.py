"""The operations endpoints, on the main port.

- ``/healthz``: liveness. No authentication, no backend calls: 200 while
  the process answers requests.
- ``/readyz``: readiness. No authentication; checks the state store and
  every mount (:mod:`davgate.ops.health`): 200 ``{"status": "ready"}``, or
  503 ``{"status": "not ready"}``. The page is public, so it names no mount
  and no reason: what is not ready, and why, goes to the log.
- ``/metrics``: Prometheus text format (:mod:`davgate.ops.export`), for
  any authenticated user.

The first two sit in front of authentication (a load balancer's probe has
no credentials); ``/metrics`` is a WsgiDAV middleware right after the
authenticator. These paths cannot be mount paths.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from wsgidav.mw.base_mw import BaseMiddleware

from davgate.auth.challenge import unauthorized
from davgate.ops.export import CONTENT_TYPE, Exporter
from davgate.ops.health import Readiness

HEALTHZ, READYZ, METRICS = "/healthz", "/readyz", "/metrics"
RESERVED_PATHS = (HEALTHZ, READYZ, METRICS)
METRICS_CONFIG_KEY = "davgate.metrics"  # where the app puts the Exporter in WsgiDAV's config
READ = ("GET", "HEAD")


def respond(environ: dict, start_response: Callable, status: str, body: bytes, content_type: str) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")]
    if status.startswith("405"):
        headers.append(("Allow", ", ".join(READ)))
    start_response(status, headers)
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def respond_json(environ: dict, start_response: Callable, status: str, data: dict) -> list[bytes]:
    body = json.dumps(data, sort_keys=True).encode() + b"\n"
    return respond(environ, start_response, status, body, "application/json")


def not_allowed(environ: dict, start_response: Callable) -> list[bytes]:
    return respond(environ, start_response, "405 Method Not Allowed", b"use GET or HEAD\n", "text/plain; charset=utf-8")


class HealthEndpoints:
    """WSGI middleware that answers ``/healthz`` and ``/readyz`` itself."""

    def __init__(self, app: Callable, readiness: Readiness) -> None:
        self.app = app
        self.readiness = readiness

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path != HEALTHZ and path != READYZ:
            return self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") not in READ:
            return not_allowed(environ, start_response)
        if path == HEALTHZ:
            return respond_json(environ, start_response, "200 OK", {"status": "ok"})
        ready, _checks = self.readiness.report()
        if ready:
            return respond_json(environ, start_response, "200 OK", {"status": "ready"})
        return respond_json(environ, start_response, "503 Service Unavailable", {"status": "not ready"})


class MetricsEndpoint(BaseMiddleware):
    """WsgiDAV middleware after the authenticator: ``/metrics`` for any authenticated user."""

    def __init__(self, wsgidav_app, next_app, config: dict) -> None:
        super().__init__(wsgidav_app, next_app, config)
        self.exporter: Exporter = config[METRICS_CONFIG_KEY]
        self.realm: str = config["davgate.auth"].realm

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != METRICS:
            return self.next_app(environ, start_response)
        if not environ.get("wsgidav.auth.user_name"):
            return unauthorized(start_response, self.realm, "authentication required")
        if environ.get("REQUEST_METHOD") not in READ:
            return not_allowed(environ, start_response)
        return respond(environ, start_response, "200 OK", self.exporter.render(), CONTENT_TYPE)
