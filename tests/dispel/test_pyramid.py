"""Tile pyramids: which window each z/x/y tile covers, and the binned overviews."""

from __future__ import annotations

import numpy as np
import pytest

from davgate.dispel import elements, pyramid
from davgate.dispel.errors import InputNotFound


def test_zoom_zero_is_the_whole_page_in_one_tile_and_the_deepest_is_full_resolution() -> None:
    assert pyramid.deepest(2048, 1024, 256) == 3
    assert pyramid.deepest(200, 100, 256) == 0
    assert [pyramid.grid(2048, 1024, 256, z) for z in range(4)] == [(1, 1), (2, 1), (4, 2), (8, 4)]
    whole = pyramid.tile(2048, 1024, 256, 0, 0, 0)
    assert whole == pyramid.Tile({"x0": 0, "x1": 2048, "y0": 0, "y1": 1024}, 8)
    assert pyramid.tile(2048, 1024, 256, 3, 7, 3) == pyramid.Tile({"x0": 1792, "x1": 2048, "y0": 768, "y1": 1024}, 1)


def test_edge_tiles_are_clipped_and_tiles_outside_are_not_found() -> None:
    assert pyramid.grid(300, 200, 256, 1) == (2, 1)
    assert pyramid.tile(300, 200, 256, 1, 1, 0).window == {"x0": 256, "x1": 300, "y0": 0, "y1": 200}
    for z, x, y in ((2, 0, 0), (1, 2, 0), (1, 0, 1), (0, -1, 0)):
        with pytest.raises(InputNotFound):
            pyramid.tile(300, 200, 256, z, x, y)


def test_overviews_are_the_means_of_the_pixels_they_cover() -> None:
    image = np.random.default_rng(3).integers(0, 65535, (10, 7), dtype=np.uint16)
    binned = elements.bin_means(image, 4)
    assert binned.shape == (3, 2)
    assert binned[0, 0] == np.rint(image[0:4, 0:4].mean())
    assert binned[2, 1] == np.rint(image[8:10, 4:7].mean())  # a block cut by the edge averages what it has


def test_a_tile_pads_to_a_transparent_square() -> None:
    grey = np.full((100, 60), 9, np.uint8)
    square = elements.pad(grey, None, size=128)
    assert square.shape == (128, 128, 4)
    assert square[0, 0].tolist() == [9, 9, 9, 255] and square[127, 127].tolist() == [0, 0, 0, 0]
