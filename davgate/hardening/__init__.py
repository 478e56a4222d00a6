"""Hardening: refuse malformed and hostile requests, and unsafe ways of serving.

- :class:`RequestGuard` (:mod:`.guard`) is WSGI middleware in front of
  WsgiDAV: strict paths and headers, bounded and safely parsed XML bodies,
  each refusal a 4xx with a one-line reason.
  A malformed Destination is refused only after authentication
  (:data:`DEFERRED`), so a request without credentials gets its 401 first.
- :func:`check_transport` (:mod:`.transport`) refuses to serve credentials
  over plain HTTP beyond loopback unless TLS is set or explicitly waived.
- :class:`~.outbound.OutboundRule` (:mod:`.outbound`) lets davgate connect
  where API users point it (adaptors, webhooks) only at public addresses,
  unless ``server.outbound_allow`` says otherwise.

What was tried against davgate, and how it answered, is in
``docs/RELIABILITY.md``.
"""

from __future__ import annotations

from davgate.hardening.errors import DEFERRED, Refused
from davgate.hardening.guard import Limits, RequestGuard
from davgate.hardening.transport import check_transport

__all__ = ["DEFERRED", "Limits", "Refused", "RequestGuard", "check_transport"]
