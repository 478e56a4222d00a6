"""``/metrics``: the Prometheus text format, totals over every worker process of this server.

Request metrics come from the per-process files of :mod:`davgate.ops.metrics`,
added up at scrape time. DISPEL counters come from the state store
(:func:`davgate.dispel.counters`), so they are totals over every process
and every server sharing that store:

- ``davgate_dispel_executions_total{template}``: pipeline runs;
- ``davgate_dispel_cache_hits_total{template}`` and
  ``davgate_dispel_cache_misses_total{template}``.

``davgate_api_quota_refusals_total{quota}`` (API calls and WebDAV writes
refused by a per-user quota of the management API, :mod:`davgate.api.quotas`)
comes from the state store the same way.

Every family is listed (HELP and TYPE) even before it has a sample, and the
DISPEL ones have a zero sample for each template a dispel mount serves.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from davgate.ops.metrics import FAMILIES, LIVE_GAUGE
from davgate.pids import process_alive

log = logging.getLogger("davgate.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the classic text format, which every Prometheus reads
DISPEL = (
    (
        "executions",
        "davgate_dispel_executions",
        "DISPEL pipeline runs, by template (cache hits and joined runs add nothing).",
    ),
    ("cache_hits", "davgate_dispel_cache_hits", "DISPEL requests whose result was cached, by template."),
    ("cache_misses", "davgate_dispel_cache_misses", "DISPEL requests whose result was not cached, by template."),
)

QUOTA_REFUSALS = "davgate_api_quota_refusals"
QUOTA_HELP = "Management API calls and WebDAV writes refused by a per-user quota (api.quota_*), by quota."


class Exporter:
    """Renders the metrics page for one server."""

    def __init__(
        self,
        folder: Path,
        dispel_counters: Callable[[], dict[str, dict[str, int]]],
        templates: Callable[[], Iterable[str]] = tuple,
        quota_refusals: Callable[[], dict[str, int]] = dict,
    ) -> None:
        self.folder = folder
        self.dispel_counters = dispel_counters
        self.templates = templates
        self.quota_refusals = quota_refusals

    def render(self) -> bytes:
        return generate_latest(self)  # type: ignore[arg-type]  # any object with collect() will do

    def collect(self) -> Iterator[Metric]:
        found = {metric.name: metric for metric in self.request_metrics()}
        for family in FAMILIES:
            yield found.get(family.name) or Metric(family.name, family.help, family.type)
        yield from self.dispel_metrics()
        yield self.quota_metric()

    def request_metrics(self) -> Iterable[Metric]:
        return MultiProcessCollector.merge(self.files(), accumulate=True)

    def files(self) -> list[str]:
        """The value files of this server's processes; live gauges of dead ones are removed."""
        files = []
        for path in glob.glob(os.path.join(self.folder, "*.db")):
            name = os.path.basename(path)
            pid = name.rsplit("_", 1)[-1].removesuffix(".db")
            if name.startswith(LIVE_GAUGE + "_") and pid.isdigit() and not process_alive(int(pid)):
                remove(path)
                continue
            files.append(path)
        return files

    def dispel_metrics(self) -> Iterator[Metric]:
        try:
            totals = self.dispel_counters()
        except Exception:
            log.exception("reading DISPEL counters from the state store failed")
            totals = {}
        for template in self.templates():
            totals.setdefault(template, {})
        for kind, name, text in DISPEL:
            family = CounterMetricFamily(name, text, labels=["template"])
            for template in sorted(totals):
                family.add_metric([template], float(totals[template].get(kind, 0)))
            yield family

    def quota_metric(self) -> Metric:
        try:
            totals = self.quota_refusals()
        except Exception:
            log.exception("reading quota refusals from the state store failed")
            totals = {}
        family = CounterMetricFamily(QUOTA_REFUSALS, QUOTA_HELP, labels=["quota"])
        for quota in sorted(totals):
            family.add_metric([quota], float(totals[quota]))
        return family


def remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


__all__ = ["CONTENT_TYPE", "Exporter"]
