"""Credentials never cross a network in the clear by accident.

Basic passwords, bearer tokens (also sent as Basic passwords) and the
management API's admin token are all readable by anyone on the path of a
plain-HTTP connection. So ``davgate serve`` refuses to start when it would
accept credentials over plain HTTP on an address other than loopback,
unless TLS is configured (``server.tls_cert`` and ``server.tls_key``) or the
operator says that something else protects the traffic (a TLS-terminating
proxy, a private network) with ``server.allow_insecure_basic: true``; then
it starts with a warning.
"""

from __future__ import annotations

import ipaddress
import logging

from davgate.config import Config, ConfigError

log = logging.getLogger("davgate.hardening")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for wildcards and other names."""
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def accepts_credentials(config: Config) -> bool:
    api = getattr(config, "api", None)
    return bool(config.auth.htpasswd or config.auth.jwt or getattr(api, "admin_token", None))


def has_tls(config: Config) -> bool:
    server = config.server
    return bool(getattr(server, "tls_cert", None) and getattr(server, "tls_key", None))


def check_transport(config: Config) -> None:
    """Raise ConfigError if credentials would travel in the clear beyond this host."""
    server = config.server
    if is_loopback(server.host) or has_tls(config) or not accepts_credentials(config):
        return
    if getattr(server, "allow_insecure_basic", False):
        log.warning(
            "serving on %s over plain HTTP: passwords and tokens cross the network readable "
            "(server.allow_insecure_basic is true)",
            server.host,
        )
        return
    raise ConfigError(
        "server.host",
        f"{server.host} is not a loopback address, and without TLS passwords and tokens would cross "
        "the network readable: set server.tls_cert and server.tls_key, or bind 127.0.0.1, or set "
        "server.allow_insecure_basic: true if a TLS proxy or a private network protects the traffic",
    )
