"""Build the WSGI application from a davgate configuration.

This is the one place where WsgiDAV's own configuration dict is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wsgidav.error_printer import ErrorPrinter
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from davgate import auth, dispel, providers, state
from davgate.access import Access, AccessControl, AccessPolicy, Rule
from davgate.access_log import AccessLog
from davgate.api import ApiService
from davgate.api.davauth import CONFIG_KEY as SPACES_KEY
from davgate.api.davauth import SpaceAuth
from davgate.auth.bearer import VERIFIED_USER, BearerAuth
from davgate.auth.domain import Authenticator, AuthSetup, DomainController
from davgate.auth.jwks import JwksKeys
from davgate.auth.jwt import JwtPolicy, JwtVerifier
from davgate.auth.keys import ASYMMETRIC_ALGORITHMS, UsersFile
from davgate.auth.throttle import AuthThrottle
from davgate.compat import ClientQuirks
from davgate.config import Config
from davgate.digest import DigestMiddleware, Digests
from davgate.errors import BusyStoreAnswer
from davgate.hardening import Limits, RequestGuard
from davgate.namespace import Namespace
from davgate.ops.wiring import Ops, build_ops
from davgate.pages import Assets, FolderPages
from davgate.state.wsgidav_adapters import StoreLockStorage, StorePropertyManager


def build_mounts(config: Config) -> dict[str, providers.Mount]:
    """One Mount object per configured mount path."""
    return {path: providers.load(options.type)(path, options) for path, options in config.mounts.items()}


def open_state(config: Config) -> state.StateStore:
    options = {k: v for k, v in vars(config.state).items() if k != "type"}
    return state.open_store(config.state.type, **options)


def auth_setup(config: Config) -> AuthSetup:
    passwords = None
    if config.auth.htpasswd is not None:
        passwords = auth.load("htpasswd", path=config.auth.htpasswd)
    return AuthSetup(
        realm=config.auth.realm,
        anonymous=config.auth.anonymous,
        passwords=passwords,
        tokens=token_verifier(config),
    )


def token_verifier(config: Config) -> JwtVerifier | None:
    options = config.auth.jwt
    if options is None:
        return None
    policy = JwtPolicy(
        audience=options.audience,
        issuer=options.issuer,
        algorithms=frozenset(options.algorithms) if options.algorithms else ASYMMETRIC_ALGORITHMS,
        max_lifetime=options.max_lifetime,
        leeway=options.leeway,
    )
    jwks = None if options.jwks is None else JwksKeys(options.jwks, refresh=options.jwks_refresh)
    return JwtVerifier(UsersFile(options.users), policy, jwks)


def auth_throttle(config: Config, ops: Ops | None) -> AuthThrottle | None:
    """The failed-authentication throttle of ``auth.throttle``; None when it is off."""
    options = config.auth.throttle
    if options.failures == 0:
        return None
    observer = ops.auth if ops is not None else None
    return AuthThrottle(options.failures, options.window, options.max_entries, observer)


def access_policy(config: Config) -> AccessPolicy:
    rules = {
        path: Rule(frozenset(access.read), frozenset(access.write))
        for path, mount in config.mounts.items()
        if (access := getattr(mount, "access", None)) is not None
    }
    return AccessPolicy(rules, config.groups)


@dataclass
class Application:
    """The WSGI callable plus what must be closed with it."""

    wsgi: WsgiDAVApp
    store: state.StateStore
    mounts: dict[str, providers.Mount]
    ops: Ops | None = None  # request ids, metrics, /healthz, /readyz
    limits: Limits = field(default_factory=Limits)  # what the request guard allows
    api: ApiService | None = None  # the management API at /api/v1, and its spaces
    throttle: AuthThrottle | None = None  # 429 after too many failed authentications, before any check

    def __post_init__(self) -> None:
        inner = self.wsgi if self.api is None else self.api.wrap(self.wsgi)
        if self.throttle is not None:
            inner = self.throttle.wrap(inner)
        guarded = RequestGuard(inner, self.limits)  # malformed and hostile requests stop here
        self.handler = self.ops.wrap(guarded) if self.ops is not None else AccessLog(guarded)

    def __call__(self, environ: dict, start_response):
        return self.handler(environ, start_response)

    def close(self) -> None:
        if self.api is not None:
            self.api.close()
        for mount in self.mounts.values():
            mount.close()
        if self.ops is not None:
            self.ops.close()
        self.store.close()


def wsgidav_config(
    config: Config, namespace: Namespace, store: state.StateStore, ops: Ops | None = None, api: ApiService | None = None
) -> dict:
    return {
        "provider_mapping": {"/": namespace},
        "mount_path": None,
        "block_size": config.server.block_size,
        "lock_storage": StoreLockStorage(store),
        "property_manager": StorePropertyManager(store),
        "http_authenticator": {
            "domain_controller": DomainController,
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
            "trusted_auth_header": VERIFIED_USER,  # set only by BearerAuth, after verifying a token
        },
        "davgate.auth": auth_setup(config),
        "davgate.access": Access(namespace, access_policy(config), config.auth.realm),
        **(ops.wsgidav_settings() if ops is not None else {}),
        "davgate.digests": namespace.digests,
        **({SPACES_KEY: (namespace, api.spaces)} if api is not None else {}),
        "middleware_stack": [
            ErrorPrinter,
            BusyStoreAnswer,  # a state store busy past its timeout: 503 + Retry-After
            Assets,  # /.davgate/: the pages' CSS and script, the same for everyone, before authentication
            BearerAuth if api is None else SpaceAuth,  # SpaceAuth: BearerAuth, and the API's spaces
            Authenticator,
            *(ops.middleware() if ops is not None else ()),  # /metrics, for any authenticated user
            AccessControl,
            DigestMiddleware,
            ClientQuirks,
            FolderPages,  # GET of a folder: davgate's page (davgate.pages)
            RequestResolver,
        ],
        "suppress_version_info": True,
        "add_header_MS_Author_Via": True,
        "logging": {"enable": False},
        "verbose": 2,  # at 3 WsgiDAV formats a log line per request, logged or not (AccessLog logs them)
    }


def build_app(config: Config, mounts: dict[str, providers.Mount] | None = None) -> Application:
    """The davgate WSGI application; ``mounts`` defaults to fresh ones from ``config``."""
    mounts = build_mounts(config) if mounts is None else mounts
    store = open_state(config)
    for mount in mounts.values():
        mount.use_state(store)
    cache = dispel.attach(mounts, store, config.cache)
    ops = build_ops(config, store, mounts, cache)
    namespace = Namespace(mounts, Digests(store), propfind_depth_infinity=config.server.propfind_depth_infinity)
    api = ApiService(config, store, namespace, ops.outbound_refusals())
    wsgi = WsgiDAVApp(wsgidav_config(config, namespace, store, ops, api))
    api.start()
    limits = Limits(config.server.max_xml_body, config.server.max_xml_elements)
    throttle = auth_throttle(config, ops)
    return Application(wsgi=wsgi, store=store, mounts=mounts, ops=ops, limits=limits, api=api, throttle=throttle)
