"""Tile pyramids for zoomable viewers: which window of a page a z/x/y tile shows, and at what scale.

Zoom 0 shows the whole page in one tile of ``size`` pixels; each zoom
level doubles the resolution, up to the deepest, where one tile pixel is
one page pixel. Tile (x, y) of zoom z covers the page window
``[x, x+1) * size * f`` by ``[y, y+1) * size * f``, with ``f = 2 ** (deepest
- z)``, clipped at the page's edges, and is binned by ``f`` (the means of
f x f blocks): overviews computed from the data itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from davgate.dispel.errors import InputNotFound


@dataclass(frozen=True)
class Tile:
    window: dict[str, int]  # x0, x1, y0, y1 of the page, end-exclusive
    factor: int  # page pixels per tile pixel, in each direction


def deepest(width: int, height: int, size: int) -> int:
    """The zoom level at full resolution."""
    return max(0, math.ceil(math.log2(max(width, height) / size)))


def grid(width: int, height: int, size: int, z: int) -> tuple[int, int]:
    """Columns and rows of tiles at zoom ``z``."""
    span = size * 2 ** (deepest(width, height, size) - z)
    return -(-width // span), -(-height // span)


def tile(width: int, height: int, size: int, z: int, x: int, y: int) -> Tile:
    """Tile (x, y) of zoom ``z``; a tile outside the pyramid is not found (404), as tile servers answer."""
    top = deepest(width, height, size)
    if not 0 <= z <= top:
        raise InputNotFound(f"zoom {z} is not in this pyramid (0-{top} for a {width} x {height} page)")
    columns, rows = grid(width, height, size, z)
    if not (0 <= x < columns and 0 <= y < rows):
        raise InputNotFound(f"tile {x}/{y} is not in zoom {z} ({columns} x {rows} tiles)")
    factor = 2 ** (top - z)
    span = size * factor
    window = {"x0": x * span, "x1": min((x + 1) * span, width), "y0": y * span, "y1": min((y + 1) * span, height)}
    return Tile(window, factor)
