"""The bridge between WsgiDAV's HTTP authenticator and davgate's auth backends.

WsgiDAV asks a "domain controller" whether a request needs credentials and
whether a Basic user/password pair is good. davgate answers from its
configuration: the anonymous policy, and the configured password backend.
Tokens are verified before, by :mod:`davgate.auth.bearer`; its 401 and
WsgiDAV's (:class:`Authenticator`) offer the same two challenges.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsgidav.dc.base_dc import BaseDomainController
from wsgidav.http_authenticator import HTTPAuthenticator

from davgate.auth import PasswordBackend
from davgate.auth.challenge import unauthorized
from davgate.auth.jwt import JwtVerifier

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PROPFIND"})


@dataclass(frozen=True)
class AuthSetup:
    """What the domain controller needs, built once per process by the app."""

    realm: str
    anonymous: str  # none | read | write
    passwords: PasswordBackend | None
    tokens: JwtVerifier | None = None


class DomainController(BaseDomainController):
    """WsgiDAV instantiates this with its config, where the app put an AuthSetup."""

    def __init__(self, wsgidav_app, config: dict) -> None:
        super().__init__(wsgidav_app, config)
        self.setup: AuthSetup = config["davgate.auth"]

    def __str__(self) -> str:
        return f"{self.__class__.__name__}({self.setup.realm!r})"

    def get_domain_realm(self, path_info: str, environ: dict) -> str:
        return self.setup.realm

    def require_authentication(self, realm: str, environ: dict | None) -> bool:
        """Anonymous access per policy; credentials, once sent, are always checked."""
        if environ is None:  # WsgiDAV asking about the share as a whole
            return self.setup.anonymous != "write"
        if "HTTP_AUTHORIZATION" in environ:
            return True
        if self.setup.anonymous == "write":
            return False
        if self.setup.anonymous == "read":
            return environ["REQUEST_METHOD"] not in READ_METHODS
        return True

    def basic_auth_user(self, realm: str, user_name: str, password: str, environ: dict) -> bool:
        backend = self.setup.passwords
        return backend is not None and backend.authenticate(user_name, password)

    def supports_http_digest_auth(self) -> bool:
        return False


class Authenticator(HTTPAuthenticator):
    """WsgiDAV's Basic authenticator, with davgate's 401 (Basic and Bearer challenges)."""

    def send_basic_auth_response(self, environ: dict, start_response):
        realm = self.domain_controller.get_domain_realm(environ["PATH_INFO"], environ)
        sent = "HTTP_AUTHORIZATION" in environ
        reason = "user name or password not accepted" if sent else "authentication required"
        return unauthorized(start_response, realm, reason)
