"""Progress bars for long command line work."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from davgate.dispel.demo import DemoFile, write_store
from davgate.ops.progress import Progress, human_bytes


def test_a_bar_counts_items_and_ends_its_line() -> None:
    stream = io.StringIO()
    with Progress("demo-data", 4, "layers", stream=stream, enabled=True, interval=0) as bar:
        for _ in range(4):
            bar.advance()
    frames = stream.getvalue().split("\r")[1:]
    assert frames[0].startswith("demo-data  [#####...............]  25%  1/4 layers")
    assert frames[-1].startswith("demo-data  [####################] 100%  4/4 layers")
    assert stream.getvalue().endswith("\n")


def test_a_bar_for_bytes_shows_sizes_and_rate() -> None:
    bar = Progress("copy", 3 * 1024**3, "bytes", stream=io.StringIO(), enabled=True)
    bar.started -= 2.0
    bar.advance(1024**3)
    assert "1.0 GiB/3.0 GiB" in bar.line() and "MB/s" in bar.line()
    assert human_bytes(512) == "512 B" and human_bytes(1536) == "1.5 KiB"


def test_no_bar_off_a_terminal_or_with_nothing_to_do() -> None:
    stream = io.StringIO()
    with Progress("demo-data", 10, "layers", stream=stream) as bar:  # StringIO is no terminal
        bar.advance(10)
    with Progress("demo-data", 0, "layers", stream=stream, enabled=True):
        pass
    assert stream.getvalue() == ""


def test_write_store_reports_each_layer(tmp_path: Path) -> None:
    layers: list[int] = []
    tiny = (DemoFile("1", "20200101", 3, 64, 32),)
    write_store(tmp_path, files=tiny, on_layer=lambda: layers.append(1))
    assert len(layers) == 3


def test_demo_data_draws_a_bar_when_asked(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "davgate", "--progress", "always", "demo-data", str(tmp_path / "demo")],
        capture_output=True,
        timeout=120,
        check=False,
    )  # fmt: skip (bytes: text mode would turn the bar's carriage returns into newlines)
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    frames = stderr.rstrip("\n").split("\r")
    assert len(frames) > 2, stderr  # redrawn in place
    assert frames[-1].startswith("demo-data  [####################] 100%  44/44 layers"), stderr
    assert "tiffstore/312/20181129.tif: 13 layers" in done.stdout.decode()
    quiet = subprocess.run(
        [sys.executable, "-m", "davgate", "demo-data", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert quiet.returncode == 0 and quiet.stderr == ""  # not a terminal, and nothing to write
