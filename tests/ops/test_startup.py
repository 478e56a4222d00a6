"""What `davgate serve` sets up before serving: status lines, TLS files, reserved paths, the metrics folder."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from wsgidav.dav_error import DAVError, get_http_status_string

from davgate.config import ConfigError, parse_config
from davgate.ops import metrics, startup
from tests.ops.tls_files import private_key, write_key, write_self_signed


def config(tmp_path: Path, **sections: Any):
    (tmp_path / "data").mkdir(exist_ok=True)
    data = {
        "mounts": {"/data": {"type": "local", "root": str(tmp_path / "data")}},
        "state": {"type": "sqlite", "path": str(tmp_path / "state.db")},
    }
    data.update(sections)
    return parse_config(data, "test")


def test_503_504_and_507_get_their_reason_phrases() -> None:
    startup.register_reason_phrases()
    assert get_http_status_string(503) == "503 Service Unavailable"
    assert get_http_status_string(DAVError(504)) == "504 Gateway Timeout"
    assert get_http_status_string(507) == "507 Insufficient Storage"
    assert get_http_status_string(415) == "415 Media Type Not Supported"  # WsgiDAV's own kept


def test_tls_needs_both_files(tmp_path: Path) -> None:
    cert, _ = write_self_signed(tmp_path)
    with pytest.raises(ConfigError, match="server.tls_key: tls_cert and tls_key go together"):
        startup.ssl_adapter(config(tmp_path, server={"tls_cert": str(cert)}).server)


def test_tls_refuses_a_key_that_does_not_match(tmp_path: Path) -> None:
    cert, _ = write_self_signed(tmp_path)
    other = tmp_path / "other.pem"
    other.write_bytes(write_key(private_key()))
    with pytest.raises(ConfigError, match=r"server.tls_cert: cannot serve TLS with .*cert.pem and key .*other.pem"):
        startup.ssl_adapter(config(tmp_path, server={"tls_cert": str(cert), "tls_key": str(other)}).server)


def test_a_working_pair_gives_an_adapter(tmp_path: Path) -> None:
    cert, key = write_self_signed(tmp_path)
    assert startup.ssl_adapter(config(tmp_path, server={"tls_cert": str(cert), "tls_key": str(key)}).server) is not None
    assert startup.ssl_adapter(config(tmp_path).server) is None


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz", "/Metrics"])
def test_no_mount_may_take_an_operations_path(tmp_path: Path, path: str) -> None:
    (tmp_path / "x").mkdir()
    bad = config(tmp_path, mounts={path: {"type": "local", "root": str(tmp_path / "x")}})
    with pytest.raises(ConfigError, match=f"mounts.{path}: {path} is reserved"):
        startup.check_reserved_paths(bad)


@pytest.mark.parametrize("path", ["/.davgate", "/.DAVGATE/x"])
def test_no_mount_may_take_the_pages_assets_path(tmp_path: Path, path: str) -> None:
    (tmp_path / "x").mkdir()
    bad = config(tmp_path, mounts={path: {"type": "local", "root": str(tmp_path / "x")}})
    with pytest.raises(ConfigError, match=f"mounts.{re.escape(path)}: {re.escape(path)} is reserved for the assets"):
        startup.check_reserved_paths(bad)


def test_a_server_folder_replaces_dead_servers_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = config(tmp_path)
    base = metrics.base_folder(conf)
    assert base == tmp_path / "metrics"
    dead = base / "999999999"
    dead.mkdir(parents=True)
    (dead / "counter_999999999.db").write_bytes(b"")
    alive = base / str(os.getppid())  # the process that started pytest: alive
    alive.mkdir()
    monkeypatch.delenv("DAVGATE_METRICS_DIR", raising=False)
    folder = metrics.server_folder(conf)
    assert folder == base / str(os.getpid())
    assert not dead.exists()
    assert alive.exists()
