"""Configuration: one YAML file, read and validated once at start.

``load_config(path)`` returns a :class:`~davgate.config.schema.Config` or
raises :class:`ConfigError` with a message that names the key and the file,
e.g. ``mounts./hpc.port: expected an integer, got 'x' (conf/davgate.yaml)``.
"""

from davgate.config.loader import load_config, parse_config
from davgate.config.schema import Config
from davgate.config.validate import ConfigError

__all__ = ["Config", "ConfigError", "load_config", "parse_config"]
