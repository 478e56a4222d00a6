"""The credentials middleware, in front of WsgiDAV's HTTP authenticator.

It reads the Authorization header once, strictly, and then:

- no header: passes the request on (the anonymous policy decides);
- ``Bearer <jwt>``, or a bare ``<jwt>`` as the original system sent it:
  verifies the token; on success puts the token's user under
  :data:`VERIFIED_USER` and its scopes under :data:`TOKEN_SCOPES`;
- ``Basic``, whose password is a JWT: the same, so that clients that only
  speak Basic (davfs2, Windows, rclone) can use tokens. The token says who
  the user is; the Basic user name is not used. A JWT given as the Basic
  user name is taken as the token too (so that it never reaches a log line
  that names users);
- ``Basic`` with a password: passes it on to WsgiDAV's authenticator and
  the password backend (htpasswd);
- anything malformed (bad base64, no ':', not UTF-8, an unknown scheme) or a
  refused token: answers 401 itself, with both challenges.

WsgiDAV's authenticator trusts :data:`VERIFIED_USER` (its
``trusted_auth_header`` option). No HTTP header can produce that environ
key (headers arrive as ``HTTP_*``), and this middleware removes any value
that is there before it looks at the request, so only a verified token can
set it.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from wsgidav.mw.base_mw import BaseMiddleware

from davgate.auth.challenge import unauthorized
from davgate.auth.jwt import InvalidToken, JwtVerifier, TokenIdentity, looks_like_jwt

__all__ = [
    "TOKEN_SCOPES",
    "VERIFIED_USER",
    "BearerAuth",
    "Credentials",
    "MalformedCredentials",
    "parse_authorization",
]

logger = logging.getLogger("davgate.auth")

VERIFIED_USER = "davgate.auth.verified_user"
TOKEN_SCOPES = "davgate.auth.scopes"
PRIVATE_KEYS = (VERIFIED_USER, TOKEN_SCOPES)
MAX_HEADER_LENGTH = 32 * 1024
TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # matched whole (fullmatch)


class MalformedCredentials(Exception):
    """The Authorization header cannot be read; ``reason`` never quotes it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Credentials:
    """What an Authorization header says: a token, or a user and password."""

    scheme: str  # "basic" or "bearer"
    secret: str  # the password or the token
    user: str | None = None  # Basic only


def parse_authorization(header: str | None) -> Credentials | None:
    """The credentials in an Authorization header; None if there is none."""
    if header is None:
        return None
    if len(header) > MAX_HEADER_LENGTH:
        raise MalformedCredentials("Authorization header too long")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if not value and looks_like_jwt(scheme):
        return Credentials("bearer", scheme)  # the original system's bare token
    if scheme.lower() == "bearer":
        if not TOKEN68.fullmatch(value):
            raise MalformedCredentials("malformed bearer token")
        return Credentials("bearer", value)
    if scheme.lower() == "basic":
        return _basic(value)
    raise MalformedCredentials("unsupported authorization scheme (use Basic or Bearer)")


def _basic(value: str) -> Credentials:
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise MalformedCredentials("Basic credentials are not valid base64") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedCredentials("Basic credentials are not UTF-8") from None
    user, colon, password = text.partition(":")
    if not colon:
        raise MalformedCredentials("Basic credentials have no ':' between user and password")
    return Credentials("basic", password, user)


class BearerAuth(BaseMiddleware):
    """WsgiDAV middleware; finds the token verifier in ``config["davgate.auth"]``."""

    def __init__(self, wsgidav_app, next_app, config: dict) -> None:
        super().__init__(wsgidav_app, next_app, config)
        setup = config["davgate.auth"]
        self.realm: str = setup.realm
        self.verifier: JwtVerifier | None = setup.tokens

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        for key in PRIVATE_KEYS:
            environ.pop(key, None)
        try:
            token = self._token_of(parse_authorization(environ.get("HTTP_AUTHORIZATION")))
        except MalformedCredentials as e:
            logger.warning("authentication failed (%s)", e.reason)
            return unauthorized(start_response, self.realm, e.reason)
        if token is None:
            return self.next_app(environ, start_response)
        try:
            identity = self._verify(token)
        except InvalidToken as e:
            return unauthorized(start_response, self.realm, e.reason, invalid_token=True)
        environ[VERIFIED_USER] = identity.user
        environ[TOKEN_SCOPES] = identity.scopes
        return self.next_app(environ, start_response)

    def _token_of(self, credentials: Credentials | None) -> str | None:
        """The token to verify, or None for no credentials or a Basic password."""
        if credentials is None:
            return None
        if credentials.scheme == "bearer":
            return credentials.secret
        if self.verifier is not None and looks_like_jwt(credentials.secret):
            return credentials.secret
        if credentials.user is not None and looks_like_jwt(credentials.user):
            return credentials.user
        return None

    def _verify(self, token: str) -> TokenIdentity:
        if self.verifier is None:
            logger.warning("token refused (bearer tokens are not configured)")
            raise InvalidToken("this server does not accept bearer tokens")
        return self.verifier.authenticate(token)
