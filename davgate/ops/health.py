"""Readiness: can this process reach the state store and every mount, within a bounded time?

Each component has a check that makes one cheap real call to its backend
(:func:`mount_check` asks a mount for its root and for an entry that is not
there, which S3 answers with a HEAD, SFTP and a local folder with a stat). The
checks run in parallel threads; what has not answered by the deadline is
"not ready" (a check still running is not started again). Results are
kept for ``cache_for`` seconds, so a burst of probes (``/readyz`` needs no
authentication) costs the backends one round of calls.

The page says only ready or not ready: it is public, and mount paths and
outages are nobody's business there. Which component is not ready, and
why, goes to the log whenever that changes (the full reason of a failed
check too).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from davgate import errors

log = logging.getLogger("davgate.health")

PROBE = ".davgate-readyz"  # a name no mount is expected to hold
PROBE_KEY = "davgate-readyz-probe"  # a cache key that is never made

Check = Callable[[], object]


class Probe:
    """One component's check and its last outcome."""

    def __init__(self, name: str, check: Check) -> None:
        self.name = name
        self.check = check
        self.outcome: str | None = None  # "ok" or a coarse reason; None before the first check
        self.finished = 0.0
        self._running = False
        self._changed = threading.Condition()

    def fresh(self, now: float, cache_for: float) -> bool:
        return self.outcome is not None and now - self.finished <= cache_for

    def start(self) -> None:
        """Run the check in a thread, unless it is running already."""
        with self._changed:
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._run, name=f"davgate-readyz {self.name}", daemon=True).start()

    def wait(self, deadline: float) -> str | None:
        """The outcome once the check has finished, or None if it is still running at ``deadline``."""
        with self._changed:
            self._changed.wait_for(lambda: not self._running, timeout=max(0.0, deadline - time.monotonic()))
            return None if self._running else self.outcome

    def _run(self) -> None:
        try:
            self.check()
            outcome = "ok"
        except errors.StorageError as error:
            outcome = error.reason
            log.warning("readiness: %s: %s", self.name, error)
        except Exception as error:
            outcome = "error"
            log.warning("readiness: %s: %s: %s", self.name, type(error).__name__, error)
        with self._changed:
            self.outcome, self.finished, self._running = outcome, time.monotonic(), False
            self._changed.notify_all()


class Readiness:
    """The checks of one application; :meth:`report` runs them (or reuses fresh results)."""

    def __init__(self, checks: Mapping[str, Check], timeout: float, cache_for: float = 1.0) -> None:
        self.probes = {name: Probe(name, check) for name, check in checks.items()}
        self.timeout = timeout
        self.cache_for = cache_for
        self.last: dict[str, str] = {}  # the results last logged
        self._logging = threading.Lock()

    def report(self) -> tuple[bool, dict[str, str]]:
        """(ready, {component: "ok" or why not}); a change of what is not ready is logged."""
        now = time.monotonic()
        for probe in self.probes.values():
            if not probe.fresh(now, self.cache_for):
                probe.start()
        deadline = now + self.timeout
        results = {}
        for name, probe in self.probes.items():
            outcome = probe.wait(deadline)
            results[name] = f"timed out after {self.timeout:g} s" if outcome is None else outcome
        self.log_change(results)
        return all(r == "ok" for r in results.values()), results

    def log_change(self, results: dict[str, str]) -> None:
        with self._logging:
            if results == self.last:
                return
            self.last = results
        waiting = {name: outcome for name, outcome in results.items() if outcome != "ok"}
        if waiting:
            log.warning("not ready: %s", ", ".join(f"{name} ({outcome})" for name, outcome in waiting.items()))
        else:
            log.info("ready: %s", ", ".join(results))


def store_check(store: Any) -> Check:
    """Read one counter: a real round trip to the state store."""
    return lambda: store.counter("readyz")


def mount_check(mount: Any) -> Check:
    """The mount's root exists, and the backend answers a lookup of a name that is not there."""

    def check() -> None:
        if mount.stat("") is None:
            raise errors.NotFound("", "the mount's root does not exist")
        mount.stat(PROBE)

    return check


def cache_check(cache: Any) -> Check:
    return lambda: cache.backend.stat(PROBE_KEY)


def checks_for(store: Any, mounts: Mapping[str, Any], cache: Any = None) -> dict[str, Check]:
    """The state store, then every mount by path, then the DISPEL cache if there is one."""
    checks: dict[str, Check] = {"state": store_check(store)}
    checks.update((path, mount_check(mount)) for path, mount in sorted(mounts.items()))
    if cache is not None:
        checks["cache"] = cache_check(cache)
    return checks
