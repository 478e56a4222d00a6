"""The demo store (``davgate demo-data``), written once per test session and shared."""

from __future__ import annotations

from pathlib import Path

import pytest

_made: dict[Path, Path] = {}


def demo_store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a demo store written by the CLI; reused by every test of the session."""
    from davgate.cli import main

    base = tmp_path_factory.getbasetemp()
    if base not in _made:
        folder = tmp_path_factory.mktemp("demo")
        assert main(["demo-data", str(folder)]) == 0
        _made[base] = folder
    return _made[base]
