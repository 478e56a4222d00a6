"""DISPEL counters, kept in the state store so that every server process sees the same totals.

Three counts per template, for ``/metrics``:

- ``executions``: pipeline runs, one per run handed to a pipeline process
  (whether it then succeeds, fails or times out). Requests served from the
  cache, and requests that waited for someone else's run of the same
  result, add nothing.
- ``cache_hits``: requests for a result that found it in the cache.
- ``cache_misses``: requests that did not, whether they then ran the
  pipeline or waited for a run already going (so ``executions`` never
  exceeds ``cache_misses``).

Each is a state store counter named ``dispel:<template>:<kind>``
(template names never contain ``:``). Hits and misses are added in batches
by :class:`Tally`, at most about a second late.
"""

from __future__ import annotations

import logging
import threading
import time

from davgate.state import StateStore

log = logging.getLogger("davgate.dispel.counting")

PREFIX = "dispel:"
EXECUTIONS = "executions"
HITS = "cache_hits"
MISSES = "cache_misses"
KINDS = (EXECUTIONS, HITS, MISSES)


def counter_name(template: str, kind: str) -> str:
    return f"{PREFIX}{template}:{kind}"


def counters(store: StateStore) -> dict[str, dict[str, int]]:
    """Totals by template over every process using ``store``.

    ``{"tiffstore": {"executions": 3, "cache_hits": 10, "cache_misses": 4}}``:
    every template that has counted anything, each with all three kinds
    (see the module docstring for what each counts). The /metrics
    endpoint reports them as ``davgate_dispel_executions_total{template=...}``
    and the cache hit and miss counters.
    """
    totals: dict[str, dict[str, int]] = {}
    for name, value in store.counters(PREFIX).items():
        template, _, kind = name[len(PREFIX) :].rpartition(":")
        if template and kind in KINDS:
            totals.setdefault(template, dict.fromkeys(KINDS, 0))[kind] += value
    return totals


def executions_total(store: StateStore) -> int:
    """Pipeline runs so far, over every template and every process using ``store``."""
    return sum(kinds[EXECUTIONS] for kinds in counters(store).values())


class Tally:
    """Counter additions and cache entry uses, gathered in memory and written in batches.

    With ``interval`` > 0 a background thread writes what has gathered every
    ``interval`` seconds (started with the first count); with 0, every count
    is written at once. :meth:`close` writes the rest.
    """

    def __init__(self, store: StateStore, interval: float) -> None:
        self.store = store
        self.interval = interval
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._uses: dict[str, tuple[int, float]] = {}
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + amount
        self._due()

    def use(self, key: str, when: float | None = None) -> None:
        """One more hit of the cache entry ``key``, at ``when`` (now)."""
        when = time.time() if when is None else when
        with self._lock:
            count, last = self._uses.get(key, (0, when))
            self._uses[key] = (count + 1, max(last, when))
        self._due()

    def pending_use(self, key: str) -> tuple[int, float]:
        """Hits of ``key`` not written yet, and the last of them (0.0 if none)."""
        with self._lock:
            return self._uses.get(key, (0, 0.0))

    def _due(self) -> None:
        if self.interval <= 0:
            self.flush()
            return
        with self._lock:
            if self._thread is not None or self._closed.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="davgate-dispel-tally", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed.wait(self.interval):
            try:
                self.flush()
            except Exception:  # the counts of one batch are lost; the next batch tries again
                log.exception("writing DISPEL counters to the state store failed")

    def flush(self) -> None:
        """Write what has gathered."""
        with self._lock:
            counts, self._counts = self._counts, {}
            uses, self._uses = self._uses, {}
        if uses:
            self.store.cache_touch(uses)
        for name, amount in counts.items():
            self.store.add_counter(name, amount)

    def close(self) -> None:
        self._closed.set()
        self.flush()
