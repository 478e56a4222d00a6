"""What a soak reports: answers by method and status, 5xx, corrupted bytes, and RSS over time."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MiB = 1024 * 1024


@dataclass
class Report:
    clients: int
    mounts: list[str]
    duration: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)  # "METHOD status": count
    server_errors: list[tuple] = field(default_factory=list)  # (method, path, status, started, ended, note, dest)
    unexpected: list[str] = field(default_factory=list)  # answers that are not 5xx but not what the model expects
    corrupted_bytes: int = 0
    verified_bytes: int = 0
    corruptions: list[str] = field(default_factory=list)
    outage_answers: int = 0  # 502/503 while a backend was down, in time
    outage_slowest: float = 0.0  # seconds the slowest of those took
    outages: list[dict[str, Any]] = field(default_factory=list)
    rss: list[tuple[float, int, int]] = field(default_factory=list)  # (seconds, bytes, processes)

    def count(self, method: str, status: int) -> None:
        self.requests[f"{method} {status}"] += 1

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def rss_summary(self) -> dict[str, float]:
        """RSS in MiB at the start, the middle and the end; growth and slope over the second half."""
        if len(self.rss) < 4:
            return {}
        values = [b / MiB for _, b, _ in self.rss]
        half = len(values) // 2
        second = self.rss[half:]
        middle = statistics.median(values[max(0, half - 2) : half + 3])
        return {
            "start_mib": round(values[0], 1),
            "middle_mib": round(middle, 1),
            "end_mib": round(values[-1], 1),
            "peak_mib": round(max(values), 1),
            "second_half_growth_mib": round(max(values[half:]) - middle, 1),
            "second_half_slope_mib_per_min": round(slope([(t, b / MiB) for t, b, _ in second]) * 60, 2),
            "processes": max(n for _, _, n in self.rss),
        }

    def summary(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "mounts": self.mounts,
            "duration_s": round(self.duration, 1),
            "requests": self.total,
            "requests_per_s": round(self.total / self.duration, 1) if self.duration else 0,
            "responses_5xx": len(self.server_errors),
            "corrupted_bytes": self.corrupted_bytes,
            "verified_mib": round(self.verified_bytes / MiB, 1),
            "unexpected": len(self.unexpected),
            "outage_answers": self.outage_answers,
            "outage_slowest_s": round(self.outage_slowest, 2),
            "outages": self.outages,
            "rss": self.rss_summary(),
            "by_method_and_status": dict(sorted(self.requests.items())),
        }

    def text(self) -> str:
        s = self.summary()
        lines = [
            (
                f"soak: {s['clients']} clients on {', '.join(s['mounts'])} for {s['duration_s']} s: "
                f"{s['requests']} requests ({s['requests_per_s']}/s), {s['verified_mib']} MiB verified by sha256"
            ),
            (
                f"  5xx responses: {s['responses_5xx']}   corrupted bytes: {s['corrupted_bytes']}   "
                f"unexpected statuses: {s['unexpected']}   502/503 during outages: {s['outage_answers']} "
                f"(slowest {s['outage_slowest_s']} s)"
            ),
            f"  RSS (all davgate processes): {s['rss']}",
            f"  outages: {s['outages']}" if s["outages"] else "",
            "  by method and status: " + ", ".join(f"{k}: {v}" for k, v in s["by_method_and_status"].items()),
        ]
        lines += [f"  5xx: {e[0]} {e[1]} -> {e[2]} after {e[4] - e[3]:.1f} s: {e[5]}" for e in self.server_errors[:10]]
        lines += [f"  unexpected: {u}" for u in self.unexpected[:10]]
        lines += [f"  corrupted: {c}" for c in self.corruptions[:10]]
        return "\n".join(line for line in lines if line)

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "rss_samples": [{"s": t, "mib": round(b / MiB, 1), "processes": n} for t, b, n in self.rss],
            "server_errors": [list(e) for e in self.server_errors],
            "unexpected": self.unexpected,
            "corruptions": self.corruptions,
        }


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (per second)."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0


def group_rss(pgid: int) -> tuple[int, int]:
    """The summed RSS (bytes) and count of the live processes of process group ``pgid``."""
    total, count = 0, 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid or fields[0] == "Z":
                continue
            status = (stat.parent / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
                count += 1
    return total, count


class RssSampler:
    """Samples the RSS of a process group every ``interval`` seconds in a thread."""

    def __init__(self, pgid: int, interval: float = 1.0) -> None:
        self.pgid = pgid
        self.interval = interval
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        started = time.monotonic()
        while True:
            rss, count = group_rss(self.pgid)
            self.samples.append((round(time.monotonic() - started, 2), rss, count))
            if self._stop.wait(self.interval):
                return
