"""The sizes of results known before they are made, so that listings can show them.

File managers (davfs2, Windows, macOS Finder) read a file's size from its
listing and trust it: a result listed without one reads as empty. Where a
result is a window of a TIFF page written as ``.npy`` or as an uncompressed
``.tif`` (the template's whole job: ``read_tiff``, then ``encode_npy`` or
``encode_tiff``), its bytes depend only on the window's shape and the
page's type, so its size is that of the same encoder's output for an array
of that shape and type, found once per shape and type.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from davgate.dispel import elements
from davgate.dispel.tiff import PageInfo, TiffHeader, window_bounds

ENCODERS = {"encode_npy": elements.encode_npy, "encode_tiff": elements.encode_tiff}


def predicted(steps: tuple[tuple[str, Mapping[str, Any]], ...], header: TiffHeader) -> int | None:
    """The size of what ``steps`` (filled in) would write, when only the shape decides it; else None."""
    if len(steps) != 2:
        return None
    (read, args), (encoder, options) = steps
    if read != "read_tiff" or encoder not in ENCODERS or any(v is not None for v in options.values()):
        return None
    page_index = int(args.get("page", 0))
    if not 0 <= page_index < len(header.pages):
        return None
    page = header.pages[page_index]
    x0, x1, y0, y1 = window_bounds(args.get("window"), page.width, page.height)
    return encoded_size(encoder, shape(page, x1 - x0, y1 - y0), page.dtype)


def shape(page: PageInfo, width: int, height: int) -> tuple[int, ...]:
    return (height, width) if page.samples == 1 else (height, width, page.samples)


@functools.lru_cache(maxsize=256)
def encoded_size(encoder: str, dims: tuple[int, ...], dtype: str) -> int:
    import numpy as np

    zeros = np.broadcast_to(np.zeros(1, dtype).reshape((1,) * len(dims)), dims)
    sink = io.BytesIO()
    ENCODERS[encoder](zeros, SimpleNamespace(output=sink))
    return len(sink.getbuffer())
