"""Contrast stretch for previews: percentiles, then an 8-bit mapping; exact, and fast on 8 and 16-bit images.

For unsigned 8 or 16-bit pixels, the percentiles come from a histogram (one
pass, no sort) and the mapping is a table with one entry per possible value,
indexed by the pixels: the very numbers ``np.percentile`` (its default,
linear method) and the float32 formula give, at a fraction of the cost. Other
types take the general path.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

SAMPLE = 1_000_000  # percentiles are taken over at most about this many pixels, evenly spaced


def to_8bit(data: np.ndarray, low: float, high: float) -> np.ndarray:
    """The ``low`` and ``high`` percentiles become 0 and 255; values between scale linearly."""
    import numpy as np

    values = data.ravel()
    sample = values[:: max(1, values.size // SAMPLE)]
    if sample.size == 0:
        return np.zeros(data.shape, dtype=np.uint8)
    return between(data, *percentiles(sample, (float(low), float(high))))


def between(data: np.ndarray, bottom: float, top: float) -> np.ndarray:
    """``bottom`` and below become 0, ``top`` and above 255; values between scale linearly."""
    import numpy as np

    if top <= bottom or not math.isfinite(255.0 / (top - bottom)):  # no range, or one too narrow to scale
        return np.where(data > bottom, 255, 0).astype(np.uint8)
    if tabled(data):
        return scale(np.arange(1 << (8 * data.dtype.itemsize), dtype=np.float32), bottom, top)[data]
    return scale(data.astype(np.float32), bottom, top)


def scale(values: np.ndarray, bottom: float, top: float) -> np.ndarray:
    import numpy as np

    scaled = (values - np.float32(bottom)) * np.float32(255.0 / (top - bottom))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def tabled(data: np.ndarray) -> bool:
    return data.dtype.kind == "u" and data.dtype.itemsize <= 2


def percentiles(sample: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """``np.percentile(sample, qs)`` (linear method), by histogram for unsigned 8 and 16-bit samples."""
    import numpy as np

    if not tabled(sample):
        return [float(v) for v in np.percentile(sample.astype(np.float64), qs)]
    below = np.cumsum(np.bincount(sample, minlength=1 << (8 * sample.dtype.itemsize)))
    last = sample.size - 1
    found = []
    for q in qs:
        virtual = (q / 100.0) * last
        previous = min(max(math.floor(virtual), 0), last)
        a, b = (float(np.searchsorted(below, k, side="right")) for k in (previous, min(previous + 1, last)))
        found.append(lerp(a, b, virtual - previous))
    return found


def lerp(a: float, b: float, t: float) -> float:
    """numpy's own interpolation between two order statistics, rounding included."""
    difference = b - a
    return b - difference * (1 - t) if t >= 0.5 else a + difference * t
