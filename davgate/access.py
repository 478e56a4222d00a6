"""Who may read and write where: access rules per mount, narrowed by token scopes.

Rules. A mount MAY have ``access: {read: [...], write: [...]}``, whose
principals are user names, ``@group`` (groups are defined at the top of the
config) or ``*`` (any authenticated user); write implies read. A mount
without rules lets every authenticated user read and write. Rules apply
alike to Basic and Bearer users.

Anonymous requests (let through by ``auth.anonymous``) reach only mounts
without rules; on a mount with rules they get 401, so the client can log
in. Paths above the mounts (``/``, virtual folders) list the names of the
mounts the user may read (:meth:`AccessControl.visible`; the namespace asks
through :data:`~davgate.namespace.VISIBLE`) and are readable by whoever got
past authentication, except that ``PROPFIND`` with ``Depth: infinity``
there needs read access to every mount below. Nobody writes there: any
write, ``PROPPATCH`` and ``LOCK`` of a path outside every mount is 403.

Mounts that read other mounts. A mount MAY have a method ``reads(rel)``
giving the namespace paths a request for ``rel`` reads besides ``rel``
itself (a DISPEL template's input on its source mount, see
:mod:`davgate.dispel.mount`): each is checked for reading as the request's
own path is, with the same user and scopes, and the mount's listings show
only what passes.

Scopes. A token MAY carry WLCG-style scopes (``storage.read:/data/a``,
``storage.create:/data/a``, ``storage.modify:/data/a``; paths in davgate's
namespace, each covering itself and everything below). A token with at
least one ``storage.*`` scope can do only what its scopes cover, within the
user's rules; a token without any gets the user's rules. Reading needs
``storage.read``; creating a file or folder needs ``storage.create`` or
``storage.modify``; changing or removing one needs ``storage.modify``.

COPY reads its source and writes its Destination; MOVE also modifies its
source. A refusal is 403 with a one-line reason. A Destination the request
guard found malformed (:mod:`davgate.hardening.guard`) is refused here,
400, so that a request without credentials gets its 401 first.

Spaces. The management API's namespaces (live mounts below ``/<name>/``,
see :meth:`Namespace.space_of`) are reached only with their own access
methods, and those reach nothing else: a request authenticated by a
space's credentials carries :data:`SPACE_LIMIT` (set by
:mod:`davgate.api.davauth`), and every path it touches must lie in that
space; a request without it touches no space.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import unquote, urlparse

from wsgidav import util
from wsgidav.dav_error import HTTP_FORBIDDEN, DAVError
from wsgidav.mw.base_mw import BaseMiddleware

from davgate.auth.bearer import TOKEN_SCOPES
from davgate.auth.challenge import unauthorized
from davgate.hardening import DEFERRED
from davgate.namespace import ROOT_WRITE_REFUSED, VISIBLE, Namespace, split_path
from davgate.providers.resources import translate

__all__ = ["SPACE_LIMIT", "AccessControl", "AccessPolicy", "Need", "Rule", "Scopes", "needs_of"]

logger = logging.getLogger("davgate.authz")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PROPFIND"})
SPACE_LIMIT = "davgate.auth.space"  # the space whose own credentials authenticated the request
ANYONE = "*"


class Need(enum.Enum):
    """What a request does to one path."""

    READ = "read"
    CREATE = "create"
    MODIFY = "modify"
    WRITE = "write"  # create if nothing is there yet, else modify (PUT, LOCK)


def needs_of(method: str, path: str, destination: str | None) -> list[tuple[str, Need]]:
    """The (path, need) pairs a request must be allowed."""
    if method in READ_METHODS:
        return [(path, Need.READ)]
    if method in ("PUT", "LOCK"):
        return [(path, Need.WRITE)]
    if method in ("MKCOL", "UNLOCK"):
        return [(path, Need.CREATE)]
    if method == "COPY":
        return [(path, Need.READ)] + ([(destination, Need.WRITE)] if destination else [])
    if method == "MOVE":
        moved = [(path, Need.READ), (path, Need.MODIFY)]
        return moved + ([(destination, Need.WRITE)] if destination else [])
    return [(path, Need.MODIFY)]  # DELETE, PROPPATCH, and anything unknown


@dataclass(frozen=True)
class Rule:
    """The principals of one mount's ``access`` section."""

    read: frozenset[str]
    write: frozenset[str]


class AccessPolicy:
    """Mount rules and groups: may ``user`` read (or write) a mount?"""

    def __init__(self, rules: Mapping[str, Rule], groups: Mapping[str, Iterable[str]]) -> None:
        self.rules = dict(rules)
        self.groups = {name: frozenset(members) for name, members in groups.items()}

    def restricted(self, mount_path: str) -> bool:
        return mount_path in self.rules

    def allows(self, user: str, mount_path: str, need: Need) -> bool:
        rule = self.rules.get(mount_path)
        if rule is None:
            return True
        if not user:
            return False
        principals = rule.read | rule.write if need is Need.READ else rule.write
        return any(self._matches(user, principal) for principal in principals)

    def _matches(self, user: str, principal: str) -> bool:
        if principal == ANYONE:
            return True
        if principal.startswith("@"):
            return user in self.groups.get(principal[1:], ())
        return user == principal


class Scopes:
    """The ``storage.*`` scopes of one token, as path prefixes per kind."""

    KINDS: ClassVar[dict[Need, tuple[str, ...]]] = {
        Need.READ: ("read",),
        Need.CREATE: ("create", "modify"),
        Need.MODIFY: ("modify",),
    }

    def __init__(self, grants: Iterable[tuple[str, tuple[str, ...]]]) -> None:
        self.grants = tuple(grants)

    @classmethod
    def parse(cls, scopes: Iterable[str] | None) -> Scopes | None:
        """The storage scopes among ``scopes``; None if there are none at all."""
        storage = [s for s in scopes or () if s.startswith("storage.")]
        if not storage:
            return None
        return cls(grant for grant in map(_grant, storage) if grant is not None)

    def allows(self, path: str, need: Need) -> bool:
        """``need`` is READ, CREATE or MODIFY (WRITE resolved by the caller)."""
        segments = tuple(split_path(path))
        kinds = self.KINDS[need]
        return any(kind in kinds and segments[: len(prefix)] == prefix for kind, prefix in self.grants)

    def reaches(self, path: str) -> bool:
        """Whether a read scope covers ``path`` or something below it (so a listing may name it)."""
        segments = tuple(split_path(path))
        return any(
            kind == "read" and (segments[: len(prefix)] == prefix or prefix[: len(segments)] == segments)
            for kind, prefix in self.grants
        )


def _grant(scope: str) -> tuple[str, tuple[str, ...]] | None:
    """("read", ("data", "a")) for "storage.read:/data/a"; None if it grants nothing."""
    name, colon, path = scope.partition(":")
    kind = name.removeprefix("storage.")
    if not colon or kind not in ("read", "create", "modify") or not path.startswith("/"):
        return None
    segments = tuple(s for s in path.split("/") if s)
    if any(s in (".", "..") for s in segments):
        return None
    return kind, segments


@dataclass(frozen=True)
class Access:
    """What :class:`AccessControl` needs, put in WsgiDAV's config by the app."""

    namespace: Namespace
    policy: AccessPolicy
    realm: str


class Denied(Exception):
    def __init__(self, reason: str, anonymous: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.anonymous = reason, anonymous


class AccessControl(BaseMiddleware):
    """WsgiDAV middleware after the authenticator: 403 (or 401) unless allowed."""

    def __init__(self, wsgidav_app, next_app, config: dict) -> None:
        super().__init__(wsgidav_app, next_app, config)
        access: Access = config["davgate.access"]
        self.namespace, self.policy, self.realm = access.namespace, access.policy, access.realm

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        user = environ.get("wsgidav.auth.user_name") or ""
        scopes = Scopes.parse(environ.get(TOKEN_SCOPES))
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        refused = environ.get(DEFERRED)
        if refused is not None:  # a malformed Destination, answered now that the user is known
            logger.info("refused %s %s by %s: %s %s", method, path, shown_user(user), refused.status, refused.reason)
            return refused.respond(start_response)
        try:
            for target, need in needs_of(method, path, destination_of(environ)):
                self.check(user, scopes, target, need, environ)
        except Denied as e:
            logger.info("access denied: %s %s by %s (%s)", method, path, shown_user(user), e.reason)
            if e.anonymous:
                return unauthorized(start_response, self.realm, "authentication required")
            raise DAVError(HTTP_FORBIDDEN, context_info=e.reason) from None
        limit = environ.get(SPACE_LIMIT)
        environ[VISIBLE] = lambda listed: self.visible(user, scopes, limit, listed)
        return self.next_app(environ, start_response)

    def check(self, user: str, scopes: Scopes | None, path: str, need: Need, environ: dict) -> None:
        self.check_space(user, path, environ.get(SPACE_LIMIT))
        located = self.namespace.locate(path)
        if located is None:
            return self.check_virtual(user, scopes, path, need, environ)
        mount, rel = located
        if not self.policy.allows(user, mount.path, need):
            verb = "read" if need is Need.READ else "write"
            raise Denied(f"{verb} access to {mount.path} is not granted", anonymous=not user)
        if scopes is not None:
            resolved = self.resolve(need, mount, rel)
            if not scopes.allows(path, resolved):
                raise Denied(f"the token's scopes do not allow {resolved.value} of {path}")
        for source in reads_of(mount, rel):
            try:
                self.check(user, scopes, source, Need.READ, environ)
            except Denied as e:
                logger.info("%s reads %s: %s", path, source, e.reason)
                raise Denied(f"{path} reads from a mount the request may not read", e.anonymous) from None
        return None

    def check_space(self, user: str, path: str, limit: str | None) -> None:
        """A space's credentials reach that space only, and only they reach it."""
        space = self.namespace.space_of(path)
        if space == limit:
            return
        if limit is not None:
            raise Denied(f"these credentials are valid only under /{limit}/")
        raise Denied(f"/{space}/ takes only its own credentials", anonymous=not user)

    def check_virtual(self, user: str, scopes: Scopes | None, path: str, need: Need, environ: dict) -> None:
        """Above the mounts: only names, never written; a deep PROPFIND must be allowed every mount below."""
        if need is not Need.READ:
            raise Denied(ROOT_WRITE_REFUSED)
        deep = environ["REQUEST_METHOD"] == "PROPFIND" and environ.get("HTTP_DEPTH", "infinity").lower() == "infinity"
        if not deep:
            return
        prefix = tuple(split_path(path))
        for segments in self.namespace.mounts:
            if segments[: len(prefix)] == prefix:
                self.check(user, scopes, "/" + "/".join(segments), Need.READ, environ)

    def visible(self, user: str, scopes: Scopes | None, limit: str | None, path: str) -> bool:
        """Whether a listing may show ``path`` (a mount, or a place in one) to this request.

        It may when the request could read something there: its space, the
        mount's rules and what the mount reads from elsewhere allow reading,
        and the token's scopes (if any) cover ``path`` or something below it.
        """
        try:
            self.check_space(user, path, limit)
        except Denied:
            return False
        located = self.namespace.locate(path)
        if located is None:
            return True
        mount, rel = located
        if not self.policy.allows(user, mount.path, Need.READ):
            return False
        if scopes is not None and not scopes.reaches(path):
            return False
        return all(self.visible(user, scopes, limit, source) for source in reads_of(mount, rel))

    @staticmethod
    def resolve(need: Need, mount, rel: str) -> Need:
        if need is not Need.WRITE:
            return need
        with translate():
            exists = mount.stat(rel) is not None
        return Need.MODIFY if exists else Need.CREATE


def reads_of(mount, rel: str) -> list[str]:
    """The other namespace paths a request for ``rel`` of ``mount`` reads (the ``reads`` extension point)."""
    reads = getattr(mount, "reads", None)
    if reads is None:
        return []
    with translate():
        return reads(rel)


def shown_user(user: str) -> str:
    return repr(user) if user else "anonymous"


def destination_of(environ: dict) -> str | None:
    """The Destination header's path, computed exactly as WsgiDAV computes it (None if there is none).

    The request guard has already taken out a Destination that does not
    parse (:mod:`davgate.hardening.guard`); this never raises for one.
    """
    value = environ.get("HTTP_DESTINATION")
    if not value:
        return None
    try:
        path = urlparse(unquote(value), allow_fragments=False).path
    except ValueError:
        return None
    return util.normalize_path(path)
