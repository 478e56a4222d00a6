"""PNG files from numpy arrays with zlib alone (no imaging library).

Grey (H x W), RGB (H x W x 3) and RGBA (H x W x 4) images of 8 or 16 bits.
Rows use the "Up" filter, which suits smooth scientific images, and are
compressed in blocks so that memory stays bounded.
"""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING, BinaryIO

from davgate.dispel.errors import ExecutionFailed

if TYPE_CHECKING:
    import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOR_TYPES = {1: 0, 3: 2, 4: 6}  # samples per pixel -> PNG colour type
FILTER_UP = 2
ROWS_PER_BLOCK = 256


def write(out: BinaryIO, data: np.ndarray, *, level: int = 1) -> None:
    import numpy as np

    image = np.asarray(data)
    if image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    if image.dtype not in (np.uint8, np.uint16):
        raise ExecutionFailed(f"encode_png takes uint8 or uint16 images, not {image.dtype}; stretch_8bit first")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in COLOR_TYPES or 0 in image.shape:
        raise ExecutionFailed(f"encode_png takes grey, RGB or RGBA images, not shape {data.shape}")
    height, width, samples = image.shape
    bits = image.dtype.itemsize * 8
    out.write(SIGNATURE)
    chunk(out, b"IHDR", struct.pack(">IIBBBBB", width, height, bits, COLOR_TYPES[samples], 0, 0, 0))
    rows = image.astype(image.dtype.newbyteorder(">"), copy=False).reshape(height, -1).view(np.uint8)
    compressor = zlib.compressobj(level)
    previous = np.zeros(rows.shape[1], dtype=np.uint8)
    for start in range(0, height, ROWS_PER_BLOCK):
        block = rows[start : start + ROWS_PER_BLOCK]
        above = np.vstack([previous[None, :], block[:-1]])
        filtered = np.empty((block.shape[0], block.shape[1] + 1), dtype=np.uint8)
        filtered[:, 0] = FILTER_UP
        np.subtract(block, above, out=filtered[:, 1:])
        previous = block[-1]
        data_out = compressor.compress(filtered.tobytes())
        if data_out:
            chunk(out, b"IDAT", data_out)
    chunk(out, b"IDAT", compressor.flush())
    chunk(out, b"IEND", b"")


def chunk(out: BinaryIO, kind: bytes, payload: bytes) -> None:
    out.write(struct.pack(">I", len(payload)))
    out.write(kind)
    out.write(payload)
    out.write(struct.pack(">I", zlib.crc32(payload, zlib.crc32(kind))))
