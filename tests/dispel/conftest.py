"""Fixtures for DISPEL tests: a small TIFF store, templates, an in-process app over them."""

from __future__ import annotations

import shutil
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from davgate.app import Application, build_app
from davgate.config import parse_config
from davgate.dispel import executions_total
from tests.helpers import write_htpasswd
from tests.wsgi.client import Client

REPO = Path(__file__).resolve().parents[2]
TIFFSTORE = REPO / "conf" / "dispel" / "tiffstore.yaml"
SEED = "tiffstore/312/20181129.tif"


def write_stack(path: Path, stack: np.ndarray, **layout: Any) -> None:
    """One page per layer, like the demo store."""
    path.parent.mkdir(parents=True, exist_ok=True)
    file_options = {k: layout.pop(k) for k in ("bigtiff", "byteorder") if k in layout}
    with tifffile.TiffWriter(path, **file_options) as tiff:
        for page in stack:
            tiff.write(page, photometric="minisblack", metadata=None, **layout)


@dataclass
class Store:
    root: Path
    stacks: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, rel: str, stack: np.ndarray, **layout: Any) -> None:
        write_stack(self.root / rel, stack, **layout)
        self.stacks[rel] = stack


def stack(seed: int, pages: int, height: int, width: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 65535, size=(pages, height, width), dtype=np.uint16)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """subject 312 (a tiled file and a stripped one), 313 (compressed), and names that are not values."""
    result = Store(tmp_path / "source")
    result.add(SEED, stack(1, 5, 200, 300), tile=(64, 64))
    result.add("tiffstore/312/20190306.tif", stack(2, 3, 120, 160), rowsperstrip=16)
    result.add("tiffstore/313/20181201.tif", stack(3, 2, 100, 90), rowsperstrip=8, compression="zlib", predictor=True)
    (result.root / "tiffstore/312/notes.txt").write_text("not a layer stack")
    (result.root / "tiffstore/312/2019-01-01.tif").write_bytes(b"not a date in the template's format")
    (result.root / "tiffstore/abc").mkdir()
    (result.root / "tiffstore/0400").mkdir()
    return result


@dataclass
class Dispel:
    """An app with /source (local) and /dispel over it, plus helpers."""

    app: Application
    client: Client
    templates: Path
    store: Store
    cache: Path

    def executions(self) -> int:
        return executions_total(self.app.store)

    def get(self, path: str, **headers: str):
        return self.client.get(path, **headers)


@pytest.fixture
def make_dispel(tmp_path: Path, store: Store) -> Iterator[Callable[..., Dispel]]:
    """``make_dispel(**dispel_options, cache=..., templates=...)``: a new app (closed at teardown)."""
    apps: list[Application] = []
    htpasswd = write_htpasswd(tmp_path / "htpasswd")
    templates = tmp_path / "templates"
    templates.mkdir()
    shutil.copy(TIFFSTORE, templates)
    (tmp_path / "data").mkdir()

    def make(cache: dict | None = None, **options: Any) -> Dispel:
        config = {
            "auth": {"htpasswd": str(htpasswd)},
            "mounts": {
                "/source": {"type": "local", "root": str(store.root)},
                "/data": {"type": "local", "root": str(tmp_path / "data")},
                "/dispel": {
                    "type": "dispel", "templates": str(templates), "source": "/source",
                    "tile_size": 128, "time_limit": 20, **options,
                },
            },
            "state": {"type": "sqlite", "path": str(tmp_path / "state.db")},
            "cache": {"type": "local", "root": str(tmp_path / "cache"), **(cache or {})},
        }  # fmt: skip
        app = build_app(parse_config(config, "test"))
        apps.append(app)
        return Dispel(app, Client(app), templates, store, tmp_path / "cache")

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def dispel(make_dispel: Callable[..., Dispel]) -> Dispel:
    return make_dispel()


def decode_png(data: bytes) -> np.ndarray:
    """A minimal PNG reader for the encoder's own output (filters None and Up)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, payload = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(kind + payload)
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", payload)
        elif kind == b"IDAT":
            idat += payload
        pos += 12 + length
    width, height, bits, colour, *_ = header
    samples = {0: 1, 2: 3, 6: 4}[colour]
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, -1)
    out = np.zeros((height, rows.shape[1] - 1), np.uint8)
    for y in range(height):
        above = out[y - 1] if y else np.zeros_like(out[0])
        out[y] = rows[y, 1:] + (above if rows[y, 0] == 2 else 0)
    image = out.view(">u2" if bits == 16 else np.uint8).reshape(height, width, samples)
    return image[..., 0] if samples == 1 else image
