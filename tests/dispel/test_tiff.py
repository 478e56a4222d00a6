"""Lazy TIFF reads: headers without pixels, windows without whole pages."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile

from davgate.dispel.errors import OutOfBounds
from davgate.dispel.tiff import NotATiff, PageInfo, read_header, read_window
from tests.dispel.conftest import stack, write_stack

LAYOUTS = {
    "tiled": {"tile": (64, 64)},
    "strips": {"rowsperstrip": 16},
    "one strip": {"rowsperstrip": 1000},
    "zlib tiles": {"tile": (32, 48), "compression": "zlib"},
    "zlib strips with predictor": {"rowsperstrip": 7, "compression": "zlib", "predictor": True},
    "bigtiff": {"tile": (64, 64), "bigtiff": True},
    "big-endian": {"rowsperstrip": 16, "byteorder": ">"},
}


class CountingFile(io.FileIO):
    """A file that counts the bytes read from it."""

    read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        self.read_bytes += len(data)
        return data

    def readinto(self, buffer) -> int:
        count = super().readinto(buffer)
        self.read_bytes += count or 0
        return count


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_windows_equal_numpy_slicing(tmp_path: Path, layout: dict) -> None:
    pages = stack(7, 3, 150, 210)
    write_stack(tmp_path / "s.tif", pages, **layout)
    with tifffile.TiffFile(tmp_path / "s.tif") as tif:
        for index, (x0, x1, y0, y1) in [
            (0, (0, 210, 0, 150)),
            (2, (10, 75, 3, 149)),
            (1, (64, 65, 63, 64)),
            (2, (200, 210, 140, 150)),
        ]:
            window = {"x0": x0, "x1": x1, "y0": y0, "y1": y1}
            got = read_window(tif, index, window)
            assert got.dtype == np.uint16
            assert np.array_equal(got, pages[index, y0:y1, x0:x1])
        assert np.array_equal(read_window(tif, 1), pages[1])


def test_only_the_tiles_of_the_window_are_read(tmp_path: Path) -> None:
    pages = stack(8, 2, 1024, 1024)
    write_stack(tmp_path / "big.tif", pages, tile=(128, 128))
    with CountingFile(tmp_path / "big.tif") as raw, tifffile.TiffFile(raw) as tif:
        before = raw.read_bytes
        got = read_window(tif, 1, {"x0": 130, "x1": 250, "y0": 0, "y1": 100})
        assert np.array_equal(got, pages[1, 0:100, 130:250])
        assert raw.read_bytes - before <= 2 * 128 * 128 * 2 + 4096  # one tile (plus IFD), not the 2 MiB page


def test_multi_sample_pages(tmp_path: Path) -> None:
    rgb = np.random.default_rng(4).integers(0, 255, (90, 70, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb", tile=(32, 32))
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate")
    window = {"x0": 5, "x1": 60, "y0": 30, "y1": 80}
    with tifffile.TiffFile(tmp_path / "rgb.tif") as tif:
        assert np.array_equal(read_window(tif, 0, window), rgb[30:80, 5:60])
    with tifffile.TiffFile(tmp_path / "planar.tif") as tif:  # read whole, then cropped
        assert np.array_equal(read_window(tif, 0, window), np.moveaxis(rgb, -1, 0)[:, 30:80, 5:60])


def test_out_of_bounds(tmp_path: Path) -> None:
    write_stack(tmp_path / "s.tif", stack(9, 2, 100, 120), tile=(64, 64))
    with tifffile.TiffFile(tmp_path / "s.tif") as tif:
        with pytest.raises(OutOfBounds, match=r"page 2 is out of bounds: the input has 2 pages \(0-1\)"):
            read_window(tif, 2)
        with pytest.raises(OutOfBounds, match=r"window 0-121-0-10 exceeds page 0 \(120 x 100 pixels\)"):
            read_window(tif, 0, {"x0": 0, "x1": 121, "y0": 0, "y1": 10})
        with pytest.raises(OutOfBounds, match="empty or negative"):
            read_window(tif, 0, {"x0": 5, "x1": 5, "y0": 0, "y1": 10})
        with pytest.raises(OutOfBounds):
            read_window(tif, -1)


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_header_agrees_with_tifffile(tmp_path: Path, layout: dict) -> None:
    write_stack(tmp_path / "s.tif", stack(5, 4, 33, 47), **layout)
    with open(tmp_path / "s.tif", "rb") as raw:
        header = read_header(raw)
    assert header.pages == (PageInfo(47, 33, 1, 16, 1),) * 4
    assert header.pages[0].dtype == "uint16"


def test_header_of_mixed_pages(tmp_path: Path) -> None:
    with tifffile.TiffWriter(tmp_path / "mixed.tif") as tiff:
        tiff.write(np.zeros((10, 20), np.uint8), metadata=None)
        tiff.write(np.zeros((30, 40, 3), np.uint8), photometric="rgb", metadata=None)
        tiff.write(np.zeros((5, 6), np.float32), metadata=None)
    with open(tmp_path / "mixed.tif", "rb") as raw:
        pages = read_header(raw).pages
    assert [(p.width, p.height, p.samples, p.dtype) for p in pages] == [
        (20, 10, 1, "uint8"),
        (40, 30, 3, "uint8"),
        (6, 5, 1, "float32"),
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello world, not a tiff",
        b"II*\x00\x08\x00\x00\x00\x05",
        b"II+\x00\x08\x00\x00\x00",
        b"MM\x00*\x00\x00\x00\x08\x00",
    ],
)
def test_not_a_tiff(data: bytes) -> None:
    with pytest.raises(NotATiff):
        read_header(io.BytesIO(data))


def test_an_ifd_loop_is_refused(tmp_path: Path) -> None:
    write_stack(tmp_path / "s.tif", stack(5, 1, 8, 8))
    data = bytearray((tmp_path / "s.tif").read_bytes())
    first = int.from_bytes(data[4:8], "little")
    count = int.from_bytes(data[first : first + 2], "little")
    next_at = first + 2 + 12 * count
    data[next_at : next_at + 4] = first.to_bytes(4, "little")  # the page points at itself
    with pytest.raises(NotATiff, match="loops"):
        read_header(io.BytesIO(bytes(data)))
