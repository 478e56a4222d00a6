"""Bearer token (JWT) verification: who a token is for, and whether to believe it.

The user is the token's ``email`` claim (fallbacks: ``user``, then ``sub``)
and must be in the users file. A token whose header names a ``kid`` is an
issuer token when a JWKS is configured: it is verified with that JWKS key
only. Any other token is verified with its user's own public key only.

Hardening: the algorithm must be one the key's family accepts (see
:mod:`davgate.auth.keys`), narrowed by configuration, so ``none`` and HS*
never pass; ``exp`` is required and ``exp - iat`` (or ``exp - now``) may not
exceed ``max_lifetime``; ``nbf`` and ``iat`` may not lie in the future;
every time check allows ``leeway`` seconds of clock skew; ``aud`` and
``iss`` must match when configured (and a token naming an audience is
refused when none is configured). Time checks are done here rather than
by PyJWT so that they use one clock that tests can move.

Successful verifications are remembered for a short while, keyed by a
SHA-256 of the token, never past ``exp`` and never after the user's key
changed.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from davgate.auth.jwks import JwksKeys
from davgate.auth.keys import ASYMMETRIC_ALGORITHMS, UsersFile, VerificationKey

__all__ = ["InvalidToken", "JwtPolicy", "JwtVerifier", "TokenIdentity", "looks_like_jwt"]

logger = logging.getLogger("davgate.auth")

USER_CLAIMS = ("email", "user", "sub")
MAX_TOKEN_LENGTH = 16 * 1024
JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")  # matched whole (fullmatch)
Clock = Callable[[], float]


class InvalidToken(Exception):
    """A token was refused; ``reason`` is one line that never quotes the token."""

    def __init__(self, reason: str, user: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.user = user


@dataclass(frozen=True)
class TokenIdentity:
    """Who a verified token speaks for, and what it narrows them to."""

    user: str
    scopes: tuple[str, ...] | None  # None: the token carries no scope claim
    expires: float


@dataclass(frozen=True)
class JwtPolicy:
    """What a token must satisfy besides a good signature."""

    audience: str | None = None
    issuer: str | None = None
    algorithms: frozenset[str] = ASYMMETRIC_ALGORITHMS
    max_lifetime: float = 24 * 3600
    leeway: float = 30


@dataclass(frozen=True)
class _Remembered:
    identity: TokenIdentity
    key: VerificationKey
    kid: str | None
    until: float


def looks_like_jwt(text: str) -> bool:
    """True if ``text`` has the shape of a compact JWS (three base64url parts)."""
    return text.startswith("eyJ") and len(text) <= MAX_TOKEN_LENGTH and bool(JWT_SHAPE.fullmatch(text))


class JwtVerifier:
    """Verifies tokens against the users file (and optionally a JWKS)."""

    def __init__(
        self,
        users: UsersFile,
        policy: JwtPolicy | None = None,
        jwks: JwksKeys | None = None,
        *,
        cache_ttl: float = 60.0,
        cache_size: int = 1024,
        clock: Clock = time.time,
    ) -> None:
        self.users, self.jwks = users, jwks
        self.policy = policy or JwtPolicy()
        self._clock = clock
        self._cache_ttl, self._cache_size = cache_ttl, cache_size
        self._cache: OrderedDict[bytes, _Remembered] = OrderedDict()
        self._lock = threading.Lock()

    def authenticate(self, token: str) -> TokenIdentity:
        """The identity of a good token; raises :class:`InvalidToken` and logs otherwise."""
        try:
            identity = self._recall(token) or self._verify(token)
        except InvalidToken as e:
            logger.warning("token refused for user %s (%s)", _printable(e.user), e.reason)
            raise
        except Exception as e:  # noqa: BLE001 -- fail closed; its message may echo the token
            logger.error("token refused (verification error: %s)", type(e).__name__)
            raise InvalidToken("token could not be verified") from None
        logger.debug("token accepted for user %s", _printable(identity.user))
        return identity

    # -- verification -----------------------------------------------------
    def _verify(self, token: str) -> TokenIdentity:
        header, unverified = _peek(token)
        user = _user_of(unverified)
        try:
            key = self._key_for(user, header.get("kid"))
            claims = self._decode(token, key, header["alg"])
            if _user_of(claims) != user:
                raise InvalidToken("token names no user")
            identity = TokenIdentity(user, _scopes_of(claims), self._check_times(claims))
        except InvalidToken as e:
            raise InvalidToken(e.reason, user) from None
        self._remember(token, identity, key, header.get("kid"))
        return identity

    def _key_for(self, user: str, kid: object) -> VerificationKey:
        entry = self.users.get(user)
        if entry is None:
            raise InvalidToken("user is not in the users file")
        if kid is not None and self.jwks is not None:
            key = self.jwks.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise InvalidToken("unknown key id (kid)")
            return key
        if entry.key is None:
            raise InvalidToken("user has no public key")
        return entry.key

    def _decode(self, token: str, key: VerificationKey, algorithm: str) -> Mapping[str, Any]:
        if algorithm not in key.algorithms & self.policy.algorithms:
            raise InvalidToken(f"algorithm {algorithm} is not accepted for this key")
        options: Any = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.policy.audience,
                issuer=self.policy.issuer,
                options=options,
            )
        except jwt.InvalidSignatureError:
            raise InvalidToken("bad signature") from None
        except jwt.MissingRequiredClaimError as e:
            raise InvalidToken(f"missing claim {e.claim}") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("wrong audience (aud)") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("wrong issuer (iss)") from None
        except jwt.PyJWTError as e:
            raise InvalidToken(f"invalid token ({type(e).__name__})") from None

    def _check_times(self, claims: Mapping[str, Any]) -> float:
        """``exp``, after checking exp, nbf, iat and the lifetime against now."""
        now, leeway = self._clock(), self.policy.leeway
        exp, nbf, iat = (_number(claims, name) for name in ("exp", "nbf", "iat"))
        if exp is None:
            raise InvalidToken("missing claim exp")
        if exp + leeway <= now:
            raise InvalidToken("token has expired")
        if nbf is not None and nbf - leeway > now:
            raise InvalidToken("token is not valid yet (nbf)")
        if iat is not None and iat - leeway > now:
            raise InvalidToken("token is issued in the future (iat)")
        if exp - (iat if iat is not None else now) > self.policy.max_lifetime:
            raise InvalidToken(f"token lifetime exceeds {self.policy.max_lifetime:g} s")
        return exp

    # -- cache ------------------------------------------------------------
    def _recall(self, token: str) -> TokenIdentity | None:
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        with self._lock:
            remembered = self._cache.get(digest)
            if remembered is None:
                return None
            if self._clock() >= remembered.until:
                del self._cache[digest]
                return None
            self._cache.move_to_end(digest)
        try:
            current = self._key_for(remembered.identity.user, remembered.kid)
        except InvalidToken:
            current = None
        return remembered.identity if current is remembered.key else None

    def _remember(self, token: str, identity: TokenIdentity, key: VerificationKey, kid: object) -> None:
        if self._cache_ttl <= 0 or self._cache_size <= 0:
            return
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        until = min(identity.expires, self._clock() + self._cache_ttl)
        with self._lock:
            self._cache[digest] = _Remembered(identity, key, kid if isinstance(kid, str) else None, until)
            self._cache.move_to_end(digest)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)


def _peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims before any verification, to find the user and the key."""
    if not looks_like_jwt(token):
        raise InvalidToken("malformed token")
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise InvalidToken("malformed token") from None
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in ASYMMETRIC_ALGORITHMS:
        shown = algorithm if isinstance(algorithm, str) and algorithm.isalnum() and len(algorithm) < 16 else "?"
        raise InvalidToken(f"algorithm {shown} is never accepted", _user_or_none(claims))
    return header, claims


def _user_of(claims: Mapping[str, Any]) -> str:
    user = _user_or_none(claims)
    if user is None:
        raise InvalidToken("token names no user (email, user or sub)")
    return user


def _user_or_none(claims: Mapping[str, Any]) -> str | None:
    for name in USER_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _scopes_of(claims: Mapping[str, Any]) -> tuple[str, ...] | None:
    value = claims.get("scope", claims.get("scp"))
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise InvalidToken("scope claim is neither text nor a list of text")


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidToken(f"claim {name} is not a number")
    return float(value)


def _printable(user: str | None) -> str:
    if user is None:
        return "-"
    return repr(user[:64] + ("…" if len(user) > 64 else ""))
