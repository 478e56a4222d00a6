#!/usr/bin/env python3
"""The long soak (R3), on demand: 32 clients for 5 minutes on local, sftp, s3 and dispel mounts.

    .venv/bin/python scripts/soak.py                      # 300 s, 32 clients, 2 workers
    .venv/bin/python scripts/soak.py --duration 1800 --out soak.json

It starts its own sshd and one-node Ceph RGW (scripts/sshd-up.sh,
scripts/rgw-up.sh; run as root on a fresh machine, which installs them),
and a davgate on an ephemeral port, all on 127.0.0.1; runs the soak engine
of tests/reliability/soak.py; prints the report (5xx responses, corrupted
bytes, RSS over time) and writes it as JSON; stops everything it started.
Exit status 0 when the targets hold: 0 responses 5xx, 0 corrupted bytes,
0 unexpected statuses, and RSS flat over the second half (growth under
--rss-growth MiB and slope under --rss-slope MiB per minute).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import rgw as rgw_module  # noqa: E402 - after the repository is on sys.path
from tests.helpers import USERS, ServerLauncher  # noqa: E402 - after the repository is on sys.path
from tests.reliability.soak import Soak, Target  # noqa: E402 - after the repository is on sys.path
from tests.reliability.soak_env import dispel_urls, expected_dispel, soak_config, writable_mounts  # noqa: E402 - after the repository is on sys.path
from tests.sshd import start_sshd  # noqa: E402 - after the repository is on sys.path


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load (default 300)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="davgate worker processes (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-sftp", action="store_true", help="leave out the sftp mount (no sshd)")
    parser.add_argument("--no-s3", action="store_true", help="leave out the s3 mount (no Ceph)")
    parser.add_argument("--rss-growth", type=float, default=64.0, help="MiB the RSS may grow over the second half")
    parser.add_argument("--rss-slope", type=float, default=4.0, help="MiB/min the RSS may climb over the second half")
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, data)")
    return parser.parse_args()


@contextlib.contextmanager
def backends(base: Path, sftp: bool, s3: bool) -> Iterator[tuple[object, object]]:
    sshd = start_sshd(base / "sshd") if sftp else None
    rgw = None
    try:
        if s3:
            rgw = rgw_module.start(base / "ceph")
            rgw.client().create_bucket(Bucket=rgw_module.SESSION_BUCKET)
        yield sshd, rgw
    finally:
        if sshd is not None:
            sshd.stop()
        if rgw is not None:
            rgw_module.stop(rgw)


def verdict(report, args: argparse.Namespace) -> list[str]:
    problems = []
    if report.server_errors:
        problems.append(f"{len(report.server_errors)} responses 5xx")
    if report.corrupted_bytes:
        problems.append(f"{report.corrupted_bytes} corrupted bytes")
    if report.unexpected:
        problems.append(f"{len(report.unexpected)} unexpected statuses")
    rss = report.rss_summary()
    if rss and rss["second_half_growth_mib"] > args.rss_growth:
        problems.append(f"RSS grew {rss['second_half_growth_mib']} MiB over the second half")
    if rss and rss["second_half_slope_mib_per_min"] > args.rss_slope:
        problems.append(f"RSS climbed {rss['second_half_slope_mib_per_min']} MiB/min over the second half")
    return problems


def main() -> int:
    args = arguments()
    work = Path(tempfile.mkdtemp(prefix="davgate-soak-"))
    print(f"soak: work folder {work}", flush=True)
    auth = ("alice", USERS["alice"])
    with backends(work, not args.no_sftp, not args.no_s3) as (sshd, rgw):
        config = soak_config(work / "world", sshd, rgw, workers=args.workers)  # type: ignore[arg-type]
        launcher = ServerLauncher(work / "servers")
        server = launcher(config, workers=args.workers)
        try:
            target = Target(server.url, auth, writable_mounts(config), expected_dispel(server.url, auth, dispel_urls()))
            print(f"soak: {args.clients} clients on {server.url} for {args.duration:g} s", flush=True)
            report = Soak(target, args.clients, args.duration, server.process.pid, seed=args.seed).run()
        finally:
            launcher.stop_all()
    print(report.text())
    if args.out:
        args.out.write_text(json.dumps(report.to_json(), indent=1, default=str))
    problems = verdict(report, args)
    print(
        "soak: targets held (0 5xx, 0 corrupted bytes, RSS flat)"
        if not problems
        else "soak: FAILED: " + "; ".join(problems)
    )
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
