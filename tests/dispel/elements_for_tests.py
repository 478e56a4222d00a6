"""Processing elements that tests load by dotted path or entry point (they run in pipeline processes)."""

from __future__ import annotations

import os
import time
from typing import Any

from davgate.dispel.errors import OutOfBounds


def sleep(data: Any, ctx: Any, seconds: float = 1.0) -> Any:
    time.sleep(seconds)
    return data


def crash(data: Any, ctx: Any) -> Any:
    os._exit(3)


def boom(data: Any, ctx: Any) -> Any:
    raise ValueError("boom went the element")


def refuse(data: Any, ctx: Any) -> Any:
    raise OutOfBounds("this element refuses every window")


def scale(data: Any, ctx: Any, factor: int = 2) -> Any:
    return data * factor


def mark(data: Any, ctx: Any, path: str) -> Any:
    """Append one line per run to ``path``: counts runs independently of davgate."""
    with open(path, "a") as marks:
        marks.write(f"{os.getpid()}\n")
    return data
