"""Interleaved measurement: each round measures every contender once, in turn.

A phase's value per contender is the median over its rounds; the order of
contenders rotates from round to round so none always runs first. Peak RSS
is recorded per phase for every server being watched.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import Server
from bench.rss import RssSampler, breakdown
from bench.settings import Settings


@dataclass
class Context:
    settings: Settings
    fs: Path  # the tmpfs
    work: Path  # logs, configs, backends' folders
    servers: dict[str, Server]
    rss: RssSampler
    env: dict[str, str] = field(default_factory=dict)  # RGW and sshd exports, for bench.direct
    others: dict[str, Server] = field(default_factory=dict)  # anchors of some phases only (TiTiler)
    log: Callable[[str], None] = print

    @property
    def davgate(self) -> Server:
        return self.servers["davgate"]

    def out(self, name: str) -> Path:
        folder = self.fs / "out"
        folder.mkdir(exist_ok=True)
        return folder / name


@dataclass
class Phase:
    name: str
    title: str
    unit: str
    better: str  # "higher" or "lower"
    samples: dict[str, list[float]] = field(default_factory=dict)
    details: dict[str, list[Any]] = field(default_factory=dict)
    peak_rss_mib: dict[str, float | None] = field(default_factory=dict)
    peak_pss_mib: dict[str, float | None] = field(default_factory=dict)
    processes_at_end: list[dict[str, object]] = field(default_factory=list)  # davgate's, one by one

    def median(self, contender: str) -> float | None:
        values = self.samples.get(contender)
        return statistics.median(values) if values else None

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title, "unit": self.unit, "better": self.better,
            "median": {name: self.median(name) for name in self.samples},
            "samples": self.samples, "details": self.details,
            "peak_rss_mib": self.peak_rss_mib, "peak_pss_mib": self.peak_pss_mib,
            "davgate_processes_at_end": self.processes_at_end,
        }  # fmt: skip


Measure = Callable[[int], Any]  # round -> value, or (value, detail)


def interleave(
    ctx: Context, phase: Phase, contenders: Sequence[tuple[str, Measure]], warm_up: Callable[[str], None] | None = None
) -> Phase:
    """Run ``phase``: ``contenders`` are (name, measure(round) -> value or (value, detail))."""
    ctx.rss.enter(phase.name)
    if warm_up is not None:
        for name, _ in contenders:
            warm_up(name)
    for round_ in range(ctx.settings.rounds):
        shift = round_ % len(contenders)
        for name, measure in [*contenders[shift:], *contenders[:shift]]:
            result = measure(round_)
            value, detail = result if isinstance(result, tuple) else (result, None)
            phase.samples.setdefault(name, []).append(round(value, 3))
            if detail is not None:
                phase.details.setdefault(name, []).append(detail)
            ctx.log(f"  {phase.name} round {round_ + 1}: {name} {value:.1f} {phase.unit}")
    ctx.rss.enter("idle")
    if "davgate" in ctx.servers:
        phase.processes_at_end = breakdown(ctx.davgate.pid)
    phase.peak_rss_mib = {name: ctx.rss.peak_mib(phase.name, name) for name in ctx.servers}
    phase.peak_pss_mib = {name: ctx.rss.peak_mib(phase.name, name, pss=True) for name in ctx.rss.pss_for}
    return phase
