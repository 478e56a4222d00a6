"""API tokens: who is calling the API (the ``x-access-token`` header), and the server's signing key.

Two kinds of token are accepted, in ``x-access-token`` (the original
system's header) or as ``Authorization: Bearer``:

- the admin token, a secret from the configuration (``api.admin_token``),
  compared in constant time; it may register users;
- a user's token, a JWT that ``PUT /api/v1/user`` returns: signed by the
  server's own Ed25519 key (made on first start, ``api.key``), with
  ``iss`` ``davgate``, ``aud`` ``davgate-api``, ``kid`` ``davgate-api`` and an
  ``exp`` ``api.token_ttl`` seconds on. It is verified by the same
  :class:`~davgate.auth.jwt.JwtVerifier` as every other bearer token, whose
  "users file" here is the registered users, each with the server's public
  key: a user who is removed loses their tokens within a second.

A user's token is also a WebDAV bearer token under the namespaces that user
created (see :mod:`davgate.api.davauth`).
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from davgate.api.errors import Unauthorized
from davgate.auth.jwt import InvalidToken, JwtPolicy, JwtVerifier, TokenIdentity
from davgate.auth.keys import EDDSA_ALGORITHMS, UserEntry, VerificationKey
from davgate.auth.tokens import mint
from davgate.state import StateStore

__all__ = ["ADMIN", "ApiAuthenticator", "Caller", "ServerTokens", "load_signing_key"]

logger = logging.getLogger("davgate.api")

ADMIN = "admin"  # the owner name of what the admin token creates; user names are e-mail addresses
SERVER_KID = "davgate-api"
ISSUER = "davgate"
AUDIENCE = "davgate-api"
USER_CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class Caller:
    """Who made an API call: ``name`` is an e-mail address, ``"admin"``, or ``""`` for a public call."""

    name: str
    admin: bool = False

    @classmethod
    def nobody(cls) -> Caller:
        return cls("")


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The key at ``path``; made there (mode 600) if missing, safely when processes race."""
    if not path.exists():
        _create_key(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"api.key: {path} is not an Ed25519 private key")
    return key


def _create_key(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    try:
        os.link(temp, path)  # fails if another process made it first: theirs wins
        logger.info("made the API token signing key %s", path)
    except FileExistsError:
        pass
    finally:
        temp.unlink()


class ApiUsers:
    """The registered users as a users file: each one's key is the server's public key."""

    def __init__(self, store: StateStore, key: VerificationKey) -> None:
        self.store, self.key = store, key
        self.lock = threading.Lock()
        self.cache: dict[str, tuple[float, UserEntry | None]] = {}

    def get(self, email: str) -> UserEntry | None:
        now = time.monotonic()
        with self.lock:
            found = self.cache.get(email)
        if found is not None and now - found[0] < USER_CACHE_SECONDS:
            return found[1]
        user = self.store.api_user_get(email)
        entry = None if user is None else UserEntry(user.name, self.key)
        with self.lock:
            if len(self.cache) > 4096:
                self.cache.clear()
            self.cache[email] = (now, entry)
        return entry


class ServerTokens:
    """Mints and verifies the tokens of registered users."""

    def __init__(self, store: StateStore, private_key: Ed25519PrivateKey, ttl: int) -> None:
        self.private_key, self.ttl = private_key, ttl
        key = VerificationKey(private_key.public_key(), EDDSA_ALGORITHMS, "the API signing key")
        policy = JwtPolicy(audience=AUDIENCE, issuer=ISSUER, algorithms=EDDSA_ALGORITHMS, max_lifetime=ttl)
        self.verifier = JwtVerifier(ApiUsers(store, key), policy)  # type: ignore[arg-type]

    def mint(self, email: str) -> str:
        return mint(self.private_key, email, ttl=self.ttl, audience=AUDIENCE, issuer=ISSUER, kid=SERVER_KID)

    def verify(self, token: str) -> TokenIdentity:
        """The identity of a good token; raises :class:`InvalidToken`."""
        return self.verifier.authenticate(token)

    @staticmethod
    def is_ours(token: str) -> bool:
        """Whether ``token`` says it is one of ours (its header's ``kid``); says nothing of its validity."""
        try:
            return jwt.get_unverified_header(token).get("kid") == SERVER_KID
        except jwt.PyJWTError:
            return False


class ApiAuthenticator:
    """The caller of an API request, from ``x-access-token`` or ``Authorization: Bearer``."""

    def __init__(self, admin_token: str | None, tokens: ServerTokens) -> None:
        self.admin_token = admin_token.encode() if admin_token else None
        self.tokens = tokens

    def __call__(self, environ: dict) -> Caller:
        token = self.token_of(environ)
        if self.admin_token is not None and hmac.compare_digest(token.encode(), self.admin_token):
            return Caller(ADMIN, admin=True)
        try:
            return Caller(self.tokens.verify(token).user)
        except InvalidToken as error:
            raise Unauthorized(f"token refused: {error.reason}", "invalid_token") from None

    @staticmethod
    def token_of(environ: dict) -> str:
        token = environ.get("HTTP_X_ACCESS_TOKEN", "").strip()
        if not token:
            scheme, _, value = environ.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else ""
        if not token:
            raise Unauthorized("an x-access-token header (or Authorization: Bearer) is required", "missing_token")
        if len(token) > 16 * 1024 or not token.isprintable():
            raise Unauthorized("malformed token", "invalid_token")
        return token
