"""The configuration schema: every key davgate knows, its type and its default.

One YAML file with the sections below. Relative paths are resolved against
the working directory of the process that reads the file. Mount, cache and
state sections are chosen by their ``type`` key.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from davgate.config.validate import ConfigError

MiB = 1024 * 1024


class MustExist(enum.Enum):
    """Marks a path field that must name an existing file or folder at start."""

    FILE = "file"
    FOLDER = "folder"

    def check(self, path: Path, key: str) -> None:
        exists = path.is_file() if self is MustExist.FILE else path.is_dir()
        if not exists:
            raise ConfigError(key, f"{self.value} {path} does not exist")


class HttpUrl:
    """Marks a text field that must be an http:// or https:// URL."""

    @staticmethod
    def check(value: str, key: str) -> None:
        if not value.startswith(("http://", "https://")):
            raise ConfigError(key, f"expected an http(s) URL, got {value!r}")


ExistingFile = Annotated[Path, MustExist.FILE]
ExistingFolder = Annotated[Path, MustExist.FOLDER]
Url = Annotated[str, HttpUrl()]

#: Signature algorithms a configuration may allow: asymmetric ones only.
JwtAlgorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


@dataclass(frozen=True)
class ServerConfig:
    engine: Literal["cheroot", "granian"] = "cheroot"  # granian: faster for small requests
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 0  # 0: one worker process per core
    threads: int = 32  # request threads per worker
    backlog: int = 1024
    block_size: int = 1 * MiB
    shutdown_timeout: float = 10.0
    max_header_bytes: int = 64 * 1024
    max_xml_body: int = 1 * MiB  # PROPFIND/PROPPATCH/LOCK (and COPY/MOVE) bodies beyond this: 413
    max_xml_elements: int = 10_000  # elements in one such body beyond this: 413
    propfind_depth_infinity: bool = False  # serve PROPFIND Depth: infinity (a whole tree in one answer); else 403
    allow_insecure_basic: bool = False  # accept credentials over plain HTTP beyond loopback (see davgate.hardening)
    outbound_allow: tuple[str, ...] = ()  # non-public places API users may point davgate at: CIDRs, hosts, host:port
    tls_cert: Optional[ExistingFile] = None  # PEM certificate (chain); with tls_key: serve https
    tls_key: Optional[ExistingFile] = None  # PEM private key of tls_cert
    log_format: Literal["text", "json"] = "text"  # json: one object per line (--log-format wins)
    ready_timeout: float = 5.0  # seconds /readyz waits for the state store and each mount


@dataclass(frozen=True)
class JwtConfig:
    """Bearer tokens; see davgate.auth.jwt for what each check means."""

    users: ExistingFile  # {"user@domain": {"name": ..., "publicKey": ...}}
    audience: Optional[str] = None  # when set, aud is required and must match
    issuer: Optional[str] = None  # when set, iss is required and must match
    algorithms: Optional[tuple[JwtAlgorithm, ...]] = None  # narrows each key's own family
    max_lifetime: int = 24 * 3600  # seconds from iat (or now) to exp
    leeway: int = 30  # seconds of clock skew allowed in exp, nbf and iat
    jwks: Optional[Union[Url, ExistingFile]] = None  # issuer keys, chosen by kid
    jwks_refresh: int = 300  # seconds between JWKS fetches


@dataclass(frozen=True)
class ThrottleConfig:
    """Failed-authentication throttling, per client address and per user name (see davgate.auth.throttle)."""

    failures: int = 10  # failures allowed within window; the next attempts get 429 until one ages out; 0: off
    window: float = 600.0  # seconds a failure counts
    max_entries: int = 10_000  # addresses (and user names) tracked per process; the least recently failed go first

    def __post_init__(self) -> None:
        if self.failures < 0:
            raise ConfigError("auth.throttle.failures", f"expected 0 (off) or more, got {self.failures}")
        if self.window <= 0:
            raise ConfigError("auth.throttle.window", f"expected a positive number of seconds, got {self.window}")
        if self.max_entries < 1:
            raise ConfigError("auth.throttle.max_entries", f"expected at least 1, got {self.max_entries}")


@dataclass(frozen=True)
class AuthConfig:
    htpasswd: Optional[ExistingFile] = None
    jwt: Optional[JwtConfig] = None
    anonymous: Literal["none", "read", "write"] = "none"
    realm: str = "davgate"
    throttle: ThrottleConfig = field(default_factory=ThrottleConfig)


@dataclass(frozen=True)
class AccessRules:
    """Who may use a mount: user names, "@group" or "*"; write implies read."""

    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()


@dataclass(frozen=True)
class LocalMount:
    type: Literal["local"]
    root: ExistingFolder
    readonly: bool = False
    access: Optional[AccessRules] = None
    fsync: bool = True  # flush each upload to disk before it replaces the old file


@dataclass(frozen=True)
class SftpMount:
    type: Literal["sftp"]
    host: str
    user: str
    key: ExistingFile  # private key (OpenSSH format), e.g. from `davgate sftp-enroll`
    port: int = 22
    root: str = "/"  # remote folder; relative to the login folder unless absolute
    known_hosts: Optional[ExistingFile] = None  # unset: trust on first use, pinned in the state store
    timeout: float = 10.0  # seconds to connect, and to wait for each answer
    readonly: bool = False
    connections: int = 4  # SSH connections per worker process
    access: Optional[AccessRules] = None


@dataclass(frozen=True)
class S3Mount:
    type: Literal["s3"]
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str = field(repr=False)  # never shown in logs or errors
    region: str = "us-east-1"
    prefix: str = ""
    timeout: float = 10.0  # seconds to connect, and to wait for each answer
    readonly: bool = False
    access: Optional[AccessRules] = None
    create_bucket: bool = False  # create a missing bucket at start (else: a configuration error)
    part_size: int = 8 * MiB  # multipart upload part size, 5 MiB to 5 GiB
    upload_concurrency: int = 3  # parts of one upload in flight at once
    max_connections: int = 100  # connection pool size; keep above server.threads
    retries: int = 1  # retries after a failed attempt (connection errors, 5xx, throttling)
    page_size: int = 1000  # keys per list_objects_v2 page, 1 to 1000
    addressing_style: Literal["path", "virtual"] = "path"


@dataclass(frozen=True)
class DispelMount:
    """Virtual, read-only paths that run the templates in ``templates`` (see davgate.dispel)."""

    type: Literal["dispel"]
    templates: ExistingFolder  # folder of <name>.yaml templates
    source: str  # the mount that template input paths are relative to, e.g. /data
    access: Optional[AccessRules] = None
    workers: int = 1  # pipeline processes per server worker (whose default is one per core), started when needed
    time_limit: float = 60.0  # seconds a pipeline run may take (a template may set its own)
    idle_timeout: float = 300.0  # seconds an idle pipeline process is kept
    tile_size: int = 1024  # pixels: the tiling of windows the tree lists (a template may set its own)
    elements: dict[str, str] = field(default_factory=dict)  # extra elements, name: "module:function"
    memory_limit: int = 2048 * MiB  # bytes of address space per pipeline process (a run beyond: 507); 0: no limit
    max_remote_read: int = 256 * MiB  # bytes a pipeline reads at once from a non-local source (beyond: 507)


MountConfig = Union[LocalMount, SftpMount, S3Mount, DispelMount]


@dataclass(frozen=True)
class LocalCache:
    type: Literal["local"]
    root: Path
    max_bytes: int = 10 * 1024 * MiB


@dataclass(frozen=True)
class S3Cache:
    """DISPEL results as objects of an S3 bucket (Ceph RGW); see davgate.dispel.cache_s3."""

    type: Literal["s3"]
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str = field(repr=False)  # never shown in logs or errors
    region: str = "us-east-1"
    prefix: str = "cache/"
    max_bytes: int = 100 * 1024 * MiB
    staging: Optional[Path] = None  # local folder where results are made before upload; default: a temp folder
    create_bucket: bool = False  # create a missing bucket at start (else: a configuration error)
    timeout: float = 10.0  # seconds to connect, and to wait for each answer
    retries: int = 1  # retries after a failed attempt
    max_connections: int = 100  # connection pool size; keep above server.threads
    part_size: int = 8 * MiB  # multipart upload part size, 5 MiB to 5 GiB
    upload_concurrency: int = 3  # parts of one upload in flight at once
    addressing_style: Literal["path", "virtual"] = "path"


@dataclass(frozen=True)
class SqliteState:
    type: Literal["sqlite"]
    path: Path
    busy_timeout: float = 10.0  # seconds a write waits while another process holds the file's write lock


@dataclass(frozen=True)
class MongoState:
    type: Literal["mongo"]
    url: str
    database: str = "davgate"


#: The per-user quotas of the API: ``api.quota_<name>``.
QUOTAS = ("infrastructures", "metadata_entries", "metadata_bytes", "queued_jobs", "volume_bytes")


@dataclass(frozen=True)
class PostgresState:
    """A PostgreSQL database every davgate host shares (see davgate.state.postgres, docs/SCALING.md)."""

    type: Literal["postgres"]
    url: str = field(repr=False)  # postgresql://user:password@host:port/database; its password never shown
    pool: int = 10  # connections each davgate process opens at most; keep at server.threads or above
    timeout: float = 5.0  # seconds a call waits to connect, for a pooled connection or another's lock; then 503

    def __post_init__(self) -> None:
        if not self.url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("state.url", "expected a postgresql:// URL")
        if self.pool < 1:
            raise ConfigError("state.pool", f"expected at least 1, got {self.pool}")
        if not self.timeout > 0:
            raise ConfigError("state.timeout", f"expected a positive number, got {self.timeout}")


@dataclass(frozen=True)
class ApiConfig:
    """The management API at /api/v1 (see davgate.api): infrastructures, tokens, query, staging, metadata."""

    admin_token: Optional[str] = field(default=None, repr=False)  # the administrator's x-access-token (16+ chars)
    folder: Optional[Path] = None  # enrolled SSH keys; default: the SQLite file's folder (else ./var)
    # native volumes, by infrastructure id; default: <folder>/volumes, but <SQLite file's folder>-volumes when
    # folder is not set (apart from the state store). Volumes made before ids stay in <folder>/volumes/<name>.
    volumes: Optional[Path] = None
    key: Optional[Path] = (
        None  # Ed25519 key that signs API tokens, made on first start; default: <folder>/api-signing-key.pem
    )
    public_url: Optional[Url] = None  # how clients reach davgate, for endpoint URLs; default: each request's Host
    token_ttl: int = 30 * 24 * 3600  # seconds an API token is valid
    rescan_interval: float = 300.0  # seconds before the query index lists a folder again
    rescan_rate: int = 10  # folder listings per second per adaptor, at most, for the query index
    copy_workers: int = 2  # copies running at once in each worker process
    copy_lease: float = 30.0  # seconds a copy stays claimed without progress (a dead process's copy restarts then)
    copy_attempts: int = 3  # starts of one copy before it fails (restarts after a crash or an outage count)
    copy_rate_limit: int = 0  # bytes per second per copy; 0: no limit
    webhook_attempts: int = 6  # deliveries tried before a webhook is given up
    webhook_backoff: float = 2.0  # seconds before the first retry; doubled each time, at most 300
    webhook_timeout: float = 10.0  # seconds to connect and to get the answer
    webhook_allow: tuple[Url, ...] = ()  # webhooks only to URLs below one of these (scheme, host, port, path); (): any
    poll_interval: float = 1.0  # seconds between looks at the job queue for work queued by other processes
    job_retention: float = 7 * 24 * 3600  # seconds finished jobs are kept
    max_body: int = 1 * MiB  # largest request body the API reads
    # What one API user may hold (the administrator's token is not limited); 0: no limit. Over one: 507.
    quota_infrastructures: int = 20
    quota_metadata_entries: int = 10_000
    quota_metadata_bytes: int = 64 * MiB  # of stored JSON text
    quota_queued_jobs: int = 1000  # copy jobs queued or running
    quota_volume_bytes: int = 10 * 1024 * MiB  # of files in the user's native volumes

    def __post_init__(self) -> None:
        if self.admin_token is not None and len(self.admin_token) < 16:
            raise ConfigError("api.admin_token", "expected at least 16 characters")
        for name in ("token_ttl", "rescan_rate", "copy_workers", "copy_attempts", "webhook_attempts", "max_body"):
            if getattr(self, name) < 1:
                raise ConfigError(f"api.{name}", f"expected at least 1, got {getattr(self, name)}")
        for name in ("rescan_interval", "copy_lease", "webhook_backoff", "webhook_timeout", "poll_interval"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"api.{name}", f"expected a positive number, got {getattr(self, name)}")
        if self.copy_rate_limit < 0 or self.job_retention < 0:
            raise ConfigError("api", "copy_rate_limit and job_retention cannot be negative")
        for name in QUOTAS:
            if getattr(self, f"quota_{name}") < 0:
                raise ConfigError(
                    f"api.quota_{name}", f"expected 0 (no limit) or more, got {getattr(self, f'quota_{name}')}"
                )


@dataclass(frozen=True)
class MetricsConfig:
    """``/metrics`` (Prometheus text format, any authenticated user) and what it records."""

    enabled: bool = True
    folder: Optional[Path] = None  # per-process counter files; default: <state folder>/metrics
    latency_buckets: tuple[float, ...] = (
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    )  # fmt: skip


@dataclass(frozen=True)
class Config:
    """The whole configuration, as read from one file."""

    state: Union[SqliteState, MongoState, PostgresState]
    mounts: dict[str, MountConfig] = field(default_factory=dict)
    server: ServerConfig = field(default_factory=ServerConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name: users, for "@name"
    cache: Optional[Union[LocalCache, S3Cache]] = None
    api: ApiConfig = field(default_factory=ApiConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
