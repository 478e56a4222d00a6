"""Pixel-exact results: many random windows of many layers, against direct tifffile reads."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tests.dispel.conftest import Dispel, write_stack

LAYOUTS = {  # rel: (stack, layout): tiles, strips, compression, byte order, BigTIFF, other sample types
    "tiffstore/500/20200101.tif": (np.uint16, {"tile": (48, 32)}),
    "tiffstore/500/20200102.tif": (np.uint8, {"rowsperstrip": 7, "compression": "zlib"}),
    "tiffstore/500/20200103.tif": (np.int16, {"tile": (16, 64), "byteorder": ">"}),
    "tiffstore/500/20200104.tif": (np.float32, {"rowsperstrip": 33, "bigtiff": True}),
    "tiffstore/500/20200105.tif": (np.uint16, {"tile": (32, 32), "compression": "zlib", "predictor": True}),
    "tiffstore/500/20200106.tif": (np.uint16, {}),  # one strip per page
}


def random_stack(rng: np.random.Generator, dtype: type, pages: int, height: int, width: int) -> np.ndarray:
    if np.issubdtype(dtype, np.floating):
        return rng.normal(0, 1000, (pages, height, width)).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, (pages, height, width), dtype=dtype, endpoint=True)


@pytest.fixture
def files(dispel: Dispel) -> dict[str, Path]:
    rng = np.random.default_rng(2024)
    made = {}
    for rel, (dtype, layout) in LAYOUTS.items():
        height, width = int(rng.integers(60, 180)), int(rng.integers(60, 200))
        write_stack(dispel.store.root / rel, random_stack(rng, dtype, 3, height, width), **layout)
        made[rel] = dispel.store.root / rel
    made.update({rel: dispel.store.root / rel for rel in dispel.store.stacks})
    return made


def random_window(rng: np.random.Generator, height: int, width: int) -> tuple[int, int, int, int]:
    """Mostly anywhere, sometimes touching an edge or a single pixel wide."""
    x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
    x1 = width if rng.random() < 0.2 else int(rng.integers(x0 + 1, width + 1))
    y1 = y0 + 1 if rng.random() < 0.1 else int(rng.integers(y0 + 1, height + 1))
    return x0, x1, y0, y1


def test_many_random_windows_are_pixel_exact(dispel: Dispel, files: dict[str, Path]) -> None:
    rng = np.random.default_rng(312)
    checked = 0
    for rel, path in sorted(files.items()):
        _, subject, name = rel.split("/")
        with tifffile.TiffFile(path) as tif:
            pages = [page.shape for page in tif.pages]
        for _ in range(8):
            layer = int(rng.integers(0, len(pages)))
            height, width = pages[layer][:2]
            x0, x1, y0, y1 = random_window(rng, height, width)
            output = "npy" if checked % 4 == 3 else "tif"
            url = f"/dispel/tiffstore/{subject}/{name[:-4]}/{layer}/{x0}-{x1}-{y0}-{y1}.{output}"
            response = dispel.get(url)
            assert response.status == 200, (url, response.text)
            expected = tifffile.imread(path, key=layer)[y0:y1, x0:x1]
            got = np.load(io.BytesIO(response.body)) if output == "npy" else tifffile.imread(io.BytesIO(response.body))
            assert got.dtype == expected.dtype and np.array_equal(got, expected), url
            checked += 1
    assert checked == 8 * len(files) and dispel.executions() == checked
