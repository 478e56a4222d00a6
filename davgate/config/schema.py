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


ExistingFile = Annotated[Path, MustExist.FILE]
ExistingFolder = Annotated[Path, MustExist.FOLDER]


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 0  # 0: one worker process per core
    threads: int = 32  # request threads per worker
    backlog: int = 1024
    block_size: int = 1 * MiB
    shutdown_timeout: float = 10.0
    max_header_bytes: int = 64 * 1024


@dataclass(frozen=True)
class JwtConfig:
    users: ExistingFile
    audience: Optional[str] = None
    issuer: Optional[str] = None


@dataclass(frozen=True)
class AuthConfig:
    htpasswd: Optional[ExistingFile] = None
    jwt: Optional[JwtConfig] = None
    anonymous: Literal["none", "read", "write"] = "none"
    realm: str = "davgate"


@dataclass(frozen=True)
class LocalMount:
    type: Literal["local"]
    root: ExistingFolder
    readonly: bool = False
    fsync: bool = True  # flush each upload to disk before it replaces the old file


@dataclass(frozen=True)
class SftpMount:
    type: Literal["sftp"]
    host: str
    user: str
    key: ExistingFile
    port: int = 22
    root: str = "/"
    known_hosts: Optional[ExistingFile] = None
    timeout: float = 10.0
    readonly: bool = False


@dataclass(frozen=True)
class S3Mount:
    type: Literal["s3"]
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    prefix: str = ""
    timeout: float = 10.0
    readonly: bool = False


@dataclass(frozen=True)
class DispelMount:
    type: Literal["dispel"]
    templates: ExistingFolder
    source: str


MountConfig = Union[LocalMount, SftpMount, S3Mount, DispelMount]


@dataclass(frozen=True)
class LocalCache:
    type: Literal["local"]
    root: Path
    max_bytes: int = 10 * 1024 * MiB


@dataclass(frozen=True)
class S3Cache:
    type: Literal["s3"]
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    prefix: str = "cache/"
    max_bytes: int = 100 * 1024 * MiB


@dataclass(frozen=True)
class SqliteState:
    type: Literal["sqlite"]
    path: Path


@dataclass(frozen=True)
class MongoState:
    type: Literal["mongo"]
    url: str
    database: str = "davgate"


@dataclass(frozen=True)
class ApiConfig:
    admin_token: Optional[str] = None


@dataclass(frozen=True)
class Config:
    """The whole configuration, as read from one file."""

    state: Union[SqliteState, MongoState]
    mounts: dict[str, MountConfig] = field(default_factory=dict)
    server: ServerConfig = field(default_factory=ServerConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    cache: Optional[Union[LocalCache, S3Cache]] = None
    api: ApiConfig = field(default_factory=ApiConfig)
