"""TIFF files read lazily: headers without pixels, windows without whole pages.

:func:`read_header` walks the IFD chain with plain ``struct`` reads (no
numpy, no tifffile), so the server can list layers and check windows from a
file's header alone. :func:`read_window` uses tifffile in a pipeline
process and reads only the tiles or strips that a window touches; pages it
cannot split that way (planar RGB, subsampled, volumetric) are read whole
and cropped.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from davgate.dispel.errors import OutOfBounds

if TYPE_CHECKING:
    import numpy as np
    import tifffile

MAX_PAGES = 100_000
MAX_TAGS = 4096
TAG_WIDTH, TAG_LENGTH, TAG_BITS, TAG_SAMPLES, TAG_SAMPLE_FORMAT = 256, 257, 258, 277, 339
TYPE_SIZES = {1: 1, 3: 2, 4: 4, 13: 4, 16: 8, 18: 8}
TYPE_CODES = {1: "B", 3: "H", 4: "I", 13: "I", 16: "Q", 18: "Q"}
SAMPLE_KINDS = {1: "uint", 2: "int", 3: "float"}


class NotATiff(ValueError):
    """The bytes are not a TIFF this module can read."""


@dataclass(frozen=True)
class PageInfo:
    width: int
    height: int
    samples: int = 1
    bits: int = 8
    sample_format: int = 1

    @property
    def dtype(self) -> str:
        return f"{SAMPLE_KINDS.get(self.sample_format, 'uint')}{self.bits}"


@dataclass(frozen=True)
class TiffHeader:
    pages: tuple[PageInfo, ...]


@dataclass(frozen=True)
class _Layout:
    order: str
    big: bool

    @property
    def count_format(self) -> str:
        return self.order + ("Q" if self.big else "H")

    @property
    def offset_format(self) -> str:
        return self.order + ("Q" if self.big else "I")

    @property
    def entry_size(self) -> int:
        return 20 if self.big else 12


def read_header(fh: BinaryIO) -> TiffHeader:
    """The size and sample type of every page in the main IFD chain of a TIFF."""
    fh.seek(0)
    head = fh.read(16)
    layout, first = parse_preamble(head)
    pages: list[PageInfo] = []
    seen: set[int] = set()
    offset = first
    while offset:
        if offset in seen or len(pages) >= MAX_PAGES:
            raise NotATiff("the IFD chain loops or is too long")
        seen.add(offset)
        page, offset = read_ifd(fh, layout, offset)
        pages.append(page)
    if not pages:
        raise NotATiff("no pages")
    return TiffHeader(tuple(pages))


def parse_preamble(head: bytes) -> tuple[_Layout, int]:
    orders = {b"II": "<", b"MM": ">"}
    if len(head) < 8 or head[:2] not in orders:
        raise NotATiff("no TIFF byte order mark")
    order = orders[head[:2]]
    version = struct.unpack(order + "H", head[2:4])[0]
    if version == 42:
        return _Layout(order, False), struct.unpack(order + "I", head[4:8])[0]
    if version == 43 and len(head) >= 16:
        return _Layout(order, True), struct.unpack(order + "Q", head[8:16])[0]
    raise NotATiff(f"unknown TIFF version {version}")


def read_ifd(fh: BinaryIO, layout: _Layout, offset: int) -> tuple[PageInfo, int]:
    count_size = 8 if layout.big else 2
    (count,) = struct.unpack(layout.count_format, read_at(fh, offset, count_size))
    if count > MAX_TAGS:
        raise NotATiff(f"an IFD with {count} tags")
    size = count * layout.entry_size + (8 if layout.big else 4)
    data = read_at(fh, offset + count_size, size)
    tags = {}
    for i in range(count):
        tag, value = read_entry(fh, layout, data[i * layout.entry_size : (i + 1) * layout.entry_size])
        if value is not None:
            tags[tag] = value
    (following,) = struct.unpack(layout.offset_format, data[-(8 if layout.big else 4) :])
    if TAG_WIDTH not in tags or TAG_LENGTH not in tags:
        raise NotATiff("a page without width or length")
    info = PageInfo(
        tags[TAG_WIDTH],
        tags[TAG_LENGTH],
        tags.get(TAG_SAMPLES, 1),
        tags.get(TAG_BITS, 1),
        tags.get(TAG_SAMPLE_FORMAT, 1),
    )
    return info, following


def read_entry(fh: BinaryIO, layout: _Layout, entry: bytes) -> tuple[int, int | None]:
    """One tag and its first value, if it is one of the integer tags we need."""
    if layout.big:
        tag, kind, count = struct.unpack(layout.order + "HHQ", entry[:12])
        field = entry[12:20]
    else:
        tag, kind, count = struct.unpack(layout.order + "HHI", entry[:8])
        field = entry[8:12]
    if tag not in (TAG_WIDTH, TAG_LENGTH, TAG_BITS, TAG_SAMPLES, TAG_SAMPLE_FORMAT) or kind not in TYPE_SIZES:
        return tag, None
    if count < 1:
        return tag, None
    size = TYPE_SIZES[kind]
    if count * size > len(field):
        (where,) = struct.unpack(layout.offset_format, field)
        field = read_at(fh, where, size)
    return tag, struct.unpack(layout.order + TYPE_CODES[kind], field[:size])[0]


def read_at(fh: BinaryIO, offset: int, size: int) -> bytes:
    fh.seek(offset)
    data = fh.read(size)
    if len(data) < size:
        raise NotATiff("the file ends inside an IFD")
    return data


# --- pixels (pipeline processes only: imports numpy and tifffile) -----------------


def read_window(tif: tifffile.TiffFile, index: int, window: dict[str, int] | None = None) -> np.ndarray:
    """Page ``index`` of ``tif``, or only its ``window`` {x0, x1, y0, y1} (end-exclusive)."""
    count = len(tif.pages)
    if not 0 <= index < count:
        raise OutOfBounds(f"page {index} is out of bounds: the input has {count} pages (0-{count - 1})")
    page: Any = tif.pages[index]
    if not hasattr(page, "imagelength"):
        page = page.aspage()
    height, width = page.imagelength, page.imagewidth
    x0, x1, y0, y1 = window_bounds(window, width, height)
    if x1 > width or y1 > height:
        raise OutOfBounds(f"window {x0}-{x1}-{y0}-{y1} exceeds page {index} ({width} x {height} pixels)")
    if splittable(page):
        return read_chunks(tif, page, x0, x1, y0, y1)
    data = page.asarray()
    if page.planarconfig == 2 and page.samplesperpixel > 1:
        return data[..., y0:y1, x0:x1]
    return data[y0:y1, x0:x1]


def window_bounds(window: dict[str, int] | None, width: int, height: int) -> tuple[int, int, int, int]:
    if window is None:
        return 0, width, 0, height
    try:
        bounds = int(window["x0"]), int(window["x1"]), int(window["y0"]), int(window["y1"])
    except (KeyError, TypeError, ValueError):
        raise OutOfBounds(f"a window is a mapping of x0, x1, y0, y1, not {window!r}") from None
    x0, x1, y0, y1 = bounds
    if not (0 <= x0 < x1 and 0 <= y0 < y1):
        raise OutOfBounds(f"window {x0}-{x1}-{y0}-{y1} is empty or negative")
    return bounds


def splittable(page: Any) -> bool:
    """True if the page's tiles or strips can be read one by one."""
    if page.imagedepth != 1 or page.tiledepth != 1 or page.is_subsampled:
        return False
    if page.planarconfig == 2 and page.samplesperpixel > 1:
        return False
    height, width = page.imagelength, page.imagewidth
    rows, cols = math.ceil(height / page.chunks[0]), math.ceil(width / page.chunks[1])
    return len(page.dataoffsets) == rows * cols == len(page.databytecounts)


def read_chunks(tif: tifffile.TiffFile, page: Any, x0: int, x1: int, y0: int, y1: int) -> np.ndarray:
    """Read and decode only the tiles (or strips) that the window touches."""
    import numpy as np

    chunk_h, chunk_w = page.chunks[0], page.chunks[1]
    cols = math.ceil(page.imagewidth / chunk_w)
    wanted = [
        r * cols + c
        for r in range(y0 // chunk_h, (y1 - 1) // chunk_h + 1)
        for c in range(x0 // chunk_w, (x1 - 1) // chunk_w + 1)
    ]
    samples = page.samplesperpixel
    shape = (y1 - y0, x1 - x0) + ((samples,) if samples > 1 else ())
    out = np.zeros(shape, dtype=page.dtype)
    offsets = [page.dataoffsets[i] for i in wanted]
    counts = [page.databytecounts[i] for i in wanted]
    decode = page.decode
    for data, i in tif.filehandle.read_segments(offsets, counts, wanted, sort=True):
        if not data:
            continue
        segment, _index, _shape = decode(data, i, jpegtables=page.jpegtables)
        if segment is None:
            continue
        top, left = (i // cols) * chunk_h, (i % cols) * chunk_w
        place(out, segment[0], top - y0, left - x0)
    return out


def place(out: np.ndarray, segment: np.ndarray, top: int, left: int) -> None:
    """Copy the part of a decoded chunk (length, width, samples) that falls into ``out``."""
    src_y0, src_x0 = max(0, -top), max(0, -left)
    dst_y0, dst_x0 = max(0, top), max(0, left)
    rows = min(segment.shape[0] - src_y0, out.shape[0] - dst_y0)
    cols = min(segment.shape[1] - src_x0, out.shape[1] - dst_x0)
    if rows <= 0 or cols <= 0:
        return
    part = segment[src_y0 : src_y0 + rows, src_x0 : src_x0 + cols]
    if out.ndim == 2:
        part = part[..., 0]
    out[dst_y0 : dst_y0 + rows, dst_x0 : dst_x0 + cols] = part
