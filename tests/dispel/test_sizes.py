"""Sizes of results known before they are made: the same as the bytes the result then has."""

from __future__ import annotations

import io

import numpy as np
import pytest

from davgate.dispel import elements, sizes
from davgate.dispel.tiff import PageInfo, TiffHeader

HEADER = TiffHeader((PageInfo(300, 200, 1, 16, 1), PageInfo(64, 48, 3, 8, 1), PageInfo(10, 10, 1, 32, 3)))
WINDOW = {"x0": 10, "x1": 130, "y0": 5, "y1": 45}


@pytest.mark.parametrize("encoder", ["encode_npy", "encode_tiff"])
@pytest.mark.parametrize(("page", "window"), [(0, WINDOW), (1, None), (2, {"x0": 0, "x1": 3, "y0": 0, "y1": 7})])
def test_a_predicted_size_is_the_size_of_the_result(encoder: str, page: int, window: dict | None) -> None:
    info = HEADER.pages[page]
    x0, x1, y0, y1 = (0, info.width, 0, info.height) if window is None else tuple(window.values())
    dims = (y1 - y0, x1 - x0) if info.samples == 1 else (y1 - y0, x1 - x0, info.samples)
    data = np.random.default_rng(page).integers(0, 100, dims).astype(info.dtype)
    made = io.BytesIO()
    getattr(elements, encoder)(data, type("Ctx", (), {"output": made})())
    steps = (("read_tiff", {"page": page, "window": window}), (encoder, {}))
    assert sizes.predicted(steps, HEADER) == len(made.getvalue())


def test_other_pipelines_are_not_predicted() -> None:
    read = ("read_tiff", {"page": 0, "window": WINDOW})
    assert sizes.predicted((read, ("encode_png", {})), HEADER) is None
    assert sizes.predicted((read, ("encode_tiff", {"compression": "zlib"})), HEADER) is None
    assert sizes.predicted((read, ("stretch_8bit", {}), ("encode_npy", {})), HEADER) is None
    assert sizes.predicted((("read_tiff", {"page": 9}), ("encode_npy", {})), HEADER) is None
