"""The operations parts of one application: readiness, metrics, the endpoints, the access log.

``davgate serve`` makes one metrics folder per server before any worker
starts and names it in ``DAVGATE_METRICS_DIR``; every worker process (forked
by cheroot's supervisor, or started by granian) adds its files there, and
``/metrics`` adds them up. An application built without ``serve`` (tests,
embedding) gets a private folder, removed when it closes.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from davgate.access_log import AccessLog
from davgate.ops import metrics
from davgate.ops.endpoints import METRICS_CONFIG_KEY, HealthEndpoints, MetricsEndpoint
from davgate.ops.export import Exporter
from davgate.ops.health import Readiness, checks_for
from davgate.ops.startup import register_reason_phrases

if TYPE_CHECKING:
    from davgate.config import Config
    from davgate.state import StateStore

log = logging.getLogger("davgate.ops")

FOLDER_ENV = "DAVGATE_METRICS_DIR"


@dataclass
class Ops:
    readiness: Readiness
    recorder: metrics.Recorder | None = None
    observer: metrics.RequestMetrics | None = None
    exporter: Exporter | None = None
    private_folder: Path | None = None  # removed on close
    auth: metrics.AuthMetrics | None = None  # failed and throttled authentications

    def outbound_refusals(self) -> Callable[[str], None] | None:
        """A counter of the outbound rule's refusals, by kind; None without metrics."""
        return metrics.OutboundRefusals(self.recorder) if self.recorder is not None else None

    def wrap(self, app: Callable) -> AccessLog:
        """The request scope (id, access log, metrics) around the health endpoints around ``app``."""
        observers = [self.observer] if self.observer is not None else []
        return AccessLog(HealthEndpoints(app, self.readiness), observers)

    def wsgidav_settings(self) -> dict[str, Any]:
        return {METRICS_CONFIG_KEY: self.exporter} if self.exporter is not None else {}

    def middleware(self) -> list[type]:
        """WsgiDAV middlewares to put right after the authenticator."""
        return [MetricsEndpoint] if self.exporter is not None else []

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
        if self.private_folder is not None:
            shutil.rmtree(self.private_folder, ignore_errors=True)


def build_ops(config: Config, store: StateStore, mounts: Mapping[str, Any], cache: Any = None) -> Ops:
    register_reason_phrases()  # again here: granian may start its workers without forking
    readiness = Readiness(checks_for(store, mounts, cache), timeout=config.server.ready_timeout)
    if not config.metrics.enabled:
        return Ops(readiness)
    shared = os.environ.get(FOLDER_ENV)
    folder = Path(shared) if shared else metrics.private_folder(config)
    recorder = metrics.Recorder(folder)
    observer = metrics.RequestMetrics(recorder, config.metrics.latency_buckets, mounts)
    exporter = Exporter(folder, dispel_counters(store), dispel_templates(mounts), quota_refusals(store))
    auth = metrics.AuthMetrics(recorder)
    return Ops(readiness, recorder, observer, exporter, None if shared else folder, auth)


def dispel_counters(store: StateStore) -> Callable[[], dict[str, dict[str, int]]]:
    from davgate import dispel

    return lambda: dispel.counters(store)


def quota_refusals(store: StateStore) -> Callable[[], dict[str, int]]:
    from davgate.api import quotas

    return lambda: quotas.refusals(store)


def dispel_templates(mounts: Mapping[str, Any]) -> Callable[[], Iterable[str]]:
    """The names of the templates every dispel mount serves (read at scrape time)."""

    def names() -> list[str]:
        found: set[str] = set()
        for mount in mounts.values():
            templates = getattr(getattr(mount, "engine", None), "templates", None)
            if templates is not None:
                try:
                    found.update(templates.names())
                except OSError as error:
                    log.warning("listing DISPEL templates for /metrics failed: %s", error)
        return sorted(found)

    return names
