"""What machine a run was on, and how much else was running on it meanwhile."""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def describe() -> dict[str, object]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in read_lines("/proc/cpuinfo") if line.startswith("model name")),
        "unknown",
    )
    mem_kib = next(int(line.split()[1]) for line in read_lines("/proc/meminfo") if line.startswith("MemTotal:"))
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "cpu": cpu,
        "python": platform.python_version(),
    }


def read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def busy_seconds() -> float:
    """CPU seconds spent busy on the whole machine since boot, all cores."""
    fields = read_lines("/proc/stat")[0].split()[1:9]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields)
    return (user + nice + system + irq + softirq + steal) / TICKS


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and of the children it has reaped."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / TICKS  # utime stime cutime cstime


def own_cpu_seconds() -> float:
    """CPU seconds of this process and every child it has reaped (servers once stopped, clients)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class LoadWatch:
    """How many cores, on average, other work kept busy during the run."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.busy = busy_seconds()
        self.own = own_cpu_seconds()
        self.load_start = os.getloadavg()[0]

    def other_cores(self, backend_cpu: float) -> dict[str, float]:
        """``backend_cpu``: CPU seconds of the daemons the run started that are not its children."""
        wall = time.monotonic() - self.start
        ours = own_cpu_seconds() - self.own + backend_cpu
        other = max(0.0, busy_seconds() - self.busy - ours)
        return {
            "wall_seconds": round(wall, 1),
            "benchmark_cpu_seconds": round(ours, 1),
            "other_cpu_seconds": round(other, 1),
            "other_busy_cores": round(other / wall, 2) if wall else 0.0,
            "loadavg_start": round(self.load_start, 2),
            "loadavg_end": round(os.getloadavg()[0], 2),
        }
