"""``davgate demo-data DIR``: a sample TIFF store for the ``tiffstore`` template.

Writes ``DIR/tiffstore/<subject>/<date>.tif``: multi-page uint16 TIFFs that
look like microscope z-stacks (a smooth background, cells that come into
focus over a few layers, sensor noise). The files differ the way real ones
do: tiled or in strips, large or small, one compressed. The seed's example
(subject 312, date 20181129: 13 layers of 2048 x 1024 pixels, tiled) is
among them. Content is reproducible (fixed seeds); existing files are kept
unless ``force`` is given.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class DemoFile:
    subject: str
    date: str
    layers: int
    width: int
    height: int
    layout: dict[str, Any] = field(default_factory=dict)  # tifffile.imwrite options

    @property
    def rel(self) -> str:
        return f"tiffstore/{self.subject}/{self.date}.tif"


DEMO_FILES = (
    DemoFile("312", "20181129", 13, 2048, 1024, {"tile": (256, 256)}),  # the seed's example
    DemoFile("312", "20190306", 8, 1024, 768, {"rowsperstrip": 64}),
    DemoFile("313", "20181129", 13, 1024, 1024, {"tile": (256, 256)}),
    DemoFile("313", "20190521", 6, 1024, 768, {"rowsperstrip": 32, "compression": "zlib", "predictor": True}),
    DemoFile("401", "20200115", 4, 2048, 2048, {"tile": (512, 512)}),
)


def write_store(
    root: str | os.PathLike[str],
    *,
    force: bool = False,
    files: tuple[DemoFile, ...] = DEMO_FILES,
    on_layer: Callable[[], object] | None = None,
) -> list[Path]:
    """Write the demo files under ``root``; returns the paths written (existing ones are kept).

    ``on_layer`` is called after each layer written (a progress bar).
    """
    written = []
    for demo in files:
        target = Path(root) / demo.rel
        if target.exists() and not force:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        write_file(target, demo, on_layer)
        written.append(target)
    return written


def write_file(target: Path, demo: DemoFile, on_layer: Callable[[], object] | None = None) -> None:
    """Write one z-stack atomically (a temporary file beside the target, then rename)."""
    import tifffile

    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        stack = StackMaker(demo)
        with tifffile.TiffWriter(temp) as tiff:
            for z in range(demo.layers):
                tiff.write(stack.layer(z), photometric="minisblack", metadata=None, **demo.layout)
                if on_layer is not None:
                    on_layer()
        os.replace(temp, target)
    finally:
        if temp.exists():
            temp.unlink()


class StackMaker:
    """Layers of a synthetic z-stack: background, cells in focus at their own depth, noise."""

    CELLS_PER_MEGAPIXEL = 40

    def __init__(self, demo: DemoFile) -> None:
        import numpy as np

        self.demo = demo
        self.rng = np.random.default_rng(zlib.crc32(demo.rel.encode()))
        h, w = demo.height, demo.width
        ys = np.linspace(0.0, 1.0, h, dtype=np.float32)
        xs = np.linspace(0.0, 1.0, w, dtype=np.float32)
        self.background = 900 + 500 * np.sin(3.0 * ys)[:, None] + 400 * np.cos(2.0 * xs)[None, :]
        self.noise = self.rng.integers(0, 120, size=(h, w), dtype=np.uint16)
        count = max(8, int(self.CELLS_PER_MEGAPIXEL * h * w / 1e6))
        self.cells = [
            (
                self.rng.uniform(0, w), self.rng.uniform(0, h), self.rng.uniform(6, 40),
                self.rng.uniform(0, demo.layers - 1), self.rng.uniform(0.8, 3.0), self.rng.uniform(4000, 30000),
            )
            for _ in range(count)
        ]  # fmt: skip

    def layer(self, z: int) -> np.ndarray:
        import numpy as np

        image = self.background * np.float32(1.0 + 0.02 * z)
        for x, y, radius, depth, spread, peak in self.cells:
            focus = np.exp(-((z - depth) ** 2) / (2 * spread**2))
            if focus > 0.02:
                add_blob(image, x, y, radius * (1.5 - 0.5 * focus), peak * focus)
        shift = (z * 37) % self.demo.width
        image += np.roll(self.noise, shift, axis=1)
        return np.clip(image, 0, 65535).astype(np.uint16)


def add_blob(image: np.ndarray, x: float, y: float, sigma: float, peak: float) -> None:
    """Add a Gaussian blob, computed only inside its 3-sigma box."""
    import numpy as np

    h, w = image.shape
    x0, x1 = max(0, int(x - 3 * sigma)), min(w, int(x + 3 * sigma) + 1)
    y0, y1 = max(0, int(y - 3 * sigma)), min(h, int(y + 3 * sigma) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    gx = np.exp(-((np.arange(x0, x1, dtype=np.float32) - x) ** 2) / (2 * sigma**2))
    gy = np.exp(-((np.arange(y0, y1, dtype=np.float32) - y) ** 2) / (2 * sigma**2))
    image[y0:y1, x0:x1] += np.float32(peak) * gy[:, None] * gx[None, :]


def command(folder: Path, force: bool) -> int:
    """The ``davgate demo-data`` command (with a progress bar on a terminal)."""
    from davgate.ops.progress import Progress

    todo = [demo for demo in DEMO_FILES if force or not (folder / demo.rel).exists()]
    with Progress("demo-data", sum(demo.layers for demo in todo), "layers") as bar:
        written = write_store(folder, force=force, on_layer=bar.advance)
    for demo in DEMO_FILES:
        path = folder / demo.rel
        state = "written" if path in written else "kept"
        print(f"{path}: {demo.layers} layers of {demo.width} x {demo.height} uint16 ({state})")
    return 0
