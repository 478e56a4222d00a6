"""The API as one object: its parts built from the configuration, and the WSGI gateway in front of WsgiDAV."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from davgate.api.handlers import Handlers
from davgate.api.infrastructures import Registry
from davgate.api.query import Index, Rescanner
from davgate.api.quotas import Quotas
from davgate.api.routes import Router
from davgate.api.sealing import Sealer
from davgate.api.spaces import Folders, LiveSpaces, MountFactory
from davgate.api.staging import Stager
from davgate.api.tokens import ApiAuthenticator, ServerTokens, load_signing_key
from davgate.auth.jwt import JwtPolicy
from davgate.auth.keys import ASYMMETRIC_ALGORITHMS
from davgate.config import Config
from davgate.hardening.outbound import OutboundRule
from davgate.namespace import Namespace
from davgate.state import StateStore

__all__ = ["PREFIX", "ApiService", "Gateway", "api_folder", "volumes_folder"]

PREFIX = "/api/v1"


def api_folder(config: Config) -> Path:
    """``api.folder``, else the SQLite file's folder, else ./var."""
    if config.api.folder is not None:
        return config.api.folder
    path = getattr(config.state, "path", None)
    return Path(path).parent if path is not None else Path("var").resolve()


def volumes_folder(config: Config) -> Path:
    """``api.volumes``; else ``<api folder>/volumes``, unless that is inside the SQLite state's folder.

    Native volumes are kept apart from the SQLite state file, so that
    filling them does not fill the folder the store writes to: without
    ``api.folder`` the API folder is the state file's own, and volumes go
    beside it, to ``<that folder>-volumes``. A ``api.folder`` of its own
    (as a shared folder of several replicas is) keeps its volumes inside.
    Volumes made before infrastructures had ids stay in
    ``<api folder>/volumes/<name>`` (see :class:`~davgate.api.spaces.Folders`).
    """
    if config.api.volumes is not None:
        return config.api.volumes
    folder = api_folder(config)
    if config.api.folder is None and getattr(config.state, "path", None) is not None:
        folder = folder.resolve()
        return folder.with_name(f"{folder.name}-volumes")
    return folder / "volumes"


def jwt_policy(config: Config) -> JwtPolicy:
    """The server's JWT policy (``auth.jwt``), for the tokens of webdav-jwt users."""
    options = config.auth.jwt
    if options is None:
        return JwtPolicy()
    algorithms = frozenset(options.algorithms) if options.algorithms else ASYMMETRIC_ALGORITHMS
    return JwtPolicy(options.audience, options.issuer, algorithms, options.max_lifetime, options.leeway)


class ApiService:
    """Everything behind ``/api/v1`` and the spaces, for one process."""

    def __init__(
        self, config: Config, store: StateStore, namespace: Namespace, refused: Callable[[str], None] | None = None
    ) -> None:
        self.options, self.store, self.namespace = config.api, store, namespace
        self.outbound = OutboundRule(config.server.outbound_allow, refused=refused)  # refused: counts refusals
        folder = api_folder(config)
        key = load_signing_key(self.options.key or folder / "api-signing-key.pem")
        self.tokens = ServerTokens(store, key, self.options.token_ttl)
        folders = Folders(folder, volumes_folder(config))
        self.quotas = Quotas(store, self.options, folders)
        factory = MountFactory(store, folders, Sealer(key), self.quotas, self.outbound)
        self.spaces = LiveSpaces(store, factory, self.tokens, jwt_policy(config))
        namespace.attach(self.spaces)
        self.index = Index(store, namespace, self.spaces, self.options.rescan_rate, self.options.rescan_interval)
        self.registry = Registry(store, namespace, factory, folders)
        self.registry.on_created.append(self.index.seed)
        self.stager = Stager(store, namespace, self.spaces, self.index, self.options, self.outbound)
        self.rescanner = Rescanner(self.index)
        self.router = Router(PREFIX, ApiAuthenticator(self.options.admin_token, self.tokens), self.options.max_body)
        Handlers(self).register(self.router)

    def start(self) -> None:
        """Start this process's background threads (staging, index rescans)."""
        self.stager.start()
        self.rescanner.start()

    def base_url(self, environ: dict) -> str:
        """How clients reach this server: ``api.public_url``, else the request's own scheme and Host."""
        if self.options.public_url:
            return self.options.public_url.rstrip("/")
        host = (
            environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
        )
        return f"{environ.get('wsgi.url_scheme', 'http')}://{host}"

    def wrap(self, dav: Callable) -> Gateway:
        return Gateway(self, dav)

    def close(self) -> None:
        self.stager.stop()
        self.rescanner.stop()
        self.spaces.close()


class Gateway:
    """In front of WsgiDAV: ``/api/v1`` goes to the API; writes under indexed spaces update the index."""

    def __init__(self, service: ApiService, dav: Callable) -> None:
        self.router, self.index, self.dav = service.router, service.index, dav

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX) and (len(path) == len(PREFIX) or path[len(PREFIX)] == "/"):
            return self.router(environ, start_response)
        if self.index.watches(environ):
            start_response = self.index.hook(environ, start_response)
        return self.dav(environ, start_response)
