"""Peak resident memory of each server's process tree, per phase.

A background thread sums RSS over every process of each server's tree
(forked workers and pipeline processes included) every ``interval``
seconds and keeps the peak for the phase that is running. RSS counts the
pages that forked workers share once per process; for the servers named in
``pss_for`` the proportional set size (shared pages divided among their
users) is sampled too, less often, as a second view.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from pathlib import Path

from bench.procs import tree

PAGE = os.sysconf("SC_PAGE_SIZE")
MiB = 1024 * 1024


def tree_pss(root: int) -> int:
    """Bytes of proportional set size over ``root``'s process tree now."""
    total = 0
    for pid in tree(root):
        try:
            lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        total += next((int(line.split()[1]) * 1024 for line in lines if line.startswith("Pss:")), 0)
    return total


def tree_rss(root: int) -> int:
    """Bytes resident over ``root``'s process tree now."""
    total = 0
    for pid in tree(root):
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def breakdown(root: int) -> list[dict[str, object]]:
    """RSS of each process in ``root``'s tree now, with what it is (by its command line)."""
    found = []
    for pid in tree(root):
        try:
            rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        role = "main" if pid == root else "pipeline" if "davgate.dispel.worker" in command else "worker"
        found.append({"pid": pid, "role": role, "rss_mib": round(rss / MiB, 1)})
    return found


class RssSampler:
    def __init__(self, interval: float = 0.05, pss_every: int = 10, pss_for: tuple[str, ...] = ("davgate",)) -> None:
        self.interval = interval
        self.pss_every = pss_every
        self.pss_for = pss_for
        self.roots: dict[str, int] = {}
        self.phase = "startup"
        self.peaks: dict[str, dict[str, int]] = defaultdict(dict)
        self.pss_peaks: dict[str, dict[str, int]] = defaultdict(dict)
        self._count = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def watch(self, name: str, root: int) -> None:
        with self._lock:
            self.roots[name] = root

    def enter(self, phase: str) -> None:
        """Attribute the samples from now on to ``phase``."""
        self.sample()
        with self._lock:
            self.phase = phase
        self.sample()

    def sample(self, pss: bool = True) -> None:
        with self._lock:
            roots, phase = dict(self.roots), self.phase
        for name, root in roots.items():
            self._keep(self.peaks, phase, name, tree_rss(root))
            if pss and name in self.pss_for:
                self._keep(self.pss_peaks, phase, name, tree_pss(root))

    def _keep(self, peaks: dict[str, dict[str, int]], phase: str, name: str, value: int) -> None:
        with self._lock:
            peaks[phase][name] = max(peaks[phase].get(name, 0), value)

    def peak_mib(self, phase: str, name: str, pss: bool = False) -> float | None:
        value = (self.pss_peaks if pss else self.peaks).get(phase, {}).get(name)
        return None if value is None else round(value / MiB, 1)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._count += 1
            self.sample(pss=self._count % self.pss_every == 0)
