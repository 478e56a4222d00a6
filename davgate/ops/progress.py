"""A one-line progress bar on stderr for long command line work (demo-data, copies).

Drawn only on a terminal unless forced (``davgate --progress always``), at
most ten times a second, and cleared with a final line when done::

    demo-data  [##########..........]  52%  23/44 layers  3.1 s
    copy       [####################] 100%  1.0/1.0 GiB  412 MB/s  2.6 s
"""

from __future__ import annotations

import sys
import time
from typing import IO, Literal

Mode = Literal["auto", "always", "never"]
WIDTH = 20
UNITS = ("B", "KiB", "MiB", "GiB", "TiB")

#: What ``davgate --progress`` chose for this process.
mode: Mode = "auto"


def human_bytes(count: float) -> str:
    for unit in UNITS:
        if count < 1024 or unit == UNITS[-1]:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class Progress:
    """Counts work done out of ``total`` (items, or bytes with ``unit="bytes"``)."""

    def __init__(
        self,
        label: str,
        total: int,
        unit: str = "",
        *,
        stream: IO[str] | None = None,
        enabled: bool | None = None,
        interval: float = 0.1,
    ) -> None:
        self.label = label
        self.total = max(0, total)
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = self._enabled() if enabled is None else enabled
        self.interval = interval
        self.done = 0
        self.started = time.monotonic()
        self._drawn = 0.0

    def _enabled(self) -> bool:
        if mode != "auto":
            return mode == "always"
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def advance(self, amount: int = 1) -> None:
        self.done += amount
        now = time.monotonic()
        if self.enabled and now - self._drawn >= self.interval:
            self._drawn = now
            self._draw("\r")

    def close(self) -> None:
        """Draw the final state and end the line (nothing if there was nothing to do)."""
        if self.enabled and (self.done or self._drawn):
            self._draw("\r")
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def line(self) -> str:
        """The bar as text, e.g. ``demo-data [#####...] 25% 11/44 layers 1.2 s``."""
        fraction = min(1.0, self.done / self.total) if self.total else 1.0
        filled = int(round(fraction * WIDTH))
        bar = "#" * filled + "." * (WIDTH - filled)
        elapsed = time.monotonic() - self.started
        parts = [f"{self.label}  [{bar}] {fraction * 100:3.0f}%", self._amounts(elapsed), f"{elapsed:.1f} s"]
        return "  ".join(p for p in parts if p)

    def _amounts(self, elapsed: float) -> str:
        if self.unit != "bytes":
            return f"{self.done}/{self.total} {self.unit}".rstrip()
        rate = f"  {self.done / elapsed / 1e6:.0f} MB/s" if elapsed > 0.05 else ""
        return f"{human_bytes(self.done)}/{human_bytes(self.total)}{rate}"

    def _draw(self, start: str) -> None:
        self.stream.write(start + self.line())
        self.stream.flush()
