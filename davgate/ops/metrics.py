"""Request metrics, totalled across worker processes without a database write per request.

Each process adds to its own memory-mapped files in one folder per server
(``<metrics folder>/<pid of the serving parent>``), in prometheus_client's
multiprocess file format: ``counter_<pid>.db``, ``histogram_<pid>.db`` and
``gauge_livesum_<pid>.db``. A scrape (:mod:`davgate.ops.export`) reads every
file of the folder and adds them up, so counters keep the requests of
workers that have died; only a dead worker's live gauge (requests in
flight) is removed, by the supervisor (:func:`forget_process`). A request
costs two short critical sections and a handful of 16-byte writes into
mapped memory.

Label values are bounded: methods outside :data:`METHODS` count as
``other``; mounts are the configured mount paths, or ``other``.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.mmap_dict import MmapedDict, mmap_key

from davgate.pids import process_alive

if TYPE_CHECKING:
    from davgate.access_log import Finished
    from davgate.config import Config

COUNTER, HISTOGRAM, LIVE_GAUGE = "counter", "histogram", "gauge_livesum"

METHODS = frozenset(
    "GET HEAD PUT POST DELETE OPTIONS PROPFIND PROPPATCH MKCOL COPY MOVE LOCK UNLOCK PATCH TRACE".split()
)
#: Statuses that say a mount's backend failed, is unreachable, timed out or is full.
BACKEND_ERROR_STATUSES = frozenset({"500", "502", "503", "504", "507"})


@dataclass(frozen=True)
class Family:
    name: str  # without the _total of counters
    type: str  # counter | histogram | gauge
    help: str


REQUESTS = Family("davgate_requests", "counter", "HTTP requests answered, by method and status.")
DURATION = Family(
    "davgate_request_duration_seconds", "histogram", "Time from request start to the last byte sent, by method."
)
RECEIVED = Family("davgate_received_bytes", "counter", "Request body bytes read, by method.")
SENT = Family("davgate_sent_bytes", "counter", "Response body bytes sent, by method.")
BACKEND_ERRORS = Family(
    "davgate_backend_errors",
    "counter",
    "Requests under a mount answered 500, 502, 503, 504 or 507 (backend failed, unreachable, timed out or full), "
    "by mount and status.",
)
IN_FLIGHT = Family("davgate_requests_in_flight", "gauge", "Requests being served now, over all live workers.")
OUTBOUND_REFUSED = Family(
    "davgate_outbound_refused",
    "counter",
    "Connections to places API users named refused by the outbound rule (server.outbound_allow), by kind.",
)
OUTBOUND_KINDS = ("s3", "sshfs", "webhook")
AUTH_FAILURES = Family(
    "davgate_auth_failures", "counter", "Requests with credentials answered 401 (failed authentications)."
)
AUTH_THROTTLED = Family(
    "davgate_auth_throttled",
    "counter",
    "Requests answered 429 after too many failed authentications, by what was throttled (address or user).",
)
FAMILIES = (
    REQUESTS, DURATION, RECEIVED, SENT, BACKEND_ERRORS, IN_FLIGHT, OUTBOUND_REFUSED, AUTH_FAILURES, AUTH_THROTTLED,
)  # fmt: skip


def key(family: Family, sample: str, labels: Sequence[tuple[str, str]] = ()) -> str:
    """The key of one sample in the mapped files (prometheus_client's format)."""
    names, values = [n for n, _ in labels], [v for _, v in labels]
    return mmap_key(family.name, sample, names, values, family.help)


class ProcessId:
    """``os.getpid()`` without a system call per request: read once, and again in a forked child."""

    def __init__(self) -> None:
        self.value = os.getpid()
        os.register_at_fork(after_in_child=self.refresh)

    def refresh(self) -> None:
        self.value = os.getpid()


this_process = ProcessId()


class Recorder:
    """This process's values, written through to its mapped files in ``folder``.

    After a fork the child starts from zero in files of its own pid, so the
    parent's counts are never counted twice.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._pid = -1
        self._files: dict[str, MmapedDict] = {}
        self._values: dict[str, float] = {}
        self._declared: list[tuple[str, str]] = []

    def declare(self, kind: str, names: Iterable[str]) -> None:
        """Samples that exist from now on, at zero until added to (e.g. every bucket of a histogram)."""
        names = list(names)
        with self._lock:
            self._declared.extend((kind, name) for name in names)
            if self._pid == os.getpid():
                self._write_zeros((kind, name) for name in names)

    def add(self, items: Iterable[tuple[str, str, float]]) -> None:
        """Add ``amount`` to each ``(kind, key, amount)``, in one critical section."""
        with self._lock:
            if self._pid != this_process.value:
                self._reopen()
            values, files = self._values, self._files
            for kind, name, amount in items:
                value = values[name] = values.get(name, 0.0) + amount
                files[kind].write_value(name, value, 0.0)

    def _reopen(self) -> None:
        self._close_files()
        self._pid = os.getpid()
        self._values = {}
        self.folder.mkdir(parents=True, exist_ok=True)
        self._files = {
            kind: MmapedDict(str(self.folder / f"{kind}_{self._pid}.db")) for kind in (COUNTER, HISTOGRAM, LIVE_GAUGE)
        }
        self._write_zeros(self._declared)

    def _write_zeros(self, samples: Iterable[tuple[str, str]]) -> None:
        for kind, name in samples:
            if name not in self._values:
                self._values[name] = 0.0
                self._files[kind].write_value(name, 0.0, 0.0)

    def _close_files(self) -> None:
        for file in self._files.values():
            file.close()
        self._files = {}

    def close(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                self._close_files()
            self._pid = -1


class RequestMetrics:
    """The access log's observer: counts each request once, when its response is done."""

    def __init__(self, recorder: Recorder, buckets: Sequence[float], mounts: Iterable[str]) -> None:
        self.recorder = recorder
        self.bounds = sorted(float(b) for b in buckets)
        self.mounts = sorted(mounts, key=len, reverse=True)
        self._started = [(LIVE_GAUGE, key(IN_FLIGHT, IN_FLIGHT.name), 1.0)]
        self._ended = (LIVE_GAUGE, key(IN_FLIGHT, IN_FLIGHT.name), -1.0)
        self._by_method: dict[str, MethodKeys] = {}
        self._requests: dict[tuple[str, str], str] = {}
        self._errors: dict[tuple[str, str], str] = {}

    def request_started(self, environ: dict) -> None:
        self.recorder.add(self._started)

    def request_finished(self, done: Finished) -> None:
        method = done.method if done.method in METHODS else "other"
        keys = self._by_method.get(method) or self._method_keys(method)
        items: list[tuple[str, str, float]] = [
            self._ended,
            (COUNTER, self._requests.get((method, done.status)) or self._request_key(method, done.status), 1.0),
            (HISTOGRAM, keys.buckets[bisect.bisect_left(self.bounds, done.seconds)], 1.0),
            (HISTOGRAM, keys.duration_sum, done.seconds),
        ]
        if done.received:
            items.append((COUNTER, keys.received, float(done.received)))
        if done.sent:
            items.append((COUNTER, keys.sent, float(done.sent)))
        if done.status in BACKEND_ERROR_STATUSES:
            items.append((COUNTER, self._error_key(self.mount_of(done.path), done.status), 1.0))
        self.recorder.add(items)

    def mount_of(self, path: str) -> str:
        """The configured mount serving ``path``; "other" for the rest (e.g. namespaces made by the API)."""
        for mount in self.mounts:
            if path == mount or path.startswith(mount + "/"):
                return mount
        return "other"

    def _method_keys(self, method: str) -> MethodKeys:
        labels = (("method", method),)
        bounds = [*(format_bound(b) for b in self.bounds), "+Inf"]
        keys = MethodKeys(
            buckets=[key(DURATION, DURATION.name + "_bucket", (*labels, ("le", le))) for le in bounds],
            duration_sum=key(DURATION, DURATION.name + "_sum", labels),
            received=key(RECEIVED, RECEIVED.name + "_total", labels),
            sent=key(SENT, SENT.name + "_total", labels),
        )
        self.recorder.declare(HISTOGRAM, [*keys.buckets, keys.duration_sum])
        self._by_method[method] = keys
        return keys

    def _request_key(self, method: str, status: str) -> str:
        valid = len(status) == 3 and status.isdigit()
        name = key(REQUESTS, REQUESTS.name + "_total", (("method", method), ("status", status if valid else "other")))
        if valid:  # only real statuses are remembered, so the table stays small
            self._requests[(method, status)] = name
        return name

    def _error_key(self, mount: str, status: str) -> str:
        name = self._errors.get((mount, status))
        if name is None:
            name = self._errors[(mount, status)] = key(
                BACKEND_ERRORS, BACKEND_ERRORS.name + "_total", (("mount", mount), ("status", status))
            )
        return name


class OutboundRefusals:
    """Counts the outbound rule's refusals (its ``refused`` callback), by kind of connection."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.keys = {kind: self.key(kind) for kind in (*OUTBOUND_KINDS, "other")}
        recorder.declare(COUNTER, self.keys.values())

    @staticmethod
    def key(kind: str) -> str:
        return key(OUTBOUND_REFUSED, OUTBOUND_REFUSED.name + "_total", (("kind", kind),))

    def __call__(self, kind: str) -> None:
        self.recorder.add([(COUNTER, self.keys.get(kind) or self.keys["other"], 1.0)])


class AuthMetrics:
    """The authentication throttle's observer (see :mod:`davgate.auth.throttle`): failures and 429s."""

    SCOPES = ("address", "user")

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.failures = key(AUTH_FAILURES, AUTH_FAILURES.name + "_total")
        self.throttled = {
            scope: key(AUTH_THROTTLED, AUTH_THROTTLED.name + "_total", (("scope", scope),)) for scope in self.SCOPES
        }
        recorder.declare(COUNTER, [self.failures, *self.throttled.values()])

    def auth_failed(self) -> None:
        self.recorder.add([(COUNTER, self.failures, 1.0)])

    def auth_throttled(self, scope: str) -> None:
        self.recorder.add([(COUNTER, self.throttled[scope], 1.0)])


@dataclass(frozen=True)
class MethodKeys:
    buckets: list[str]  # one per bound, then +Inf
    duration_sum: str
    received: str
    sent: str


def format_bound(bound: float) -> str:
    """A bucket bound as prometheus_client writes it (``0.005``, ``1.0``)."""
    return repr(float(bound))


# --- folders -----------------------------------------------------------------------------


def base_folder(config: Config) -> Path:
    """Where the servers of this configuration keep their metrics folders."""
    if config.metrics.folder is not None:
        return config.metrics.folder
    state_path = getattr(config.state, "path", None)
    if state_path is not None:
        return Path(state_path).parent / "metrics"
    return Path(tempfile.gettempdir()) / f"davgate-metrics-{os.getuid()}"


def server_folder(config: Config) -> Path:
    """A fresh folder for the server starting in this process (before workers fork).

    Folders of servers that are no longer running are removed, so restarts
    do not pile up files; two servers sharing a state folder keep their own.
    """
    base = base_folder(config)
    base.mkdir(parents=True, exist_ok=True)
    remove_dead_folders(base)
    folder = base / str(os.getpid())
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    return folder


def private_folder(config: Config) -> Path:
    """A folder of one's own, for an application built outside ``davgate serve``."""
    base = base_folder(config)
    base.mkdir(parents=True, exist_ok=True)
    folder = base / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    return folder


def remove_dead_folders(base: Path) -> None:
    for folder in base.iterdir():
        pid = folder.name.split("-", 1)[0]
        if folder.is_dir() and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def forget_process(folder: Path, pid: int) -> None:
    """A worker died: drop its live gauge (its counters stay in the totals)."""
    with contextlib.suppress(FileNotFoundError):
        (folder / f"{LIVE_GAUGE}_{pid}.db").unlink()
