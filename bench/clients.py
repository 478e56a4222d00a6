"""The load clients: curl for single transfers, wrk for many small requests.

Each call runs the client as its own process and returns what it
measured; a response with an unexpected status is an error, never a sample.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.procs import BenchError, Server

WRK_SCRIPTS = Path(__file__).resolve().parent / "wrk"
CURL_TIMEOUT = 900
MAX_FAILED_SHARE = 0.01  # more failed responses than this in a wrk run mean a broken setup
PROPFIND_ALLPROP = b'<?xml version="1.0" encoding="utf-8"?>\n<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>\n'
PROPFIND_4PROPS = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<D:propfind xmlns:D="DAV:"><D:prop>'
    b"<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/>"
    b"</D:prop></D:propfind>\n"
)


def basic_header(auth: tuple[str, str] | None) -> dict[str, str]:
    if auth is None:
        return {}
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@dataclass(frozen=True)
class Transfer:
    status: int
    seconds: float
    bytes: int

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6


def curl(
    server: Server, urls: list[str], *args: str, expect: tuple[int, ...] = (200,), output: str = "/dev/null"
) -> list[Transfer]:
    """One curl process, one keep-alive connection, ``urls`` in turn."""
    return curl_many(server, [(url, output) for url in urls], *args, expect=expect)


def curl_many(
    server: Server, targets: list[tuple[str, str]], *args: str, expect: tuple[int, ...] = (200,)
) -> list[Transfer]:
    """One curl process for ``targets`` (url, output file); ``args`` may make it run them in parallel."""
    command = ["curl", "-s", "-S", "--http1.1", "-H", "Expect:", "-w", "%{json}\\n"]
    for name, value in basic_header(server.auth).items():
        command += ["-H", f"{name}: {value}"]
    command += list(args)
    for url, output in targets:
        command += [url, "-o", output]
    done = subprocess.run(command, capture_output=True, text=True, timeout=CURL_TIMEOUT, check=False)
    results = []
    for line in done.stdout.splitlines():
        info = json.loads(line)
        moved = max(info["size_download"], info["size_upload"])
        results.append((info["url"], Transfer(info["http_code"], info["time_total"], moved)))
    first = targets[0][0]
    if done.returncode != 0 or len(results) != len(targets):
        raise BenchError(f"curl {' '.join(args)} {first} failed ({done.returncode}): {done.stderr.strip()}")
    for url, result in results:
        if result.status not in expect:
            raise BenchError(f"{server.name}: {url} answered {result.status}, expected {expect}")
    return [result for _, result in results]


def get(server: Server, url: str) -> Transfer:
    return curl(server, [url])[0]


def put(server: Server, url: str, source: Path) -> Transfer:
    return curl(server, [url], "-T", str(source), expect=(200, 201, 204))[0]


def propfind(server: Server, url: str, body: bytes, output: Path) -> Transfer:
    body_file = output.with_suffix(".request.xml")
    body_file.write_bytes(body)
    args = ("-X", "PROPFIND", "-H", "Depth: 1", "-H", "Content-Type: application/xml", "--data-binary", f"@{body_file}")
    return curl(server, [url], *args, expect=(207,), output=str(output))[0]


@dataclass(frozen=True)
class Load:
    requests: int  # answered with a status below 400
    seconds: float
    failed: int  # answered with 400 or more (e.g. rclone's 423 when two PUTs meet on one name)
    socket_errors: int  # connect, read, write errors and timeouts
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def wrk(
    server: Server, script: str, prefix: str, count: int, *, connections: int, threads: int, seconds: int, size: int = 0
) -> Load:
    """wrk with ``script`` (bench/wrk/*.lua) over the paths ``prefix`` + 0..count-1."""
    env = dict(
        os.environ, BENCH_PREFIX=prefix, BENCH_COUNT=str(count), BENCH_SIZE=str(size), BENCH_LUA_DIR=str(WRK_SCRIPTS)
    )
    env["BENCH_AUTH"] = basic_header(server.auth).get("Authorization", "")
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
        "-s", str(WRK_SCRIPTS / script), server.url,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=seconds + 60, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCHJSON ")]
    if done.returncode != 0 or not lines:
        raise BenchError(
            f"wrk {script} on {server.name} failed ({done.returncode}): {done.stderr.strip()} {done.stdout[-500:]}"
        )
    info = json.loads(lines[-1].removeprefix("BENCHJSON "))
    if info["status"] > MAX_FAILED_SHARE * info["requests"]:
        raise BenchError(
            f"wrk {script} on {server.name}: {info['status']} of {info['requests']} responses had status >= 400"
        )
    errors = info["connect"] + info["read"] + info["write"] + info["timeout"]
    ok = info["requests"] - info["status"]
    return Load(ok, info["duration_us"] / 1e6, info["status"], errors, info["p50_us"] / 1e3, info["p99_us"] / 1e3)
