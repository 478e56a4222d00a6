"""A space's own access methods: who may use ``/<name>/`` and how they prove it.

- ``webdav`` logic containers: a user and password (only a bcrypt hash is
  kept), as Basic credentials;
- ``webdav-jwt`` logic containers: users with public keys, in the users
  file format; their JWTs are checked by :class:`~davgate.auth.jwt.JwtVerifier`
  with the server's JWT policy (``auth.jwt``: audience, issuer, lifetime),
  as ``Authorization: Bearer`` or as the Basic password;
- the owner's API token (see :mod:`davgate.api.tokens`), the same ways.

All of them stop working the moment the owner's API user is deleted: each
request asks the state store whether the owner is still registered (what
the administrator's token made belongs to no user and is not affected).

Nothing else is accepted under ``/<name>/``, and none of these is accepted
anywhere else (:mod:`davgate.access`, ``SPACE_LIMIT``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from davgate.api.spec import InfraSpec
from davgate.api.tokens import ServerTokens
from davgate.auth import AuthenticationFailed, PasswordBackend
from davgate.auth.bearer import Credentials
from davgate.auth.hashes import verify_hash
from davgate.auth.htpasswd import VerificationCache
from davgate.auth.jwt import InvalidToken, JwtPolicy, JwtVerifier, looks_like_jwt
from davgate.auth.keys import UserEntry, parse_users

__all__ = ["SpaceCredentials", "SpacePasswords", "credentials_for"]


#: Checked for unknown users, so that they take as long as known ones (cost 12, like the real hashes).
DUMMY_HASH = "$2b$12$k2b.FsHcsxg6MbnR3tuYO.i9Vi7tYX10gnddHQ4zMqC.hpnt7LR4O"


class SpacePasswords(PasswordBackend):
    """The users and bcrypt hashes of a space's webdav containers."""

    def __init__(self, hashes: dict[str, str]) -> None:
        self.hashes = hashes
        self.cache = VerificationCache()

    def _check(self, user: str, password: str) -> bool:
        stored = self.hashes.get(user)
        if stored is None:
            verify_hash(DUMMY_HASH, password)
            raise AuthenticationFailed("unknown user in this namespace")
        if (user, password, stored) in self.cache:
            return True
        accepted = verify_hash(stored, password)
        if accepted:
            self.cache.add((user, password, stored))
        return accepted


class StaticUsers:
    """A users file held in memory (a webdav-jwt container's ``users``)."""

    def __init__(self, users: dict[str, UserEntry]) -> None:
        self.users = users

    def get(self, user: str) -> UserEntry | None:
        return self.users.get(user)


class Refused(Exception):
    """Credentials not accepted here; ``reason`` is one line, without the credentials."""

    def __init__(self, reason: str, *, token: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.token = reason, token


@dataclass(frozen=True)
class SpaceCredentials:
    """Checks the credentials of a request to one space."""

    name: str
    owner: str
    passwords: SpacePasswords | None
    tokens: JwtVerifier | None
    server: ServerTokens
    owner_registered: Callable[[], bool]

    def authenticate(self, credentials: Credentials) -> tuple[str, tuple[str, ...] | None]:
        """The user and their token's scopes; raises :class:`Refused`."""
        if not self.owner_registered():
            raise Refused(f"the owner of /{self.name}/ is no longer a user of this server")
        token = token_of(credentials)
        if token is not None:
            return self.by_token(token)
        if self.passwords is None or credentials.user is None:
            raise Refused(f"/{self.name}/ takes no user name and password")
        if not self.passwords.authenticate(credentials.user, credentials.secret):
            raise Refused("user name or password not accepted")
        return credentials.user, None

    def by_token(self, token: str) -> tuple[str, tuple[str, ...] | None]:
        try:
            if self.server.is_ours(token):
                identity = self.server.verify(token)
                if identity.user != self.owner:
                    raise InvalidToken(f"the token's user does not own /{self.name}/")
            elif self.tokens is not None:
                identity = self.tokens.authenticate(token)
            else:
                raise InvalidToken(f"/{self.name}/ takes no tokens but its owner's")
        except InvalidToken as error:
            raise Refused(error.reason, token=True) from None
        return identity.user, identity.scopes


def token_of(credentials: Credentials) -> str | None:
    if credentials.scheme == "bearer":
        return credentials.secret
    if looks_like_jwt(credentials.secret):
        return credentials.secret
    if credentials.user is not None and looks_like_jwt(credentials.user):
        return credentials.user
    return None


def credentials_for(
    spec: InfraSpec, owner: str, server: ServerTokens, policy: JwtPolicy, owner_registered: Callable[[], bool]
) -> SpaceCredentials:
    """The access methods of a stored description; none works while ``owner_registered()`` is false."""
    hashes = {item.options["user"]: item.options["passwordHash"] for item in spec.of_type("webdav")}
    users: dict[str, UserEntry] = {}
    for item in spec.of_type("webdav-jwt"):
        parsed, _problems = parse_users(json.dumps(item.options["users"]).encode(), f"/{spec.name}/ {item.name}")
        users.update(parsed)
    passwords = SpacePasswords(hashes) if hashes else None
    tokens = JwtVerifier(StaticUsers(users), policy) if users else None  # type: ignore[arg-type]
    return SpaceCredentials(spec.name, owner, passwords, tokens, server, owner_registered)
