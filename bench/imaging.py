"""DISPEL beside TiTiler (P13, P14): "this window of that image, as a URL", both over HTTP.

The same multi-page TIFF (the seed's subject 312, 2018-11-29: 13 layers of
2048 x 1024), the same windows, one round after another:

- cold windows as ``.npy``: davgate runs its template, TiTiler crops with
  rio-tiler and GDAL (P13);
- the same windows again: davgate serves its cache, TiTiler computes again;
- cold ``.png`` previews: davgate's contrast stretch, TiTiler's rescale of
  the full 16-bit range (P14);
- 16 distinct cold windows at once: windows per second.

Windows are 256-1024 pixels wide and 128-400 high, drawn with a fixed seed
and never repeated within a run, so every "cold" request is one nobody made
before. TiTiler's output of this non-georeferenced TIFF is the same window
flipped upside down (its rows run the other way); it is the tool people
would pick, measured as they would run it.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterator

from bench import clients
from bench.procs import Server
from bench.runner import Context, Phase, interleave

IMAGE = "tiffstore/312/20181129"
LAYERS, WIDTH, HEIGHT = 13, 2048, 1024
SEED = 20181129
PNG_RESCALE = "0,65535"


class Windows:
    """Distinct (layer, x0, x1, y0, y1) windows, drawn once per run."""

    def __init__(self) -> None:
        self.random = random.Random(SEED)
        self.seen: set[tuple[int, int, int, int, int]] = set()

    def take(self, count: int) -> list[tuple[int, int, int, int, int]]:
        return [next(self.fresh()) for _ in range(count)]

    def fresh(self) -> Iterator[tuple[int, int, int, int, int]]:
        while True:
            w, h = self.random.randint(256, 1024), self.random.randint(128, 400)
            x0, y0 = self.random.randint(0, WIDTH - w), self.random.randint(0, HEIGHT - h)
            window = (self.random.randrange(LAYERS), x0, x0 + w, y0, y0 + h)
            if window not in self.seen:
                self.seen.add(window)
                yield window


def davgate_url(ctx: Context, window: tuple[int, ...], suffix: str) -> str:
    layer, x0, x1, y0, y1 = window
    return f"{ctx.davgate.url}/dispel/{IMAGE}/{layer}/{x0}-{x1}-{y0}-{y1}{suffix}"


def titiler_url(ctx: Context, window: tuple[int, ...], suffix: str) -> str:
    layer, x0, x1, y0, y1 = window
    source = f"GTIFF_DIR:{layer + 1}:{ctx.fs / 'demo' / IMAGE}.tif"  # GDAL counts pages from 1
    extra = f"&rescale={PNG_RESCALE}" if suffix == ".png" else ""
    return f"{titiler(ctx).url}/bbox/{x0},{y0},{x1},{y1}{suffix}?url={source}{extra}"


def titiler(ctx: Context) -> Server:
    return ctx.others["titiler"]


URLS = {"davgate": davgate_url, "titiler": titiler_url}


def median_ms(server: Server, urls: list[str]) -> tuple[float, list[float]]:
    """One keep-alive connection, the URLs in turn; the median time and every time, in ms."""
    times = [t.seconds * 1000 for t in clients.curl(server, urls)]
    return statistics.median(times), times


WINDOWS = Windows()  # one draw per run (a run is one process)


def warm_up(ctx: Context, windows: Windows) -> None:
    """Every worker of both servers has read the TIFF and started its processes."""
    for name, url in URLS.items():
        server = ctx.davgate if name == "davgate" else titiler(ctx)
        targets = [(url(ctx, window, ".npy"), "/dev/null") for window in windows.take(16)]
        clients.curl_many(server, targets, "--parallel", "--parallel-immediate", "--parallel-max", "16")


def sequential(ctx: Context, name: str, title: str, suffix: str, windows: Windows, again: bool = False) -> Phase:
    """A median time per round over ``ctx.settings.imaging_windows`` windows, for both servers."""
    n = ctx.settings.imaging_windows
    phase = Phase(name, f"{title}, median of {n} windows", "ms", "lower")
    rounds = {(who, r): windows.take(n) for r in range(ctx.settings.rounds) for who in URLS}
    if again:  # the windows of a first pass, asked again
        for (who, _), chosen in rounds.items():
            server = ctx.davgate if who == "davgate" else titiler(ctx)
            clients.curl(server, [URLS[who](ctx, window, suffix) for window in chosen])

    def measure(who: str):
        server = ctx.davgate if who == "davgate" else titiler(ctx)
        return lambda r: median_ms(server, [URLS[who](ctx, window, suffix) for window in rounds[who, r]])

    return interleave(ctx, phase, [(who, measure(who)) for who in URLS])


def imaging_cold_npy(ctx: Context, windows: Windows = WINDOWS) -> Phase:
    warm_up(ctx, windows)
    return sequential(ctx, "imaging_cold_npy", "cold window as .npy", ".npy", windows)


def imaging_repeated_npy(ctx: Context, windows: Windows = WINDOWS) -> Phase:
    return sequential(ctx, "imaging_repeated_npy", "the same .npy windows again", ".npy", windows, again=True)


def imaging_cold_png(ctx: Context, windows: Windows = WINDOWS) -> Phase:
    return sequential(ctx, "imaging_cold_png", "cold .png preview", ".png", windows)


def imaging_concurrent(ctx: Context, windows: Windows = WINDOWS) -> Phase:
    k = ctx.settings.flight_clients
    phase = Phase("imaging_concurrent", f"{k} distinct cold .npy windows at once", "windows/s", "higher")

    def measure(who: str):
        server = ctx.davgate if who == "davgate" else titiler(ctx)

        def run(r: int) -> float:
            targets = [(URLS[who](ctx, window, ".npy"), "/dev/null") for window in windows.take(k)]
            start = time.monotonic()
            clients.curl_many(server, targets, "--parallel", "--parallel-immediate", "--parallel-max", str(k))
            return k / (time.monotonic() - start)

        return run

    return interleave(ctx, phase, [(who, measure(who)) for who in URLS])


ALL = (imaging_cold_npy, imaging_repeated_npy, imaging_cold_png, imaging_concurrent)
