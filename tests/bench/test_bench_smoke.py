"""The benchmark's quick mode, end to end, so the harness cannot rot.

Runs ``bash bench/run.sh --quick`` with every anchor (stock WsgiDAV, rclone,
nginx), the real Ceph RGW and sshd, and davgate; nothing is skipped: a
missing tool fails the run. Checks that every phase measured every
contender, that every target got a figure, and that the run left nothing
behind. It does not judge the figures: the benchmark reports, tests decide
nothing about speed. About 25 s once the packages are installed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
CONTENDERS = {
    "big_get": {"davgate", "wsgidav", "rclone", "nginx"},
    "big_put": {"davgate", "wsgidav", "rclone", "nginx"},
    "propfind_allprop": {"davgate", "wsgidav", "rclone", "nginx"},
    "propfind_4props": {"davgate", "wsgidav", "rclone", "nginx"},
    "small_get": {"davgate", "wsgidav", "rclone", "nginx"},
    "small_put": {"davgate", "wsgidav", "rclone", "nginx"},
    "s3_get": {"davgate", "boto3"},
    "s3_put": {"davgate", "boto3"},
    "sftp_get": {"davgate", "paramiko"},
    "sftp_put": {"davgate", "paramiko"},
    "dispel_warm": {"dispel", "plain"},
    "tiffstore_cold": {"davgate", "tifffile"},
    "single_flight": {"davgate"},
    "imaging_cold_npy": {"davgate", "titiler"},
    "imaging_repeated_npy": {"davgate", "titiler"},
    "imaging_cold_png": {"davgate", "titiler"},
    "imaging_concurrent": {"davgate", "titiler"},
}
RUN_TIMEOUT = 480  # seconds; a fresh machine installs nginx, wrk, rclone and stock WsgiDAV first
TARGETS = [
    "P1",
    "P2",
    "P3",
    "P3s",
    "P4",
    "P5",
    "P6",
    "P6 PSS",
    "P7",
    "P8",
    "P9",
    "P10",
    "P13",
    "P14",
    "P13r",
    "P13c",
    "P11",
]


def test_quick_run_measures_everything_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    temp = tmp_path / "temp"
    temp.mkdir()
    run = subprocess.Popen(
        ["bash", "bench/run.sh", "--quick", "--out", str(out)],
        cwd=REPO, env=dict(os.environ, BENCH_TMPDIR=str(temp)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        stdout, stderr = run.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        run.terminate()  # run.sh stops what it started on SIGTERM
        stdout, stderr = run.communicate(timeout=120)
        raise AssertionError(f"bench/run.sh --quick took over {RUN_TIMEOUT} s:\n{stderr[-4000:]}") from None
    assert run.returncode == 0, f"bench/run.sh --quick failed:\n{stderr[-4000:]}\n{stdout[-2000:]}"
    assert f"results: {out}" in stdout
    assert "| P11 |" in stdout

    result = json.loads(out.read_text())
    for phase, contenders in CONTENDERS.items():
        medians = result["phases"][phase]["median"]
        assert set(medians) == contenders, phase
        assert all(value is not None and value > 0 for value in medians.values()), (phase, medians)
    assert [t["id"] for t in result["targets"]] == TARGETS
    assert all(t["met"] is not None for t in result["targets"]), result["targets"]
    assert result["davgate_workers"] == os.cpu_count()
    assert result["phases"]["propfind_allprop"]["peak_rss_mib"]["davgate"] > 0

    assert list(temp.iterdir()) == [], "the run left its temporary folder behind"
    assert str(temp) not in Path("/proc/mounts").read_text()
    assert not processes_mentioning(str(temp)), "the run left processes behind"


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found
