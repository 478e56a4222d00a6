"""The gateway phases (P7-P11): davgate against the same work done without it.

- s3 and sftp mounts against boto3 and paramiko straight to the same RGW
  and sshd (run as ``python -m bench.direct``, timed inside that process);
- a cached DISPEL result against a plain GET of a file of the same size;
- a cold tiffstore window against tifffile + numpy in a warm process;
- 16 identical cold DISPEL requests at once: the state store's execution
  counter must go up by exactly one.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench import clients
from bench.data import random_file
from bench.davgate_server import BUCKET
from bench.phases import check_size, size_text
from bench.procs import BenchError
from bench.runner import Context, Phase, interleave

SEED = "tiffstore/312/20181129"  # 13 layers of 2048 x 1024, tiled: the seed's example
SEED_WINDOW = "0-1200-0-400"
WARM_URL = f"/dispel/{SEED}/12/{SEED_WINDOW}"  # the seed's URL
FLIGHT = "tiffstore/401/20200115"  # 4 layers of 2048 x 2048
WARM_UP = "tiffstore/313/20181129"  # 13 layers of 1024 x 1024: starts the pipeline processes


def direct(ctx: Context, *args: str) -> tuple[float, int]:
    """A baseline from bench.direct: (seconds of its first timing, bytes)."""
    seconds, moved = direct_all(ctx, *args)
    return seconds[0], moved


def direct_all(ctx: Context, *args: str) -> tuple[list[float], int]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.direct", *args], capture_output=True, text=True,
        env=dict(os.environ, **ctx.env), cwd=Path(__file__).resolve().parent.parent, timeout=900, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"bench.direct {args[0]} failed:\n{done.stderr[-2000:]}")
    info = json.loads(done.stdout)
    return info["seconds"], info["bytes"]


def upload_s3_source(ctx: Context) -> None:
    """The object the s3 GETs read (the bucket was made by davgate at start)."""
    direct(ctx, "s3-put", BUCKET, "big.bin", str(ctx.fs / "sftp" / "big.bin"))


def s3_get(ctx: Context) -> Phase:
    size = ctx.settings.remote_bytes
    phase = Phase("s3_get", f"{size_text(size)} GET, s3 mount vs boto3 get_object().read()", "MB/s", "higher")

    def through_davgate(r: int) -> float:
        transfer = clients.get(ctx.davgate, ctx.davgate.url + "/s3/big.bin")
        check_size(ctx.davgate, transfer.bytes, size)
        return transfer.mb_per_s

    def boto3(r: int) -> float:
        seconds, moved = direct(ctx, "s3-get", BUCKET, "big.bin")
        return moved / seconds / 1e6

    return interleave(ctx, phase, [("davgate", through_davgate), ("boto3", boto3)])


def s3_put(ctx: Context) -> Phase:
    size = ctx.settings.remote_bytes
    phase = Phase("s3_put", f"{size_text(size)} PUT, s3 mount vs boto3 upload_fileobj", "MB/s", "higher")
    source = ctx.fs / "sftp" / "big.bin"

    def through_davgate(r: int) -> float:
        return clients.put(ctx.davgate, ctx.davgate.url + "/s3/put-davgate.bin", source).mb_per_s

    def boto3(r: int) -> float:
        seconds, moved = direct(ctx, "s3-put", BUCKET, "put-boto3.bin", str(source))
        return moved / seconds / 1e6

    return interleave(ctx, phase, [("davgate", through_davgate), ("boto3", boto3)])


def sftp_get(ctx: Context) -> Phase:
    size = ctx.settings.remote_bytes
    phase = Phase("sftp_get", f"{size_text(size)} GET, sftp mount vs paramiko getfo", "MB/s", "higher")

    def through_davgate(r: int) -> float:
        transfer = clients.get(ctx.davgate, ctx.davgate.url + "/sftp/big.bin")
        check_size(ctx.davgate, transfer.bytes, size)
        return transfer.mb_per_s

    def paramiko(r: int) -> float:
        seconds, moved = direct(ctx, "sftp-get", str(ctx.fs / "sftp" / "big.bin"))
        return moved / seconds / 1e6

    return interleave(ctx, phase, [("davgate", through_davgate), ("paramiko", paramiko)])


def sftp_put(ctx: Context) -> Phase:
    size = ctx.settings.remote_bytes
    phase = Phase("sftp_put", f"{size_text(size)} PUT, sftp mount vs paramiko putfo", "MB/s", "higher")
    source = ctx.fs / "sftp" / "big.bin"

    def through_davgate(r: int) -> float:
        transfer = clients.put(ctx.davgate, ctx.davgate.url + "/sftp/put-davgate.bin", source)
        check_size(ctx.davgate, (ctx.fs / "sftp" / "put-davgate.bin").stat().st_size, size)
        (ctx.fs / "sftp" / "put-davgate.bin").unlink()
        return transfer.mb_per_s

    def paramiko(r: int) -> float:
        target = ctx.fs / "sftp" / "put-paramiko.bin"
        seconds, moved = direct(ctx, "sftp-put", str(source), str(target))
        check_size(ctx.davgate, target.stat().st_size, size)
        target.unlink()
        return moved / seconds / 1e6

    return interleave(ctx, phase, [("davgate", through_davgate), ("paramiko", paramiko)])


def dispel_warm(ctx: Context) -> Phase:
    """P9: the cached seed result against a plain file of its size on the local mount."""
    n = ctx.settings.warm_requests
    phase = Phase("dispel_warm", f"warm DISPEL GET vs plain GET of the same size, {n} sequential (curl)", "ms", "lower")
    davgate = ctx.davgate
    first = clients.get(davgate, davgate.url + WARM_URL)  # computes and caches it
    random_file(ctx.fs / "www" / "p9" / "plain.bin", first.bytes)
    phase.details["result_bytes"] = [first.bytes]

    def median_ms(url: str) -> float:
        return statistics.median(t.seconds for t in clients.curl(davgate, [url] * n)) * 1000

    return interleave(ctx, phase, [
        ("dispel", lambda r: median_ms(davgate.url + WARM_URL)),
        ("plain", lambda r: median_ms(davgate.data_url("p9/plain.bin"))),
    ])  # fmt: skip


def warm_up_pipelines(ctx: Context) -> None:
    """Start the pipeline processes of every server worker: concurrent cold requests, new connections."""
    urls = [f"{ctx.davgate.url}/dispel/{WARM_UP}/{layer}/0-256-0-256" for layer in range(8)]
    parallel(ctx, urls, "warm-up")


def cold_windows(ctx: Context, r: int) -> list[tuple[int, str]]:
    n = ctx.settings.cold_windows
    return [(layer, SEED_WINDOW) for layer in range(r * n, r * n + n)]  # layers 0..11: never the warm one


def tiffstore_cold(ctx: Context) -> Phase:
    """P10: a window nobody asked for yet, as the client sees it, against a warm tifffile + numpy."""
    n = ctx.settings.cold_windows
    phase = Phase(
        "tiffstore_cold", f"cold tiffstore window {SEED_WINDOW} (1200 x 400) of {SEED}, median of {n}", "ms", "lower"
    )
    warm_up_pipelines(ctx)
    before = executions(ctx)

    def through_davgate(r: int) -> tuple[float, list[float]]:
        times = []
        for layer, grid in cold_windows(ctx, r):
            transfer = clients.get(ctx.davgate, f"{ctx.davgate.url}/dispel/{SEED}/{layer}/{grid}")
            times.append(transfer.seconds * 1000)
        return statistics.median(times), times

    def bare(r: int) -> tuple[float, list[float]]:
        windows = [f"{layer}:{grid}" for layer, grid in cold_windows(ctx, r)]
        seconds, _ = direct_all(ctx, "tiff-crop", str(ctx.fs / "demo" / f"{SEED}.tif"), *windows)
        times = [s * 1000 for s in seconds]
        return statistics.median(times), times

    interleave(ctx, phase, [("davgate", through_davgate), ("tifffile", bare)])
    ran = executions(ctx) - before
    expected = ctx.settings.rounds * n
    if ran != expected:
        raise BenchError(f"the cold windows ran {ran} pipelines, expected {expected}: were they cached?")
    return phase


def single_flight(ctx: Context) -> Phase:
    """P11: identical cold requests at once; the count of pipeline runs they caused."""
    k = ctx.settings.flight_clients
    phase = Phase("single_flight", f"{k} concurrent identical cold DISPEL requests", "executions", "lower")

    def measure(r: int) -> tuple[float, dict]:
        url = f"{ctx.davgate.url}/dispel/{FLIGHT}/{r % 4}/{r * 16}-2048-0-2048"
        before = executions(ctx)
        digests = parallel(ctx, [url] * k, f"flight-{r}")
        ran = executions(ctx) - before
        if len(set(digests)) != 1:
            raise BenchError(f"single-flight: {len(set(digests))} different bodies for one URL")
        return ran, {"url": url.removeprefix(ctx.davgate.url), "responses": len(digests)}

    return interleave(ctx, phase, [("davgate", measure)])


def parallel(ctx: Context, urls: list[str], name: str) -> list[str]:
    """GET ``urls`` at once, one connection each (curl --parallel); the bodies' sha256."""
    folder = ctx.out(name)
    folder.mkdir(exist_ok=True)
    args = ["--parallel", "--parallel-immediate", "--parallel-max", str(len(urls))]
    outputs = [folder / f"{i}.out" for i in range(len(urls))]
    transfers = clients.curl_many(ctx.davgate, list(zip(urls, map(str, outputs))), *args)
    if len(transfers) != len(urls):
        raise BenchError(f"{name}: {len(transfers)} of {len(urls)} requests answered")
    return [hashlib.sha256(path.read_bytes()).hexdigest() for path in outputs]


def executions(ctx: Context) -> int:
    from davgate.dispel import executions_total
    from davgate.state import open_store

    options = dict(ctx.davgate.extra["state"])
    with open_store(str(options.pop("type")), **options) as store:
        return executions_total(store)


ALL = (s3_get, s3_put, sftp_get, sftp_put, dispel_warm, single_flight, tiffstore_cold)
