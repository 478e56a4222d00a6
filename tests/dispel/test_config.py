"""Configuration of dispel mounts, and the embedded default that serves /dispel over demo data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from davgate.config import ConfigError, load_config, parse_config
from tests.dispel.conftest import REPO


@pytest.fixture
def base(tmp_path: Path) -> dict:
    (tmp_path / "src").mkdir()
    (tmp_path / "templates").mkdir()
    return {
        "mounts": {
            "/src": {"type": "local", "root": str(tmp_path / "src")},
            "/dispel": {"type": "dispel", "templates": str(tmp_path / "templates"), "source": "/src"},
        },
        "state": {"type": "sqlite", "path": str(tmp_path / "state.db")},
        "cache": {"type": "local", "root": str(tmp_path / "cache")},
    }


def test_defaults(base: dict) -> None:
    mount = parse_config(base, "f.yaml").mounts["/dispel"]
    assert (mount.workers, mount.time_limit, mount.idle_timeout, mount.tile_size, mount.elements) == (
        1,
        60.0,
        300.0,
        1024,
        {},
    )
    assert (mount.memory_limit, mount.max_remote_read) == (2048 * 1024 * 1024, 256 * 1024 * 1024)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": "/nope"}, "mounts./dispel.source: '/nope' is not a configured mount (f.yaml)"),
        ({"source": "/dispel"}, "mounts./dispel.source: the source of a dispel mount is a storage mount"),
        ({"workers": 0}, "mounts./dispel.workers: expected at least 1, got 0"),
        ({"time_limit": 0}, "mounts./dispel.time_limit: expected at least 0.001"),
        ({"tile_size": 8}, "mounts./dispel.tile_size: expected at least 16, got 8"),
        ({"elements": {"x": "no_colon"}}, "mounts./dispel.elements.x: expected module:function, got 'no_colon'"),
        ({"templates": "/does/not/exist"}, "mounts./dispel.templates: folder /does/not/exist does not exist"),
        ({"memory_limit": 1000}, "mounts./dispel.memory_limit: expected 0 (no limit) or at least 268435456"),
        ({"max_remote_read": 0}, "mounts./dispel.max_remote_read: expected at least 1, got 0"),
    ],
)
def test_errors_name_the_key(base: dict, change: dict, message: str) -> None:
    base["mounts"]["/dispel"].update(change)
    with pytest.raises(ConfigError) as caught:
        parse_config(base, "f.yaml")
    assert str(caught.value).startswith(message)


def test_a_cache_section_is_required(base: dict) -> None:
    del base["cache"]
    with pytest.raises(ConfigError, match="cache: the dispel mount /dispel needs a cache section"):
        parse_config(base, "f.yaml")


def test_the_embedded_default_serves_dispel_over_the_demo_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    for folder in ("data", "var/demo"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "var/htpasswd").write_text("")
    monkeypatch.chdir(tmp_path)
    config = load_config("conf/davgate.yaml")
    assert config.mounts["/data"].type == "local"
    dispel = config.mounts["/dispel"]
    assert dispel.type == "dispel" and dispel.source == "/demo"
    assert (dispel.templates / "tiffstore.yaml").is_file()
    assert config.mounts["/demo"].root == tmp_path / "var" / "demo"
    assert config.cache is not None and config.cache.type == "local"
    assert "demo-data var/demo" in (REPO / "scripts" / "serve.sh").read_text()


def test_an_s3_cache_is_accepted_with_defaults(base: dict) -> None:
    base["cache"] = {
        "type": "s3",
        "endpoint": "http://127.0.0.1:7480",
        "bucket": "c",
        "access_key": "a",
        "secret_key": "s",
    }
    cache = parse_config(base, "f.yaml").cache
    assert (cache.prefix, cache.max_bytes, cache.part_size, cache.staging, cache.create_bucket) == (
        "cache/", 100 * 1024**3, 8 * 1024**2, None, False,
    )  # fmt: skip
    assert "secret_key" not in repr(cache)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"part_size": 1024}, "cache.part_size: expected between 5 MiB and 5 GiB, got 1024 (f.yaml)"),
        ({"prefix": "a/../b"}, "cache.prefix: a prefix has no '.' or '..' segments (f.yaml)"),
        ({"timeout": 0}, "cache.timeout: expected more than 0 seconds, got 0.0 (f.yaml)"),
        ({"max_bytes": -1}, "cache.max_bytes: expected at least 0, got -1 (f.yaml)"),
        ({"addressing_style": "odd"}, "cache.addressing_style: expected one of path, virtual, got 'odd'"),
    ],
)
def test_s3_cache_errors_name_the_key(base: dict, change: dict, message: str) -> None:
    base["cache"] = {
        "type": "s3",
        "endpoint": "http://x",
        "bucket": "c",
        "access_key": "a",
        "secret_key": "s",
        **change,
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(base, "f.yaml")
    assert str(caught.value).startswith(message)
