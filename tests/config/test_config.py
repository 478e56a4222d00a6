"""Configuration errors name the key and the file; good files load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from davgate.config import ConfigError, load_config, parse_config
from davgate.config.schema import LocalMount, SqliteState


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    return tmp_path


def minimal(folder: Path, **extra) -> dict:
    return {
        "mounts": {"/data": {"type": "local", "root": str(folder / "data")}},
        "state": {"type": "sqlite", "path": str(folder / "state.db")},
        **extra,
    }


def write(folder: Path, data) -> Path:
    path = folder / "davgate.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def error_of(folder: Path, data, environ=None) -> str:
    path = write(folder, data)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ or {})
    message = str(caught.value)
    assert str(path) in message
    return message


def test_minimal_config_loads_with_defaults(folder: Path) -> None:
    config = load_config(write(folder, minimal(folder)), {})
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 8080
    assert config.server.block_size >= 1024 * 1024
    assert config.auth.anonymous == "none"
    assert config.mounts["/data"] == LocalMount(type="local", root=folder / "data")
    assert config.state == SqliteState(type="sqlite", path=folder / "state.db")


def test_wrong_type_names_the_key(folder: Path) -> None:
    message = error_of(folder, minimal(folder, server={"port": "x"}))
    assert message.startswith("server.port: expected an integer, got 'x'")


def test_unknown_key_names_the_key(folder: Path) -> None:
    message = error_of(folder, minimal(folder, server={"prot": 80}))
    assert message.startswith("server.prot: unknown key")
    assert "port" in message


def test_unknown_mount_key(folder: Path) -> None:
    data = minimal(folder)
    data["mounts"]["/data"]["rot"] = "x"
    assert error_of(folder, data).startswith("mounts./data.rot: unknown key")


def test_unknown_top_level_section(folder: Path) -> None:
    assert error_of(folder, minimal(folder, extras={})).startswith("extras: unknown key")


def test_missing_folder_of_a_local_mount(folder: Path) -> None:
    data = minimal(folder)
    data["mounts"]["/data"]["root"] = str(folder / "absent")
    message = error_of(folder, data)
    assert message.startswith("mounts./data.root: folder")
    assert "does not exist" in message


def test_missing_htpasswd_file(folder: Path) -> None:
    message = error_of(folder, minimal(folder, auth={"htpasswd": str(folder / "nope")}))
    assert message.startswith("auth.htpasswd: file")


def test_missing_required_key(folder: Path) -> None:
    data = minimal(folder)
    del data["mounts"]["/data"]["root"]
    assert error_of(folder, data).startswith("mounts./data.root: required key is missing")


def test_missing_state_section(folder: Path) -> None:
    data = minimal(folder)
    del data["state"]
    assert error_of(folder, data).startswith("state: required key is missing")


def test_unknown_mount_type(folder: Path) -> None:
    data = minimal(folder)
    data["mounts"]["/data"]["type"] = "ftp"
    message = error_of(folder, data)
    assert message.startswith("mounts./data.type: expected one of local, sftp, s3, gridftp, dispel, got 'ftp'")


def test_mongo_state_is_accepted(folder: Path) -> None:
    config = load_config(write(folder, minimal(folder, state={"type": "mongo", "url": "mongodb://127.0.0.1"})))
    assert (config.state.type, config.state.url, config.state.database) == ("mongo", "mongodb://127.0.0.1", "davgate")


@pytest.mark.parametrize(
    ("paths", "culprit"),
    [(["/data", "/data/sub"], "/data/sub"), (["/Data", "/data"], "/data"), (["/a/b", "/a/b/c/d"], "/a/b/c/d")],
)
def test_overlapping_mounts_are_refused(folder: Path, paths: list[str], culprit: str) -> None:
    data = minimal(folder)
    data["mounts"] = {p: {"type": "local", "root": str(folder / "data")} for p in paths}
    message = error_of(folder, data)
    assert message.startswith(f"mounts.{culprit}: overlaps mount")


@pytest.mark.parametrize("path", ["data", "/", "/data/", "/a//b", "/a/../b", "/a/./b", "/a\\b", "/a?b"])
def test_bad_mount_paths_are_refused(folder: Path, path: str) -> None:
    data = minimal(folder)
    data["mounts"] = {path: {"type": "local", "root": str(folder / "data")}}
    assert error_of(folder, data).startswith(f"mounts.{path}:")


def test_environment_substitution(folder: Path) -> None:
    text = yaml.safe_dump(minimal(folder, server={"port": "${PORT}", "host": "${HOST:-127.0.0.2}"}))
    config = load_config(write(folder, text), {"PORT": "9090"})
    assert config.server.port == 9090
    assert config.server.host == "127.0.0.2"


def test_unset_environment_variable_names_key_and_variable(folder: Path) -> None:
    data = minimal(folder, api={"admin_token": "${DAVGATE_ADMIN_TOKEN}"})
    message = error_of(folder, data, {})
    assert message.startswith("api.admin_token: environment variable DAVGATE_ADMIN_TOKEN is not set")


def test_invalid_yaml_and_missing_file(folder: Path) -> None:
    assert "not valid YAML" in error_of(folder, "server: [unclosed")
    with pytest.raises(ConfigError, match="configuration file does not exist"):
        load_config(folder / "absent.yaml")


def test_anonymous_policy_is_checked(folder: Path) -> None:
    message = error_of(folder, minimal(folder, auth={"anonymous": "everyone"}))
    assert message.startswith("auth.anonymous: expected one of none, read, write")


def test_parse_config_without_a_file() -> None:
    with pytest.raises(ConfigError, match=r"^state: required key is missing \(inline\)$"):
        parse_config({}, "inline")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "davgate", *args], capture_output=True, text=True, timeout=60)


def test_check_config_command(folder: Path) -> None:
    good = run_cli("check-config", str(write(folder, minimal(folder))))
    assert good.returncode == 0, good.stderr
    assert "OK" in good.stdout and "/data (local)" in good.stdout
    bad = run_cli("check-config", str(write(folder, minimal(folder, server={"port": "x"}))))
    assert bad.returncode == 2
    assert "server.port: expected an integer" in bad.stderr
