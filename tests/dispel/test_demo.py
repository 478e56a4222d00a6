"""``davgate demo-data``: a realistic store that includes the seed's example."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from davgate.cli import main
from davgate.dispel.demo import DEMO_FILES
from davgate.dispel.tiff import read_header
from tests.dispel.demo_store import demo_store_path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_store_path(tmp_path_factory)


def test_the_seeds_example_is_there(demo: Path) -> None:
    with tifffile.TiffFile(demo / "tiffstore/312/20181129.tif") as tif:
        assert len(tif.pages) >= 13
        for page in tif.pages:
            assert page.dtype == np.uint16
            assert page.imagewidth >= 2048 and page.imagelength >= 1024
            assert page.is_tiled
        layer = tif.pages[12].asarray()
    window = layer[0:400, 0:1200]
    assert window.std() > 100  # structure, not a constant


def test_several_subjects_and_dates_tiled_and_not(demo: Path) -> None:
    files = sorted(demo.glob("tiffstore/*/*.tif"))
    subjects = {f.parent.name for f in files}
    assert len(files) == len(DEMO_FILES) >= 5 and len(subjects) >= 3
    tiled = []
    for path in files:
        with tifffile.TiffFile(path) as tif, open(path, "rb") as raw:
            assert len(tif.pages) > 1 and tif.pages[0].dtype == np.uint16
            assert len(read_header(raw).pages) == len(tif.pages)
            tiled.append(tif.pages[0].is_tiled)
    assert any(tiled) and not all(tiled)


def test_layers_differ_like_a_z_stack(demo: Path) -> None:
    with tifffile.TiffFile(demo / "tiffstore/312/20181129.tif") as tif:
        first, middle = tif.pages[0].asarray(), tif.pages[6].asarray()
    assert not np.array_equal(first, middle)


def test_a_second_run_keeps_existing_files(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = demo / "tiffstore/312/20181129.tif"
    before = seed.stat().st_mtime_ns
    assert main(["demo-data", str(demo)]) == 0
    assert seed.stat().st_mtime_ns == before
    out = capsys.readouterr().out
    assert f"{seed}: 13 layers of 2048 x 1024 uint16 (kept)" in out
