"""The anchor phases (P1-P6): davgate and every anchor on the same data, interleaved."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from bench import clients
from bench.procs import BenchError, Server
from bench.runner import Context, Measure, Phase, interleave

RESPONSE = re.compile(rb"<(?:[A-Za-z][\w.-]*:)?response[\s>]")
PUT_FILES = 4096  # distinct names per wrk thread in the 4 KiB PUT phase (then overwrites)


def contenders(ctx: Context, measure: Callable[[Server, int], Any]) -> list[tuple[str, Measure]]:
    """Every server, each measured by ``measure(server, round)``."""
    return [(name, functools.partial(by_round, measure, server)) for name, server in ctx.servers.items()]


def by_round(measure: Callable[[Server, int], Any], server: Server, r: int) -> Any:
    return measure(server, r)


WARM_CONNECTIONS = 16  # at once: every davgate worker takes some of them


def touch(ctx: Context) -> Callable[[str], None]:
    """A warm-up before a phase's rounds: small GETs from each server, on many connections at once.

    Each davgate worker verifies a password once (bcrypt, cost 12: ~0.25 s)
    and then remembers it; one GET would warm one worker only, and the first
    timed transfer that lands on another would carry that quarter second.
    """

    def warm_up(name: str) -> None:
        server = ctx.servers[name]
        url = server.data_url("small/s-0000")
        targets = [(url, "/dev/null")] * WARM_CONNECTIONS
        clients.curl_many(
            server, targets, "--parallel", "--parallel-immediate", "--parallel-max", str(WARM_CONNECTIONS)
        )

    return warm_up


def big_get(ctx: Context) -> Phase:
    phase = Phase("big_get", f"{size_text(ctx.settings.big_bytes)} GET (curl)", "MB/s", "higher")

    def measure(server: Server, r: int) -> float:
        transfer = clients.get(server, server.data_url("big.bin"))
        check_size(server, transfer.bytes, ctx.settings.big_bytes)
        return transfer.mb_per_s

    return interleave(ctx, phase, contenders(ctx, measure), warm_up=touch(ctx))


def big_put(ctx: Context) -> Phase:
    phase = Phase("big_put", f"{size_text(ctx.settings.big_bytes)} PUT (curl)", "MB/s", "higher")
    source = ctx.fs / "www" / "big.bin"

    def measure(server: Server, r: int) -> float:
        target = ctx.fs / "www" / "put" / f"{server.name}-{r}.bin"
        transfer = clients.put(server, server.data_url(f"put/{target.name}"), source)
        check_size(server, target.stat().st_size, ctx.settings.big_bytes)
        target.unlink()
        return transfer.mb_per_s

    return interleave(ctx, phase, contenders(ctx, measure), warm_up=touch(ctx))


def propfind(ctx: Context, which: str) -> Phase:
    body = clients.PROPFIND_ALLPROP if which == "allprop" else clients.PROPFIND_4PROPS
    files = ctx.settings.propfind_files
    label = "allprop" if which == "allprop" else "4 props"
    phase = Phase(f"propfind_{which}", f"PROPFIND Depth:1, {files:,} files, {label}", "ms", "lower")

    def request(server: Server) -> float:
        output = ctx.out(f"{phase.name}-{server.name}.xml")
        transfer = clients.propfind(server, server.data_url("props/"), body, output)
        found = len(RESPONSE.findall(output.read_bytes()))
        if found != files + 1:
            raise BenchError(f"{server.name}: PROPFIND listed {found} entries, expected {files + 1}")
        return transfer.seconds * 1000

    def warm_up(name: str) -> None:
        request(ctx.servers[name])

    return interleave(ctx, phase, contenders(ctx, lambda s, r: request(s)), warm_up=warm_up)


def small_get(ctx: Context) -> Phase:
    s = ctx.settings
    phase = Phase("small_get", f"{s.small_bytes // 1024} KiB GET, {s.connections} clients (wrk)", "req/s", "higher")

    def warm_up(name: str) -> None:
        server = ctx.servers[name]
        check_size(server, clients.get(server, server.data_url("small/s-0000")).bytes, s.small_bytes)

    def measure(server: Server, r: int) -> tuple[float, dict]:
        load = clients.wrk(server, "get.lua", f"{server.base}/small/s-", s.small_files, **load_options(ctx))
        return load.per_second, asdict(load)

    return interleave(ctx, phase, contenders(ctx, measure), warm_up=warm_up)


def small_put(ctx: Context) -> Phase:
    s = ctx.settings
    phase = Phase("small_put", f"{s.small_bytes // 1024} KiB PUT, {s.connections} clients (wrk)", "req/s", "higher")
    source = ctx.out("small.bin")
    source.write_bytes(b"x" * s.small_bytes)

    def warm_up(name: str) -> None:
        server = ctx.servers[name]
        clients.put(server, server.data_url(f"small/put/{name}-warm"), source)

    def measure(server: Server, r: int) -> tuple[float, dict]:
        prefix = f"{server.base}/small/put/{server.name}-"
        load = clients.wrk(server, "put.lua", prefix, PUT_FILES, size=s.small_bytes, **load_options(ctx))
        return load.per_second, asdict(load)

    return interleave(ctx, phase, contenders(ctx, measure), warm_up=warm_up)


def load_options(ctx: Context) -> dict[str, int]:
    s = ctx.settings
    return {"connections": s.connections, "threads": s.wrk_threads, "seconds": s.wrk_seconds}


def check_size(server: Server, got: int, expected: int) -> None:
    if got != expected:
        raise BenchError(f"{server.name}: moved {got} bytes, expected {expected}")


def size_text(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def propfind_allprop(ctx: Context) -> Phase:
    return propfind(ctx, "allprop")


def propfind_4props(ctx: Context) -> Phase:
    return propfind(ctx, "4props")


ALL = (big_get, big_put, propfind_allprop, propfind_4props, small_get, small_put)
