"""A tmpfs of the benchmark's own for the served data, unmounted at the end."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from bench.procs import BenchError


def mount(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "davgate-bench", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"cannot mount a tmpfs on {path} (run as root): {done.stderr.strip()}")


def unmount(path: Path) -> None:
    for _ in range(20):
        if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode == 0:
            return
        if subprocess.run(["mountpoint", "-q", str(path)], check=False).returncode != 0:
            return
        time.sleep(0.25)
    subprocess.run(["umount", "--lazy", str(path)], check=False)
