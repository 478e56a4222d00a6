"""Processing elements: the registry, and the built-in elements.

An element is a function ``element(data, ctx, **args)``: ``data`` is what
the previous element returned (None for the first), ``ctx`` a
:class:`~davgate.dispel.pipeline.Context` (parameters, input, output) and
``args`` the step's arguments from the template, with parameter references
already filled in. It returns the next data. The last element of a pipeline
writes ``ctx.output`` and returns None, or returns the output's bytes.

An element that finds the request itself at fault raises
:class:`~davgate.dispel.errors.OutOfBounds` (400) or
:class:`~davgate.dispel.errors.InputNotFound` (404); any other exception
is an execution failure (500).

Elements are found by short name: built-ins first, then ``extra`` names
given by configuration (``name: module:function``), then entry points of
the group ``davgate.dispel.elements`` (``name = package.module:function``);
a template may also name ``module:function`` directly.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Any

from davgate.dispel import colormaps, png, pyramid, stretch
from davgate.dispel.errors import ExecutionFailed, OutOfBounds
from davgate.dispel.tiff import read_window, window_bounds

if TYPE_CHECKING:
    import numpy as np

    from davgate.dispel.pipeline import Context

ENTRY_POINT_GROUP = "davgate.dispel.elements"
Element = Callable[..., Any]
BUILT_IN: dict[str, Element] = {}


def builtin(name: str) -> Callable[[Element], Element]:
    def register(function: Element) -> Element:
        BUILT_IN[name] = function
        return function

    return register


class Registry:
    """Finds elements by name; loads each at most once."""

    def __init__(
        self, extra: Mapping[str, str] | None = None, entry_points: Iterable[metadata.EntryPoint] | None = None
    ) -> None:
        self.extra = dict(extra or {})
        self._entry_points = None if entry_points is None else {ep.name: ep for ep in entry_points}
        self._loaded: dict[str, Element] = {}

    def entry_points(self) -> dict[str, metadata.EntryPoint]:
        if self._entry_points is None:
            self._entry_points = {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
        return self._entry_points

    def names(self) -> list[str]:
        return sorted({*BUILT_IN, *self.extra, *self.entry_points()})

    def get(self, name: str) -> Element:
        """The element called ``name``; raises LookupError naming it and the cause."""
        if name in BUILT_IN:
            return BUILT_IN[name]
        if name not in self._loaded:
            self._loaded[name] = self._load(name)
        return self._loaded[name]

    def _load(self, name: str) -> Element:
        try:
            if name in self.extra:
                found = load_path(self.extra[name])
            elif name in self.entry_points():
                found = self.entry_points()[name].load()
            elif ":" in name:
                found = load_path(name)
            else:
                raise LookupError(f"no such element (known: {', '.join(self.names())})")
        except LookupError as error:
            raise LookupError(f"processing element {name!r} cannot be loaded: {error}") from None
        except Exception as error:
            raise LookupError(
                f"processing element {name!r} cannot be loaded: {type(error).__name__}: {error}"
            ) from error
        if not callable(found):
            raise LookupError(f"processing element {name!r} is not callable")  # noqa: TRY004 - the registry's one error
        return found

    def check_args(self, name: str, args: Mapping[str, Any]) -> None:
        """Raise TypeError if the element cannot take these argument names."""
        element = self.get(name)
        try:
            signature = inspect.signature(element)
        except (TypeError, ValueError):
            return
        signature.bind(None, None, **args)


def load_path(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise LookupError(f"expected module:function, got {path!r}")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


# --- reading and selecting -----------------------------------------------------------


@builtin("read_tiff")
def read_tiff(data: Any, ctx: Context, page: int = 0, window: Mapping[str, int] | None = None) -> np.ndarray:
    """Page ``page`` of the input TIFF, or only ``window`` of it; reads only the tiles it needs."""
    return read_window(ctx.input.tiff(), int(page), dict(window) if window is not None else None)


@builtin("read_tile")
def read_tile(
    data: Any, ctx: Context, page: int = 0, z: int = 0, x: int = 0, y: int = 0, size: int = 256
) -> np.ndarray:
    """Tile (x, y) of zoom ``z`` of page ``page``'s pyramid (:mod:`~davgate.dispel.pyramid`), binned from the data."""
    width, height = page_size(ctx, int(page))
    spec = pyramid.tile(width, height, int(size), int(z), int(x), int(y))
    window = read_window(ctx.input.tiff(), int(page), spec.window)
    return window if spec.factor == 1 else bin_means(window, spec.factor)


def page_size(ctx: Context, page: int) -> tuple[int, int]:
    pages = ctx.input.tiff().pages
    if not 0 <= page < len(pages):
        raise OutOfBounds(f"page {page} is out of bounds: the input has {len(pages)} pages (0-{len(pages) - 1})")
    shape = pages[page].shape  # type: ignore[union-attr]
    return shape[1], shape[0]


def bin_means(data: np.ndarray, factor: int) -> np.ndarray:
    """Means of ``factor`` x ``factor`` blocks; blocks cut by the edge average what they have."""
    import numpy as np

    height, width = -(-data.shape[0] // factor) * factor, -(-data.shape[1] // factor) * factor
    padded = np.zeros((height, width, *data.shape[2:]), dtype=np.float64)
    counts = np.zeros((height, width), dtype=np.float64)
    padded[: data.shape[0], : data.shape[1]] = data
    counts[: data.shape[0], : data.shape[1]] = 1
    shape = (height // factor, factor, width // factor, factor)
    sums = padded.reshape(*shape, *data.shape[2:]).sum(axis=(1, 3))
    taken = counts.reshape(shape).sum(axis=(1, 3))
    means = sums / (taken if data.ndim == 2 else taken[..., None])
    return np.rint(means).astype(data.dtype) if data.dtype.kind in "ui" else means.astype(data.dtype)


@builtin("stretch_page")
def stretch_page(
    data: np.ndarray,
    ctx: Context,
    page: int = 0,
    low: float = 2.0,
    high: float = 98.0,
    rescale: Mapping[str, int] | None = None,
) -> np.ndarray:
    """An 8-bit copy stretched by the percentiles of the whole page, so that a pyramid's tiles agree.

    The percentiles are taken once per page and pipeline process, from a
    sample of at most about a million pixels spread over the page.
    """
    if rescale is not None:
        return stretch.between(data, float(rescale["start"]), float(rescale["end"]))
    if not 0 <= float(low) <= float(high) <= 100:
        raise OutOfBounds(f"a stretch takes percentiles 0 <= low <= high <= 100, got {low:g}-{high:g}")
    return stretch.between(data, *page_percentiles(ctx, int(page), float(low), float(high)))


PAGE_PERCENTILES: dict[tuple[str, str, int, float, float], tuple[float, float]] = {}
PAGE_PERCENTILES_KEPT = 64


def page_percentiles(ctx: Context, page: int, low: float, high: float) -> tuple[float, float]:
    key = (ctx.input.rel, ctx.input.etag, page, low, high)
    found = PAGE_PERCENTILES.get(key)
    if found is None:
        width, height = page_size(ctx, page)
        step = max(1, math.isqrt(width * height // stretch.SAMPLE))
        sample = read_window(ctx.input.tiff(), page)[::step, ::step]
        bottom, top = stretch.percentiles(sample.ravel(), (low, high))
        found = PAGE_PERCENTILES[key] = (bottom, top)
        while len(PAGE_PERCENTILES) > PAGE_PERCENTILES_KEPT:
            PAGE_PERCENTILES.pop(next(iter(PAGE_PERCENTILES)))
    return found


@builtin("pad")
def pad(data: np.ndarray, ctx: Context, size: int = 256) -> np.ndarray:
    """An 8-bit image placed in the top left of a transparent ``size`` x ``size`` RGBA square (a whole tile)."""
    import numpy as np

    if data.dtype != np.uint8 or data.ndim not in (2, 3) or data.shape[0] > size or data.shape[1] > size:
        raise ExecutionFailed(f"pad takes an 8-bit image of at most {size} x {size}, not {data.dtype} {data.shape}")
    square = np.zeros((int(size), int(size), 4), dtype=np.uint8)
    height, width = data.shape[:2]
    square[:height, :width, :3] = data[..., None] if data.ndim == 2 else data[..., :3]
    square[:height, :width, 3] = 255
    return square


@builtin("read_tiff_stack")
def read_tiff_stack(data: Any, ctx: Context) -> np.ndarray:
    """Every page of the input TIFF as one array (pages first)."""
    return ctx.input.tiff().asarray()


@builtin("select_layer")
def select_layer(data: np.ndarray, ctx: Context, index: int, axis: int = 0) -> np.ndarray:
    """One layer (index along ``axis``) of a stack."""
    count = data.shape[axis]
    if not 0 <= int(index) < count:
        raise OutOfBounds(f"layer {index} is out of bounds: there are {count} layers (0-{count - 1})")
    return data.take(int(index), axis=axis)


@builtin("crop")
def crop(data: np.ndarray, ctx: Context, window: Mapping[str, int]) -> np.ndarray:
    """The window {x0, x1, y0, y1} (end-exclusive) of an image (rows first)."""
    height, width = data.shape[0], data.shape[1]
    x0, x1, y0, y1 = window_bounds(dict(window), width, height)
    if x1 > width or y1 > height:
        raise OutOfBounds(f"window {x0}-{x1}-{y0}-{y1} exceeds the image ({width} x {height} pixels)")
    return data[y0:y1, x0:x1]


@builtin("downsample")
def downsample(data: np.ndarray, ctx: Context, factor: int = 2, method: str = "mean") -> np.ndarray:
    """Shrink an image by ``factor`` in both directions: ``mean``, ``max`` or ``stride``."""
    import numpy as np

    factor = int(factor)
    if factor < 1:
        raise ExecutionFailed(f"downsample factor must be at least 1, not {factor}")
    if method == "stride":
        return data[::factor, ::factor]
    height, width = data.shape[0] // factor * factor, data.shape[1] // factor * factor
    if height == 0 or width == 0:
        raise OutOfBounds(f"an image of {data.shape[1]} x {data.shape[0]} is smaller than the factor {factor}")
    blocks = data[:height, :width].reshape(height // factor, factor, width // factor, factor, *data.shape[2:])
    if method == "max":
        return blocks.max(axis=(1, 3))
    if method != "mean":
        raise ExecutionFailed(f"downsample method must be mean, max or stride, not {method!r}")
    mean = blocks.mean(axis=(1, 3))
    return np.rint(mean).astype(data.dtype) if data.dtype.kind in "ui" else mean.astype(data.dtype)


@builtin("stretch_8bit")
def stretch_8bit(
    data: np.ndarray, ctx: Context, low: float = 2.0, high: float = 98.0, rescale: Mapping[str, int] | None = None
) -> np.ndarray:
    """A contrast-stretched 8-bit copy: the ``low`` and ``high`` percentiles become 0 and 255.

    ``rescale`` (``{start, end}``, values of the data) takes fixed bounds
    instead, so that previews of several windows compare.
    """
    if not 0 <= float(low) <= float(high) <= 100:
        raise OutOfBounds(f"a stretch takes percentiles 0 <= low <= high <= 100, got {low:g}-{high:g}")
    if rescale is not None:
        return stretch.between(data, float(rescale["start"]), float(rescale["end"]))
    return stretch.to_8bit(data, low, high)


@builtin("colormap")
def colormap(data: np.ndarray, ctx: Context, name: str = "grey") -> np.ndarray:
    """An 8-bit grey image through a colormap (``grey`` leaves it as it is): RGB."""
    import numpy as np

    if name not in colormaps.NAMES:
        raise OutOfBounds(f"unknown colormap {name!r} (known: {', '.join(colormaps.NAMES)})")
    if data.dtype != np.uint8 or data.ndim != 2:
        raise ExecutionFailed(f"colormap takes an 8-bit grey image, not {data.dtype} of shape {data.shape}")
    return data if name == "grey" else colormaps.table(name)[data]


@builtin("fit")
def fit(data: np.ndarray, ctx: Context, size: int | None = None) -> np.ndarray:
    """At most ``size`` pixels on the longer side, by whole-number mean binning (None: as it is)."""
    if size is None:
        return data
    factor = -(-max(data.shape[:2]) // int(size))
    return data if factor <= 1 else downsample(data, ctx, factor=factor)


STATISTICS_PERCENTILES = (1, 2, 5, 25, 50, 75, 95, 98, 99)
HISTOGRAM_BINS = 64


@builtin("statistics")
def statistics(data: np.ndarray, ctx: Context, bins: int = HISTOGRAM_BINS) -> dict[str, Any]:
    """Shape, type, min, max, mean, standard deviation, median, percentiles and a histogram of an array.

    Exactly what NumPy computes (``np.percentile``'s linear method;
    ``np.histogram`` with ``bins`` equal bins from min to max).
    """
    import numpy as np

    if data.size == 0:
        return {"shape": list(data.shape), "dtype": str(data.dtype), "count": 0}
    counts, edges = np.histogram(data, bins=int(bins))
    found = np.percentile(data, STATISTICS_PERCENTILES)
    return {
        "shape": list(data.shape),
        "dtype": str(data.dtype),
        "count": int(data.size),
        "min": data.min().item(),
        "max": data.max().item(),
        "mean": float(data.mean(dtype=np.float64)),
        "std": float(data.std(dtype=np.float64)),
        "median": float(np.median(data)),
        "percentiles": {str(q): float(v) for q, v in zip(STATISTICS_PERCENTILES, found)},
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }


# --- encoding ------------------------------------------------------------------------


@builtin("encode_tiff")
def encode_tiff(data: np.ndarray, ctx: Context, compression: str | None = None) -> None:
    """The array as a TIFF: exact values, no metadata beyond the image itself."""
    import tifffile

    photometric = "minisblack" if data.ndim == 2 else None
    tifffile.imwrite(ctx.output, data, photometric=photometric, compression=compression, metadata=None)


@builtin("encode_png")
def encode_png(data: np.ndarray, ctx: Context, level: int = 1) -> None:
    """An 8-bit or 16-bit grey, RGB or RGBA PNG; zlib ``level`` 1 by default.

    Previews are made while a person waits: higher levels cost many times
    the time for a few percent fewer bytes (BENCHMARKS.md, P14).
    """
    png.write(ctx.output, data, level=int(level))


@builtin("encode_npy")
def encode_npy(data: np.ndarray, ctx: Context) -> None:
    import numpy as np

    np.save(ctx.output, np.asarray(data), allow_pickle=False)


@builtin("encode_csv")
def encode_csv(data: Any, ctx: Context, delimiter: str = ",") -> None:
    """A 1-D or 2-D array as CSV rows (a mapping as name,value rows)."""
    import numpy as np

    if isinstance(data, Mapping):
        rows = "".join(
            f"{k}{delimiter}{json.dumps(v) if isinstance(v, (list, dict)) else v}\n" for k, v in data.items()
        )
        ctx.output.write(rows.encode())
        return
    array = np.asarray(data)
    if array.ndim not in (1, 2):
        raise ExecutionFailed(f"encode_csv takes 1-D or 2-D data, not {array.ndim}-D")
    fmt = "%d" if array.dtype.kind in "uib" else "%.17g"
    np.savetxt(ctx.output, array if array.ndim == 2 else array[:, None], fmt=fmt, delimiter=delimiter)


@builtin("encode_json")
def encode_json(data: Any, ctx: Context, indent: int | None = 2) -> bytes:
    return (json.dumps(plain(data), indent=indent) + "\n").encode()


def plain(value: Any) -> Any:
    """JSON-ready values: arrays as lists, numpy scalars as Python numbers."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
