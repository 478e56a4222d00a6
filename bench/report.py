"""Targets P1-P14 from a run's results, and the tables printed at its end.

Works on the JSON the run writes, so a table can be made again later:

    .venv/bin/python -m bench.report bench/results/latest.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

ANCHORS = ("davgate", "wsgidav", "rclone", "nginx")
ANCHOR_TITLES = {"davgate": "davgate", "wsgidav": "stock WsgiDAV", "rclone": "rclone", "nginx": "nginx"}
ANCHOR_PHASES = ("big_get", "big_put", "propfind_allprop", "propfind_4props", "small_get", "small_put")
GATEWAY_PHASES = {  # phase: (davgate's contender, the baseline)
    "s3_get": ("davgate", "boto3"),
    "s3_put": ("davgate", "boto3"),
    "sftp_get": ("davgate", "paramiko"),
    "sftp_put": ("davgate", "paramiko"),
    "dispel_warm": ("dispel", "plain"),
    "tiffstore_cold": ("davgate", "tifffile"),
    "imaging_cold_npy": ("davgate", "titiler"),
    "imaging_repeated_npy": ("davgate", "titiler"),
    "imaging_cold_png": ("davgate", "titiler"),
    "imaging_concurrent": ("davgate", "titiler"),
}
RSS_LIMIT_MIB = 250


@dataclass(frozen=True)
class Target:
    id: str
    what: str
    measured: str
    target: str
    met: bool | None  # None: not measured in this run
    value: float | None = None


def median(phases: dict[str, Any], phase: str, who: str) -> float | None:
    return phases.get(phase, {}).get("median", {}).get(who)


def ratio(phases: dict[str, Any], phase: str, who: str, other: str) -> float | None:
    a, b = median(phases, phase, who), median(phases, phase, other)
    return None if a is None or not b else a / b


def ratio_target(id_: str, what: str, value: float | None, limit: float, at_least: bool) -> Target:
    sign = "≥" if at_least else "≤"
    if value is None:
        return Target(id_, what, "not measured", f"{sign} {limit:g}×", None)
    met = value >= limit if at_least else value <= limit
    return Target(id_, what, f"{value:.2f}×", f"{sign} {limit:g}×", met, round(value, 3))


def both(id_: str, what: str, values: list[tuple[str, float | None]], limit: float) -> Target:
    if any(value is None for _, value in values):
        return Target(id_, what, "not measured", f"≥ {limit:g}× each", None)
    text = ", ".join(f"{label} {value:.2f}×" for label, value in values)
    worst = min(value for _, value in values if value is not None)
    return Target(id_, what, text, f"≥ {limit:g}× each", worst >= limit, round(worst, 3))


def peak_rss(
    phases: dict[str, Any], who: str = "davgate", key: str = "peak_rss_mib"
) -> tuple[float | None, str | None]:
    peaks = [(p[key][who], name) for name, p in phases.items() if p.get(key, {}).get(who) is not None]
    return max(peaks) if peaks else (None, None)


def targets(phases: dict[str, Any]) -> list[Target]:
    found: list[Target] = [
        ratio_target("P1", "large GET vs nginx", ratio(phases, "big_get", "davgate", "nginx"), 1.0, True),
        ratio_target("P2", "large PUT (atomic) vs nginx", ratio(phases, "big_put", "davgate", "nginx"), 1.0, True),
        ratio_target(
            "P3", "PROPFIND allprop time vs rclone", ratio(phases, "propfind_allprop", "davgate", "rclone"), 1.0, False
        ),
        ratio_target(
            "P3s",
            "(stretch) PROPFIND allprop time vs nginx",
            ratio(phases, "propfind_allprop", "davgate", "nginx"),
            2.0,
            False,
        ),
        ratio_target("P4", "4 KiB GET req/s vs rclone", ratio(phases, "small_get", "davgate", "rclone"), 1.0, True),
        ratio_target("P5", "4 KiB PUT req/s vs rclone", ratio(phases, "small_put", "davgate", "rclone"), 1.0, True),
    ]
    rss, where = peak_rss(phases)
    pss, _ = peak_rss(phases, "davgate", key="peak_pss_mib")
    what = "peak RSS, all davgate processes, any phase"
    if rss is None:
        found.append(Target("P6", what, "not measured", f"≤ {RSS_LIMIT_MIB} MiB", None))
    else:
        found.append(
            Target("P6", what, f"{rss:.0f} MiB ({where})", f"≤ {RSS_LIMIT_MIB} MiB", rss <= RSS_LIMIT_MIB, rss)
        )
    if pss is not None:  # the forked workers share their parent's pages; RSS counts each once per process
        what = "peak PSS (shared pages counted once), all davgate processes, any phase"
        found.append(Target("P6 PSS", what, f"{pss:.0f} MiB", f"≤ {RSS_LIMIT_MIB} MiB", pss <= RSS_LIMIT_MIB, pss))
    found += [
        both("P7", "s3 mount vs boto3 (get_object().read() / upload_fileobj)", [
            ("GET", ratio(phases, "s3_get", "davgate", "boto3")), ("PUT", ratio(phases, "s3_put", "davgate", "boto3"))], 0.8),
        both("P8", "sftp mount vs paramiko (getfo / putfo)", [
            ("GET", ratio(phases, "sftp_get", "davgate", "paramiko")), ("PUT", ratio(phases, "sftp_put", "davgate", "paramiko"))], 0.8),
        ratio_target("P9", "warm DISPEL GET time vs plain GET, same size", ratio(phases, "dispel_warm", "dispel", "plain"), 1.2, False),
        ratio_target("P10", "cold tiffstore window time vs tifffile + numpy", ratio(phases, "tiffstore_cold", "davgate", "tifffile"), 2.0, False),
    ]  # fmt: skip
    found += [
        ratio_target("P13", "cold DISPEL .npy window time vs TiTiler", ratio(phases, "imaging_cold_npy", "davgate", "titiler"), 0.5, False),
        ratio_target("P14", "cold DISPEL .png preview time vs TiTiler", ratio(phases, "imaging_cold_png", "davgate", "titiler"), 0.75, False),
        ratio_target("P13r", "the same windows again, time vs TiTiler", ratio(phases, "imaging_repeated_npy", "davgate", "titiler"), 0.3, False),
        ratio_target("P13c", "16 distinct cold windows at once, windows/s vs TiTiler", ratio(phases, "imaging_concurrent", "davgate", "titiler"), 1.5, True),
    ]  # fmt: skip
    runs = phases.get("single_flight", {}).get("samples", {}).get("davgate")
    if runs:
        text = ", ".join(f"{run:g}" for run in runs) + " execution(s)"
        found.append(
            Target(
                "P11",
                "16 concurrent identical cold DISPEL requests",
                text,
                "exactly 1",
                all(run == 1 for run in runs),
                max(runs),
            )
        )
    else:
        found.append(Target("P11", "16 concurrent identical cold DISPEL requests", "not measured", "exactly 1", None))
    return found


def number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def anchor_table(phases: dict[str, Any]) -> list[str]:
    rows = ["| metric | " + " | ".join(ANCHOR_TITLES[a] for a in ANCHORS) + " |", "|---" * (len(ANCHORS) + 1) + "|"]
    for name in ANCHOR_PHASES:
        if name in phases:
            p = phases[name]
            rows.append(
                f"| {p['title']}, {p['unit']} | " + " | ".join(number(p["median"].get(a)) for a in ANCHORS) + " |"
            )
    for name in ANCHOR_PHASES:
        if name in phases:
            p = phases[name]
            rows.append(
                f"| peak RSS during {p['title']}, MiB | "
                + " | ".join(number(p["peak_rss_mib"].get(a)) for a in ANCHORS)
                + " |"
            )
    return rows


def gateway_table(phases: dict[str, Any]) -> list[str]:
    rows = ["| metric | davgate | baseline | ratio |", "|---|---|---|---|"]
    for name, (who, base) in GATEWAY_PHASES.items():
        if name in phases:
            p = phases[name]
            value = ratio(phases, name, who, base)
            rows.append(
                f"| {p['title']}, {p['unit']} | {number(p['median'].get(who))} | {base} {number(p['median'].get(base))} | "
                f"{'-' if value is None else f'{value:.2f}×'} |"
            )
    return rows


def load_notes(phases: dict[str, Any]) -> list[str]:
    """wrk samples that were not clean: failed responses, socket errors, or nothing answered."""
    notes = []
    for name, p in phases.items():
        for who, details in p.get("details", {}).items():
            for round_, detail in enumerate(details, 1):
                if not isinstance(detail, dict) or "socket_errors" not in detail:
                    continue
                typical = p["median"].get(who) or 0
                if detail["requests"] < 0.1 * typical * detail["seconds"]:
                    notes.append(
                        f"- {name}, {who}, round {round_}: only {detail['requests']} requests answered in "
                        f"{detail['seconds']:.0f} s ({detail['socket_errors']} socket errors or timeouts): the server stalled"
                    )
                elif detail["failed"] or detail["socket_errors"]:
                    notes.append(
                        f"- {name}, {who}, round {round_}: {detail['failed']} responses >= 400, "
                        f"{detail['socket_errors']} socket errors or timeouts"
                    )
    return notes


def target_table(found: list[Target]) -> list[str]:
    rows = ["| id | what | measured | target | met |", "|---|---|---|---|---|"]
    for t in found:
        met = "not measured" if t.met is None else "met" if t.met else "**not met**"
        rows.append(f"| {t.id} | {t.what} | {t.measured} | {t.target} | {met} |")
    return rows


def render(result: dict[str, Any]) -> str:
    phases = result["phases"]
    m, load = result["machine"], result.get("load", {})
    lines = [
        f"davgate benchmark, {result['settings']['name']} run, {result['date']}",
        (
            f"machine: {m['nproc']} cores ({m['cpu']}), {m['memory_gib']} GiB, kernel {m['kernel']}; "
            f"{result['settings']['rounds']} round(s), medians; davgate {result['davgate_workers']} workers, engine {result.get('davgate_engine', 'default')}, Basic auth (bcrypt)"
        ),
    ]
    if load:
        lines.append(
            f"other work on the machine: {load['other_busy_cores']} cores busy on average "
            f"(load average {load['loadavg_start']} → {load['loadavg_end']}){' — NOISY RUN' if result.get('noisy') else ''}"
        )
    lines += ["", *anchor_table(phases)]
    notes = load_notes(phases)
    if notes:
        lines += ["", "Samples that were not clean (included in the medians):", *notes]
    lines += ["", *gateway_table(phases), "", *target_table([Target(**t) for t in result["targets"]])]
    return "\n".join(lines)


def to_json(found: list[Target]) -> list[dict[str, Any]]:
    return [asdict(t) for t in found]


def main(argv: list[str], out: Callable[[str], None] = print) -> int:
    with open(argv[0], encoding="utf-8") as file:
        out(render(json.load(file)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
