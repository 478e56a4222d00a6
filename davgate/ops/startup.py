"""What ``davgate serve`` sets up once, before it serves: TLS, status lines, reserved paths."""

from __future__ import annotations

import ssl
from http import HTTPStatus
from typing import TYPE_CHECKING

from davgate.config import ConfigError

if TYPE_CHECKING:
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    from davgate.config import Config
    from davgate.config.schema import ServerConfig


def register_reason_phrases() -> None:
    """Give WsgiDAV the standard reason phrase of every status it lacks.

    WsgiDAV writes a status it has no text for as e.g. ``503 Status``;
    davgate answers 503, 504 and 507 (and WsgiDAV 206, 207, ...), which
    deserve ``503 Service Unavailable``. WsgiDAV's own texts are kept.
    """
    from wsgidav.dav_error import ERROR_DESCRIPTIONS

    for status in HTTPStatus:
        if status.value >= 200:
            ERROR_DESCRIPTIONS.setdefault(status.value, f"{status.value} {status.phrase}")


def ssl_adapter(server: ServerConfig) -> BuiltinSSLAdapter | None:
    """cheroot's TLS adapter for ``server.tls_cert`` and ``server.tls_key``; None without TLS."""
    cert, key = server.tls_cert, server.tls_key
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        missing = "server.tls_cert" if cert is None else "server.tls_key"
        raise ConfigError(missing, "tls_cert and tls_key go together: set both, or neither")
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    try:
        return BuiltinSSLAdapter(str(cert), str(key))
    except (ssl.SSLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error.__class__.__name__
        raise ConfigError("server.tls_cert", f"cannot serve TLS with {cert} and key {key}: {reason}") from None


def check_reserved_paths(config: Config) -> None:
    """No mount may sit where /metrics, /healthz or /readyz are answered, nor at or below the pages' assets."""
    from davgate.ops.endpoints import RESERVED_PATHS
    from davgate.pages.assets import is_asset_path

    for path in config.mounts:
        if path.lower() in RESERVED_PATHS:
            raise ConfigError(f"mounts.{path}", f"{path} is reserved for davgate's operations endpoints")
        if is_asset_path(path.lower()):
            raise ConfigError(f"mounts.{path}", f"{path} is reserved for the assets of davgate's pages")


def prepare(config: Config) -> None:
    """Once per ``davgate serve``, before any worker starts.

    Checks the TLS files and the reserved paths, registers the status
    lines, and makes this server's metrics folder, named in the
    environment that every worker inherits.
    """
    import os

    from davgate.ops import metrics
    from davgate.ops.wiring import FOLDER_ENV

    check_reserved_paths(config)
    if ssl_adapter(config.server) is not None and getattr(config.server, "engine", "cheroot") != "cheroot":
        raise ConfigError("server.tls_cert", "TLS is served by the cheroot engine; set server.engine: cheroot")
    register_reason_phrases()
    if config.metrics.enabled:
        os.environ[FOLDER_ENV] = str(metrics.server_folder(config))
