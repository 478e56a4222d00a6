"""Run the benchmark: ``.venv/bin/python -m bench --work DIR [--quick] [--profile]`` (bench/run.sh does it).

Mounts a tmpfs in DIR, writes the data, starts the RGW, the sshd, the
anchors and davgate on free loopback ports, measures every phase
interleaved, stops exactly what it started, prints the tables and writes
the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench import anchors, backends, data, davgate_server, gateway, imaging, machine, phases, profile, report, tmpfs
from bench.clients import PROPFIND_ALLPROP, propfind, wrk
from bench.procs import BenchError, stop
from bench.rss import RssSampler
from bench.runner import Context
from bench.settings import FULL, QUICK, Settings

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
T0 = time.monotonic()


def say(message: str) -> None:
    print(f"[bench {time.monotonic() - T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="an empty folder for everything the run makes")
    parser.add_argument("--quick", action="store_true", help="small sizes, one round: a smoke run")
    parser.add_argument("--rounds", type=int, help="rounds per phase (default: 3, or 1 with --quick)")
    parser.add_argument(
        "--profile", action="store_true", help="after the phases, py-spy davgate under the PROPFIND and 4 KiB loads"
    )
    parser.add_argument("--engine", help="davgate's server.engine (default: davgate's own default, cheroot)")
    parser.add_argument("--only", help="run only these phases, comma-separated (e.g. small_get,small_put)")
    parser.add_argument(
        "--out", type=Path, help="the JSON file (default bench/results/latest.json, quick.json with --quick)"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = arguments(argv)
    settings: Settings = QUICK if args.quick else FULL
    if args.rounds:
        settings = replace(settings, rounds=args.rounds)
    out = args.out or RESULTS / ("quick.json" if args.quick else "latest.json")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    watch = machine.LoadWatch()
    result: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine.describe(), "settings": asdict(settings), "versions": versions(),
    }  # fmt: skip
    backend_cpu = [0.0]
    try:
        with contextlib.ExitStack() as stack:
            ctx = set_up(stack, args.work.resolve(), settings, backend_cpu, args.engine)
            result["davgate_workers"] = worker_count(ctx)
            result["davgate_engine"] = args.engine or "default"
            result["phases"] = {}
            chosen = None if args.only is None else set(args.only.split(","))
            for run in (*phases.ALL, *gateway.ALL, *imaging.ALL):
                if chosen is not None and run.__name__ not in chosen:
                    continue
                phase = run(ctx)
                result["phases"][phase.name] = phase.to_json()
            if args.profile:  # last, so that its load does not change what the phases measured (RSS)
                ctx.rss.enter("profile")
                result["profiles"] = {name: profile_phase(ctx, name, out.parent) for name in PROFILED}
            say("stopping everything the run started")
    except BenchError as error:
        say(f"FAILED: {error}")
        return 1
    finally:
        keep_logs(args.work, out.parent / "logs")
    result["load"] = watch.other_cores(backend_cpu[0])
    result["noisy"] = result["load"]["other_busy_cores"] > 0.25 or result["load"]["loadavg_start"] > 1.0
    result["targets"] = report.to_json(report.targets(result["phases"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(report.render(result))
    for name, summary in result.get("profiles", {}).items():
        print("\n" + profile.text(f"py-spy, davgate during {name}", summary))
    print(f"\nresults: {out}")
    return 0


def set_up(
    stack: contextlib.ExitStack, work: Path, settings: Settings, backend_cpu: list[float], engine: str | None
) -> Context:
    fs = work / "fs"
    say(f"tmpfs of {settings.tmpfs} on {fs}")
    tmpfs.mount(fs, settings.tmpfs)
    stack.callback(tmpfs.unmount, fs)
    say("writing the data")
    data.prepare(fs, settings)
    say(f"starting Ceph RGW ({settings.ceph_objectstore}) and sshd")
    rgw = backends.start_rgw(work / "ceph", settings.ceph_objectstore, settings.ceph_store_gb)
    stack.callback(rgw.stop)
    sshd = backends.start_sshd(work / "sshd")
    stack.callback(sshd.stop)
    stack.callback(lambda: backend_cpu.__setitem__(0, backends_cpu(work)))  # read before they stop
    rss = RssSampler()
    rss.start()
    stack.callback(rss.close)
    servers = {}
    say("starting davgate, stock WsgiDAV, rclone, nginx")
    for name, start in (
        ("davgate", lambda: davgate_server.start(fs, work, rgw.env, sshd.env, engine)),
        ("wsgidav", lambda: anchors.stock_wsgidav(fs / "www", work)),
        ("rclone", lambda: anchors.rclone(fs / "www", work)),
        ("nginx", lambda: anchors.nginx(fs / "www", work, fs / "nginx-body")),
    ):
        server = start()
        stack.callback(stop, server)
        servers[name] = server
        rss.watch(name, server.pid)
    say("starting TiTiler")
    others = {"titiler": anchors.titiler(work, davgate_server.workers(servers["davgate"]))}
    stack.callback(stop, others["titiler"])
    rss.watch("titiler", others["titiler"].pid)
    ctx = Context(settings, fs, work, servers, rss, env={**rgw.env, **sshd.env}, log=say, others=others)
    say("uploading the s3 source object with boto3")
    gateway.upload_s3_source(ctx)
    return ctx


def keep_logs(work: Path, folder: Path) -> None:
    """The servers' logs, beside the results (the work folder is removed)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("davgate", "wsgidav", "rclone", "nginx", "titiler"):
        log = work / name / "log"
        if log.exists():
            shutil.copyfile(log, folder / f"{name}.log")


def backends_cpu(work: Path) -> float:
    pids = []
    ceph = work / "ceph" / "pids"
    if ceph.exists():
        pids += [int(line.split()[1]) for line in ceph.read_text().splitlines() if len(line.split()) == 2]
    sshd = work / "sshd" / "sshd.pid"
    if sshd.exists():
        pids.append(int(sshd.read_text()))
    return sum(machine.process_cpu_seconds(pid) for pid in pids)


def worker_count(ctx: Context) -> int:
    return davgate_server.workers(ctx.davgate)


PROFILED = ("propfind_allprop", "small_get", "small_put")


def profile_phase(ctx: Context, name: str, folder: Path) -> dict[str, Any]:
    s, davgate = ctx.settings, ctx.davgate
    options = {"connections": s.connections, "threads": s.wrk_threads, "seconds": s.wrk_seconds}

    def load() -> None:
        if name == "small_get":
            wrk(davgate, "get.lua", "/data/small/s-", s.small_files, **options)
        elif name == "small_put":
            wrk(davgate, "put.lua", "/data/small/put/profile-", phases.PUT_FILES, size=s.small_bytes, **options)
        else:
            end = time.monotonic() + s.wrk_seconds
            while time.monotonic() < end:
                propfind(davgate, davgate.data_url("props/"), PROPFIND_ALLPROP, ctx.out("profile.xml"))

    say(f"profiling davgate during {name} (py-spy, {s.wrk_seconds} s)")
    folder.mkdir(parents=True, exist_ok=True)
    return profile.record(davgate, load, s.wrk_seconds, folder / f"profile-{name}.collapsed.txt")


def versions() -> dict[str, str]:
    def first_line(*command: str) -> str:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        except OSError:
            return "missing"
        return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else "?"

    stock = anchors.STOCK_VENV / "bin" / "python"
    return {
        "davgate": first_line("git", "-C", str(REPO), "describe", "--always", "--dirty"),
        "stock_wsgidav": first_line(
            str(stock),
            "-c",
            "import wsgidav, cheroot; print('WsgiDAV', wsgidav.__version__, 'cheroot', cheroot.__version__)",
        ),
        "rclone": first_line("rclone", "version"),
        "nginx": first_line("nginx", "-v"),
        "wrk": first_line("wrk", "-v"),
        "curl": first_line("curl", "--version"),
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
