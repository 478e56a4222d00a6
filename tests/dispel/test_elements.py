"""The element registry (built-ins, configured, entry points) and the built-in elements."""

from __future__ import annotations

import io
import json
import math
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from davgate.dispel import colormaps, elements, stretch
from davgate.dispel.elements import ENTRY_POINT_GROUP, Registry
from davgate.dispel.errors import ExecutionFailed, OutOfBounds
from davgate.dispel.pipeline import Context, InputFile
from tests.dispel.conftest import decode_png, stack, write_stack


def context(tmp_path: Path, source: Path | None = None) -> Context:
    out = open(tmp_path / "out.bin", "w+b")  # noqa: SIM115 - closed by the test
    source = source or tmp_path / "none.tif"
    return Context("t", {}, InputFile(source.name, "etag", path=str(source)), out)


def written(ctx: Context) -> bytes:
    ctx.output.flush()
    ctx.output.seek(0)
    data = ctx.output.read()
    ctx.output.close()
    return data


class TestRegistry:
    def test_built_ins(self) -> None:
        registry = Registry(entry_points=[])
        assert {"read_tiff", "select_layer", "crop", "downsample", "statistics", "encode_tiff", "encode_png",
                "encode_npy", "encode_csv", "encode_json", "stretch_8bit"} <= set(registry.names())  # fmt: skip
        assert registry.get("crop") is elements.crop

    def test_unknown_names_the_element(self) -> None:
        with pytest.raises(LookupError, match="processing element 'nope' cannot be loaded: no such element"):
            Registry(entry_points=[]).get("nope")
        with pytest.raises(LookupError, match="'no.such.module:f' cannot be loaded: ModuleNotFoundError"):
            Registry(entry_points=[]).get("no.such.module:f")

    def test_explicit_entry_points_and_configured_names(self) -> None:
        ep = metadata.EntryPoint("triple", "tests.dispel.elements_for_tests:scale", ENTRY_POINT_GROUP)
        registry = Registry({"double": "tests.dispel.elements_for_tests:scale"}, entry_points=[ep])
        assert registry.get("triple")(np.array([1]), None, factor=3)[0] == 3
        assert registry.get("double") is registry.get("triple")
        assert "triple" in registry.names() and "double" in registry.names()

    def test_a_dotted_path_needs_no_registration(self) -> None:
        assert Registry(entry_points=[]).get("tests.dispel.elements_for_tests:scale")(np.array([2]), None)[0] == 4

    def test_an_installed_distribution_is_found(self, installed_element: str) -> None:
        assert Registry().get(installed_element)(np.array([5]), None)[0] == 50

    def test_argument_names_are_checked(self) -> None:
        registry = Registry(entry_points=[])
        registry.check_args("crop", {"window": "{grid}"})
        with pytest.raises(TypeError, match="unexpected keyword argument 'size'"):
            registry.check_args("crop", {"window": "{grid}", "size": 3})


@pytest.fixture
def installed_element(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A tiny third-party distribution with a dist-info and an entry point, on sys.path."""
    site = tmp_path / "site"
    package = site / "davgate_test_plugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("def tenfold(data, ctx):\n    return data * 10\n")
    info = site / "davgate_test_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: davgate-test-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ntenfold = davgate_test_plugin:tenfold\n")
    monkeypatch.syspath_prepend(str(site))
    yield "tenfold"
    sys.modules.pop("davgate_test_plugin", None)


class TestBuiltIns:
    def test_read_tiff_window(self, tmp_path: Path) -> None:
        pages = stack(1, 3, 40, 50)
        write_stack(tmp_path / "s.tif", pages, tile=(16, 16))
        ctx = context(tmp_path, tmp_path / "s.tif")
        got = elements.read_tiff(None, ctx, page=2, window={"x0": 3, "x1": 20, "y0": 5, "y1": 40})
        assert np.array_equal(got, pages[2, 5:40, 3:20])
        assert np.array_equal(elements.read_tiff_stack(None, ctx), pages)
        ctx.input.close()
        ctx.output.close()

    def test_select_layer_and_crop(self) -> None:
        pages = stack(2, 4, 10, 12)
        assert np.array_equal(elements.select_layer(pages, None, index=3), pages[3])
        with pytest.raises(OutOfBounds, match=r"layer 4 is out of bounds: there are 4 layers \(0-3\)"):
            elements.select_layer(pages, None, index=4)
        assert np.array_equal(
            elements.crop(pages[0], None, window={"x0": 1, "x1": 12, "y0": 2, "y1": 3}), pages[0, 2:3, 1:12]
        )
        with pytest.raises(OutOfBounds, match=r"exceeds the image \(12 x 10 pixels\)"):
            elements.crop(pages[0], None, window={"x0": 0, "x1": 13, "y0": 0, "y1": 1})

    def test_downsample(self) -> None:
        image = np.arange(36, dtype=np.uint16).reshape(6, 6)
        assert elements.downsample(image, None, factor=2).tolist()[0] == [4, 6, 8]  # rounded means
        assert elements.downsample(image, None, factor=3, method="max").tolist() == [[14, 17], [32, 35]]
        assert elements.downsample(image, None, factor=4, method="stride").tolist() == [[0, 4], [24, 28]]
        assert elements.downsample(image, None, factor=4).shape == (1, 1)
        with pytest.raises(ExecutionFailed, match="mean, max or stride"):
            elements.downsample(image, None, method="median")

    def test_stretch_8bit(self) -> None:
        image = np.linspace(1000, 3000, 10000, dtype=np.float64).astype(np.uint16).reshape(100, 100)
        stretched = elements.stretch_8bit(image, None, low=0, high=100)
        assert stretched.dtype == np.uint8 and stretched.min() == 0 and stretched.max() == 255
        flat = elements.stretch_8bit(np.full((3, 3), 7, np.uint16), None)
        assert flat.dtype == np.uint8 and not flat.any()

    def test_statistics_and_json(self, tmp_path: Path) -> None:
        stats = elements.statistics(np.array([[1, 2], [3, 4]], np.uint16), None, bins=3)
        assert stats == {"shape": [2, 2], "dtype": "uint16", "count": 4, "min": 1, "max": 4, "mean": 2.5,
                         "std": pytest.approx(1.118, abs=1e-3), "median": 2.5,
                         "percentiles": pytest.approx({"1": 1.03, "2": 1.06, "5": 1.15, "25": 1.75, "50": 2.5,
                                                       "75": 3.25, "95": 3.85, "98": 3.94, "99": 3.97}),
                         "histogram": {"edges": [1.0, 2.0, 3.0, 4.0], "counts": [1, 1, 2]}}  # fmt: skip
        data = elements.encode_json(stats, None)
        assert json.loads(data)["max"] == 4

    def test_statistics_are_numpys_own(self) -> None:
        image = np.random.default_rng(7).normal(3000, 400, (123, 77)).astype(np.uint16)
        stats = elements.statistics(image, None)
        counts, edges = np.histogram(image, bins=elements.HISTOGRAM_BINS)
        assert stats["histogram"] == {"edges": edges.tolist(), "counts": counts.tolist()}
        assert sum(stats["histogram"]["counts"]) == image.size
        for q, value in stats["percentiles"].items():
            assert value == np.percentile(image, float(q))
        assert (stats["mean"], stats["std"]) == (image.mean(dtype=np.float64), image.std(dtype=np.float64))

    def test_previews_take_a_colormap_fixed_bounds_and_a_size(self) -> None:
        image = np.arange(40_000, dtype=np.uint16).reshape(100, 400)
        small = elements.fit(image, None, size=100)
        assert small.shape == (25, 100)
        assert elements.fit(image, None, size=None) is image
        fixed = elements.stretch_8bit(image, None, rescale={"start": 0, "end": 39_999})
        assert fixed[0, 0] == 0 and fixed[-1, -1] == 255
        coloured = elements.colormap(fixed, None, name="viridis")
        assert coloured.shape == (100, 400, 3) and coloured.dtype == np.uint8
        assert elements.colormap(fixed, None, name="grey") is fixed
        with pytest.raises(OutOfBounds, match="unknown colormap 'jet'"):
            elements.colormap(fixed, None, name="jet")
        with pytest.raises(OutOfBounds, match="percentiles 0 <= low <= high <= 100"):
            elements.stretch_8bit(image, None, low=50, high=10)

    def test_encode_tiff_is_exact(self, tmp_path: Path) -> None:
        image = stack(3, 1, 30, 40)[0]
        ctx = context(tmp_path)
        elements.encode_tiff(image, ctx)
        data = written(ctx)
        assert np.array_equal(tifffile.imread(io.BytesIO(data)), image)
        expected = io.BytesIO()
        tifffile.imwrite(expected, image, photometric="minisblack", metadata=None)
        assert data == expected.getvalue()

    @pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
    def test_encode_png(self, tmp_path: Path, dtype) -> None:
        image = np.random.default_rng(5).integers(0, np.iinfo(dtype).max, (300, 70), dtype=dtype)
        ctx = context(tmp_path)
        elements.encode_png(image, ctx)
        assert np.array_equal(decode_png(written(ctx)), image)

    def test_encode_png_rgb_and_refusals(self, tmp_path: Path) -> None:
        rgb = np.random.default_rng(6).integers(0, 255, (20, 30, 3), dtype=np.uint8)
        ctx = context(tmp_path)
        elements.encode_png(rgb, ctx)
        assert np.array_equal(decode_png(written(ctx)), rgb)
        with pytest.raises(ExecutionFailed, match="uint8 or uint16.*stretch_8bit first"):
            elements.encode_png(np.zeros((2, 2), np.float32), context(tmp_path))

    def test_encode_npy_and_csv(self, tmp_path: Path) -> None:
        image = stack(4, 1, 3, 4)[0]
        ctx = context(tmp_path)
        elements.encode_npy(image, ctx)
        assert np.array_equal(np.load(io.BytesIO(written(ctx))), image)
        ctx = context(tmp_path)
        elements.encode_csv(image, ctx)
        lines = written(ctx).decode().splitlines()
        assert lines[0] == ",".join(str(v) for v in image[0]) and len(lines) == 3
        ctx = context(tmp_path)
        elements.encode_csv({"min": 1, "shape": [3, 4]}, ctx)
        assert written(ctx).decode() == "min,1\nshape,[3, 4]\n"


@settings(max_examples=200, deadline=None)
@given(
    pixels=st.sampled_from([np.uint8, np.uint16]).flatmap(lambda dtype: arrays(dtype, st.integers(1, 400))),
    bounds=st.tuples(st.floats(0, 100), st.floats(0, 100)).map(sorted),
)
def test_the_tabled_stretch_is_the_float_stretch(pixels: np.ndarray, bounds: list[float]) -> None:
    low, high = bounds
    # The general path, as it was before the histogram and the table.
    sample = pixels.astype(np.float64)
    bottom, top = (float(v) for v in np.percentile(sample, [low, high]))
    if top <= bottom or not math.isfinite(255.0 / (top - bottom)):
        expected = np.where(pixels > bottom, 255, 0).astype(np.uint8)
    else:
        scaled = (pixels.astype(np.float32) - np.float32(bottom)) * np.float32(255.0 / (top - bottom))
        expected = np.clip(scaled, 0, 255).astype(np.uint8)
    assert stretch.percentiles(pixels, (low, high)) == [bottom, top]
    assert np.array_equal(elements.stretch_8bit(pixels, None, low=low, high=high), expected)


def test_colormaps_are_close_to_the_published_end_points() -> None:
    # matplotlib's tables at 0 and 255 (public domain data), within a few levels.
    published = {
        "viridis": [(68, 1, 84), (253, 231, 37)],
        "magma": [(0, 0, 4), (252, 253, 191)],
        "inferno": [(0, 0, 4), (252, 255, 164)],
        "plasma": [(13, 8, 135), (240, 249, 33)],
    }
    for name, ends in published.items():
        table = colormaps.table(name).astype(int)
        for level, rgb in zip((0, 255), ends):
            assert np.abs(table[level] - rgb).max() <= 12, (name, level, table[level].tolist(), rgb)
    assert colormaps.table("grey")[77].tolist() == [77, 77, 77]
