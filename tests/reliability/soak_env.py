"""The soak's world: a davgate with local, sftp, s3 and dispel mounts, and DISPEL results known in advance."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import requests
import tifffile

from tests.dispel.conftest import TIFFSTORE, stack, write_stack
from tests.helpers import write_htpasswd
from tests.rgw import Rgw
from tests.sshd import Sshd

SUBJECT, DATE = "312", "20181129"
PAGES, HEIGHT, WIDTH = 3, 256, 384


def storage_config(base: Path, sshd: Sshd | None, rgw: Rgw | None, *, backend_timeout: float = 5.0) -> dict[str, Any]:
    """Mounts /data (local), /hpc (sftp, if ``sshd``) and /s3 (if ``rgw``), htpasswd users, a SQLite state store."""
    for name in ("data", "remote"):
        (base / name).mkdir(parents=True, exist_ok=True)
    mounts: dict[str, Any] = {"/data": {"type": "local", "root": base / "data"}}
    if sshd is not None:
        mounts["/hpc"] = {
            "type": "sftp", "host": sshd.host, "port": sshd.port, "user": sshd.user, "key": sshd.key,
            "known_hosts": sshd.known_hosts, "root": str(base / "remote"), "timeout": backend_timeout,
        }  # fmt: skip
    if rgw is not None:
        mounts["/s3"] = rgw.mount_config(timeout=backend_timeout, retries=1)
    return {
        "auth": {"htpasswd": write_htpasswd(base / "htpasswd")},
        "mounts": mounts,
        "state": {"type": "sqlite", "path": base / "state.db"},
    }


def soak_config(
    base: Path, sshd: Sshd | None, rgw: Rgw | None, *, workers: int = 2, backend_timeout: float = 5.0
) -> dict[str, Any]:
    """The storage mounts of :func:`storage_config`, and /dispel over /source; a small result cache."""
    config = storage_config(base, sshd, rgw, backend_timeout=backend_timeout)
    for name in ("source", "templates"):
        (base / name).mkdir(parents=True, exist_ok=True)
    (base / "templates" / "tiffstore.yaml").write_text(TIFFSTORE.read_text())
    write_stack(base / "source" / f"tiffstore/{SUBJECT}/{DATE}.tif", source_stack(), tile=(64, 64))
    config["mounts"]["/source"] = {"type": "local", "root": base / "source", "readonly": True}
    config["mounts"]["/dispel"] = {"type": "dispel", "templates": base / "templates", "source": "/source", "workers": 2}
    config["cache"] = {
        "type": "local",
        "root": base / "cache",
        "max_bytes": 400_000,
    }  # evictions, so results are remade
    config["server"] = {"workers": workers}
    return config


def writable_mounts(config: dict[str, Any]) -> tuple[str, ...]:
    return tuple(p for p, m in config["mounts"].items() if m["type"] != "dispel" and not m.get("readonly"))


def source_stack() -> np.ndarray:
    return stack(7, PAGES, HEIGHT, WIDTH)


def dispel_urls() -> list[str]:
    """24 results: windows of every layer as .npy, and some as .tif and .png."""
    windows = [
        "0-64-0-64",
        "10-200-5-100",
        "100-384-128-256",
        "0-384-0-256",
        "64-128-64-128",
        "5-6-7-8",
        "300-380-200-250",
        "0-100-0-50",
    ]
    urls = []
    for layer in range(PAGES):
        for number, grid in enumerate(windows):
            ext = ".npy" if number < 6 else (".tif" if layer % 2 else ".png")
            urls.append(f"/dispel/tiffstore/{SUBJECT}/{DATE}/{layer}/{grid}{ext}")
    return urls


def expected_dispel(url: str, auth: tuple[str, str], paths: list[str]) -> dict[str, str]:
    """The sha256 each result must have: .npy computed here; .tif and .png fetched once and checked."""
    data = source_stack()
    expected = {}
    for path in paths:
        layer, grid = path.rsplit("/", 2)[1:]
        grid, _, ext = grid.partition(".")
        x0, x1, y0, y1 = map(int, grid.split("-"))
        window = data[int(layer), y0:y1, x0:x1]
        if ext == "npy":
            buffer = io.BytesIO()
            np.save(buffer, window, allow_pickle=False)
            expected[path] = hashlib.sha256(buffer.getvalue()).hexdigest()
            continue
        response = requests.get(url + path, auth=auth, timeout=60)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
        if ext == "tif":
            assert np.array_equal(tifffile.imread(io.BytesIO(response.content)), window), path
        else:
            assert response.content.startswith(b"\x89PNG\r\n\x1a\n"), path
        expected[path] = hashlib.sha256(response.content).hexdigest()
    return expected
