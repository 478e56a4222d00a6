"""WebDAV credentials under a space (``/<infrastructure>/...``): its own access methods only.

:class:`SpaceAuth` takes the place of :class:`~davgate.auth.bearer.BearerAuth`
in WsgiDAV's middleware stack. Outside the spaces it is BearerAuth, unchanged.
Under ``/<name>/`` it checks the request's credentials against that space's
access methods (:mod:`davgate.api.credentials`) and, when they pass, hands
the user on exactly as BearerAuth does for a token (the verified user for
WsgiDAV's authenticator, the token's scopes) plus the space the request is
limited to (:data:`davgate.access.SPACE_LIMIT`). Anything else is 401 with
both challenges: anonymous access never reaches a space.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from davgate.access import SPACE_LIMIT
from davgate.api.credentials import Refused
from davgate.api.spaces import LiveSpaces
from davgate.auth.bearer import (
    PRIVATE_KEYS,
    TOKEN_SCOPES,
    VERIFIED_USER,
    BearerAuth,
    MalformedCredentials,
    parse_authorization,
)
from davgate.auth.challenge import unauthorized
from davgate.namespace import Namespace

__all__ = ["SpaceAuth"]

logger = logging.getLogger("davgate.auth")

CONFIG_KEY = "davgate.api.spaces"  # in WsgiDAV's config: (Namespace, LiveSpaces)


class SpaceAuth(BearerAuth):
    """BearerAuth, plus the spaces' own access methods under their paths."""

    def __init__(self, wsgidav_app, next_app, config: dict) -> None:
        super().__init__(wsgidav_app, next_app, config)
        self.namespace: Namespace
        self.spaces: LiveSpaces
        self.namespace, self.spaces = config[CONFIG_KEY]

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        environ.pop(SPACE_LIMIT, None)
        name = self.namespace.space_of(environ["PATH_INFO"])
        space = None if name is None else self.spaces.get(name)
        if space is None:
            return super().__call__(environ, start_response)
        for key in PRIVATE_KEYS:
            environ.pop(key, None)
        try:
            credentials = parse_authorization(environ.get("HTTP_AUTHORIZATION"))
            if credentials is None:
                return unauthorized(start_response, self.realm, "authentication required")
            user, scopes = space.credentials.authenticate(credentials)
        except MalformedCredentials as error:
            logger.warning("authentication failed (%s)", error.reason)
            return unauthorized(start_response, self.realm, error.reason)
        except Refused as error:
            logger.warning("authentication failed under /%s/ (%s)", name, error.reason)
            return unauthorized(start_response, self.realm, error.reason, invalid_token=error.token)
        environ[VERIFIED_USER], environ[TOKEN_SCOPES], environ[SPACE_LIMIT] = user, scopes, name
        return self.next_app(environ, start_response)
