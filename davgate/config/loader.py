"""Read the YAML file, substitute ``${ENV}``, build and cross-check the schema."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from davgate.config.schema import Config
from davgate.config.validate import Builder, ConfigError, describe

FORBIDDEN_SEGMENTS = {"", ".", ".."}

# Parts of the public schema whose backends are not built yet: refused at
# start with a message saying so, rather than accepted and ignored.
NOT_BUILT = {
    ("cache", "s3"): "an s3 cache",
    ("state", "mongo"): "the mongo state store",
}


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
    if config.auth.jwt is not None:
        raise ConfigError("auth.jwt", "bearer tokens (JWT) are not built yet")


def one_line(error: Exception) -> str:
    return " ".join(str(error).split())
