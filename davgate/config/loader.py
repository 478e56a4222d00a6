"""Read the YAML file, substitute ``${ENV}``, build and cross-check the schema."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from davgate.config.schema import Config, DispelMount
from davgate.config.validate import Builder, ConfigError, describe

FORBIDDEN_SEGMENTS = {"", ".", ".."}
MIN_MEMORY_LIMIT = 256 * 1024 * 1024  # bytes: below, a pipeline process cannot even import numpy everywhere

# Parts of the public schema whose backends are not built yet: refused at
# start with a message saying so, rather than accepted and ignored.
NOT_BUILT: dict[tuple[str, str], str] = {}


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the configuration file at ``path``."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("", "configuration file does not exist", source) from None
    except OSError as error:
        raise ConfigError("", f"cannot read configuration file: {error.strerror}", source) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError("", f"not valid YAML: {one_line(error)}", source) from None
    return parse_config(data if data is not None else {}, source, environ)


def parse_config(data: Any, source: str = "", environ: Mapping[str, str] | None = None) -> Config:
    """Validate already-parsed YAML data; errors name ``source``."""
    try:
        config = Builder(os.environ if environ is None else environ).build(Config, data, "")
        check_mounts(config)
        check_built(config)
        check_jwt(config)
        check_access(config)
        check_dispel(config)
        check_cache(config)
        check_outbound(config)
    except ConfigError as error:
        raise ConfigError(error.key, error.problem, source) from None
    return config


def check_mounts(config: Config) -> None:
    """Mount paths are clean absolute paths and none lies inside another."""
    for path in config.mounts:
        check_mount_path(path)
    ordered = sorted(config.mounts, key=lambda p: p.lower())
    for first, second in zip(ordered, ordered[1:]):
        if second.lower() == first.lower() or second.lower().startswith(first.lower() + "/"):
            raise ConfigError(f"mounts.{second}", f"overlaps mount {first}")


def check_mount_path(path: str) -> None:
    key = f"mounts.{path}"
    if not path.startswith("/") or path == "/":
        raise ConfigError(key, "a mount path starts with '/' and names a folder, e.g. /data")
    if path.endswith("/"):
        raise ConfigError(key, "a mount path has no trailing '/'")
    segments = path[1:].split("/")
    if any(s in FORBIDDEN_SEGMENTS for s in segments):
        raise ConfigError(key, "a mount path has no empty, '.' or '..' segments")
    if any(ch in path for ch in "\\\x00?#%") or not path.isprintable():
        raise ConfigError(key, f"a mount path may not contain {describe(path)}'s special characters")


def check_built(config: Config) -> None:
    from davgate import providers

    for path, mount in config.mounts.items():
        if not providers.is_available(mount.type):
            raise ConfigError(f"mounts.{path}.type", f"mount type '{mount.type}' is not built yet")
    for section in ("cache", "state"):
        value = getattr(config, section)
        what = NOT_BUILT.get((section, getattr(value, "type", None)))
        if what:
            raise ConfigError(f"{section}.type", f"{what} is not built yet")


def check_jwt(config: Config) -> None:
    """Limits the schema cannot say, and a users file that can be read."""
    jwt = config.auth.jwt
    if jwt is None:
        return
    if jwt.algorithms is not None and not jwt.algorithms:
        raise ConfigError("auth.jwt.algorithms", "name at least one algorithm, or leave it out")
    for name, low, high in (("max_lifetime", 1, None), ("leeway", 0, 600), ("jwks_refresh", 1, None)):
        value = getattr(jwt, name)
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise ConfigError(f"auth.jwt.{name}", f"expected {bound} seconds, got {value}")
    from davgate.auth.keys import parse_users

    try:
        _, problems = parse_users(jwt.users.read_bytes(), str(jwt.users))
    except (OSError, ValueError) as error:
        raise ConfigError("auth.jwt.users", f"{jwt.users}: {error}") from None
    if problems:
        raise ConfigError("auth.jwt.users", f"{jwt.users}: {problems[0]}")


def check_access(config: Config) -> None:
    """Groups hold user names; every "@group" in a mount's access rules is defined."""
    for name, members in config.groups.items():
        if not name or any(c in name for c in "@* ") or not name.isprintable():
            raise ConfigError(f"groups.{name}", "a group name is printable text without '@', '*' or spaces")
        for i, member in enumerate(members):
            if member.startswith("@") or member == "*":
                raise ConfigError(f"groups.{name}[{i}]", "a group holds user names, not groups or '*'")
    for path, mount in config.mounts.items():
        access = getattr(mount, "access", None)
        for level in ("read", "write") if access is not None else ():
            for i, principal in enumerate(getattr(access, level)):
                if principal.startswith("@") and principal[1:] not in config.groups:
                    raise ConfigError(
                        f"mounts.{path}.access.{level}[{i}]", f"group {principal[1:]!r} is not defined in groups"
                    )


def check_dispel(config: Config) -> None:
    """A dispel mount reads from another (non-dispel) mount and keeps results in the cache."""
    for path, mount in config.mounts.items():
        if mount.type != "dispel":
            continue
        key = f"mounts.{path}"
        source = config.mounts.get("/" + mount.source.strip("/"))
        if source is None:
            raise ConfigError(f"{key}.source", f"{mount.source!r} is not a configured mount")
        if source.type == "dispel":
            raise ConfigError(
                f"{key}.source", "the source of a dispel mount is a storage mount, not another dispel mount"
            )
        if config.cache is None:
            raise ConfigError(
                "cache", f"the dispel mount {path} needs a cache section, e.g. {{type: local, root: var/cache}}"
            )
        for name, low in (("workers", 1), ("time_limit", 0.001), ("idle_timeout", 0.001), ("tile_size", 16)):
            if getattr(mount, name) < low:
                raise ConfigError(f"{key}.{name}", f"expected at least {low:g}, got {getattr(mount, name)}")
        check_dispel_limits(key, mount)
        for name, target in mount.elements.items():
            if ":" not in target:
                raise ConfigError(f"{key}.elements.{name}", f"expected module:function, got {target!r}")


def check_dispel_limits(key: str, mount: DispelMount) -> None:
    """A memory limit too small for a pipeline process to start is refused; so is a read limit of nothing."""
    if mount.memory_limit != 0 and mount.memory_limit < MIN_MEMORY_LIMIT:
        raise ConfigError(
            f"{key}.memory_limit", f"expected 0 (no limit) or at least {MIN_MEMORY_LIMIT}, got {mount.memory_limit}"
        )
    if mount.max_remote_read < 1:
        raise ConfigError(f"{key}.max_remote_read", f"expected at least 1, got {mount.max_remote_read}")


def check_cache(config: Config) -> None:
    """The cache's limits; an s3 cache's options as an s3 mount's are checked."""
    cache = config.cache
    if cache is None:
        return
    if cache.max_bytes < 0:
        raise ConfigError("cache.max_bytes", f"expected at least 0, got {cache.max_bytes}")
    if cache.type == "s3":
        from davgate.dispel.cache_s3 import check_options

        check_options(cache)


def check_outbound(config: Config) -> None:
    """Each ``server.outbound_allow`` entry is a network, an address or a host name, with a port or not."""
    from davgate.hardening.outbound import parse_entry  # davgate.hardening reads the config: imported when used

    for i, entry in enumerate(config.server.outbound_allow):
        try:
            parse_entry(entry)
        except ValueError as error:
            raise ConfigError(f"server.outbound_allow[{i}]", str(error)) from None


def one_line(error: Exception) -> str:
    return " ".join(str(error).split())
