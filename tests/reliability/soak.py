"""The soak engine: many clients doing mixed WebDAV work across mounts, every byte checked.

Each client owns a folder on every writable mount and keeps a model of
what its files must contain; it PUTs, GETs (whole and ranges), PROPFINDs,
COPYs and MOVEs (also between mounts), DELETEs and LOCKs them, fights the
other clients for one shared lock, and GETs DISPEL results whose bytes are
known in advance. Some names are shared by all clients (a few per mount):
they are PUT, GET, COPYd, MOVEd and DELETEd by everyone at once, and a GET
of one must return the bytes of one of the writes made to shared names
(each write is registered before it is sent), never a mixture; for them
404, 409, 412 and 423 are truthful answers too, a 5xx never is. Every body is compared by sha256 with the model, and a
mismatch counts its differing bytes as corrupted. An RSS sampler sums the
resident memory of every process of the server's process group once a
second. The report gives the number of 5xx answers, corrupted bytes,
unexpected statuses, and RSS over time (:mod:`tests.reliability.soak_report`).

A mount may be taken down mid-run (:meth:`Soak.outage`): its requests may
then answer 502/503 (within ``outage_bound`` seconds) until its first
success after it is back; a write answered 5xx leaves its target with the
old or the new content, nothing else, and the model accepts either.

Used by tests/reliability/test_soak.py (60 s in CI), test_faults.py (outages)
and scripts/soak.py (the long run on demand).
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import requests
from lxml import etree

from tests.reliability.soak_report import Report, RssSampler

ABSENT = None
LOCKINFO = (
    b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    b"<D:locktype><D:write/></D:locktype><D:owner>soak</D:owner></D:lockinfo>"
)
SIZES = ((2, 0, 0), (40, 1, 4096), (35, 4096, 65536), (20, 65536, 1 << 20), (3, 1 << 20, 10 << 20))
OPERATIONS = {
    "put": 24,
    "get": 24,
    "range": 6,
    "propfind": 10,
    "copy": 8,
    "move": 7,
    "delete": 6,
    "lock": 5,
    "shared_lock": 3,
    "dispel": 10,
    "shared": 12,
}
NAMES_PER_MOUNT = 6
SHARED_NAMES = 3  # per mount
SHARED_OK = (200, 201, 204, 207, 404, 409, 412, 423)  # under a race on one name, each of these tells the truth


@dataclass(frozen=True)
class Target:
    """Where to soak: the server, its writable mounts, and DISPEL URLs with their expected sha256."""

    url: str
    auth: tuple[str, str]
    mounts: tuple[str, ...]
    dispel: dict[str, str] = field(default_factory=dict)
    timeout: float = 120.0


@dataclass
class Outage:
    mount: str
    down_at: float
    up_at: float | None = None
    recovered_at: float | None = None


class Soak:
    """``Soak(target, clients, duration, pgid).run() -> Report``."""

    def __init__(self, target: Target, clients: int = 32, duration: float = 60.0, pgid: int | None = None,
                 seed: int = 1, outage_bound: float = 10.0) -> None:  # fmt: skip
        self.target = target
        self.clients = clients
        self.duration = duration
        self.seed = seed
        self.run_id = f"soak-{seed}-{int(time.time() * 1000) % 10**8}"
        self.report = Report(clients=clients, mounts=list(target.mounts))
        self.sampler = RssSampler(pgid) if pgid else None
        self.outages: list[Outage] = []
        self.outage_bound = outage_bound
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.served: Counter[str] = Counter()  # successful answers per mount, so far
        self.started = 0.0
        self.shared_names = [f"{m}/{self.run_id}/shared/s{n}.bin" for m in target.mounts for n in range(SHARED_NAMES)]
        self.shared_written: set[bytes] = set()  # sha256 of every body written to a shared name

    # --- running ---------------------------------------------------------------------

    def run(self) -> Report:
        workers = [Client(self, number) for number in range(self.clients)]
        for worker in workers:
            worker.prepare()
        self.shared_path = f"{self.target.mounts[0]}/{self.run_id}-shared.txt"
        workers[0].call("PUT", self.shared_path, data=b"shared", expect=(201, 204))
        for mount in self.target.mounts:
            workers[0].call("MKCOL", f"{mount}/{self.run_id}/shared", expect=(201,))
        self.started = time.monotonic()
        if self.sampler:
            self.sampler.start()
        threads = [threading.Thread(target=w.loop, name=f"soak-{w.number}", daemon=True) for w in workers]
        for thread in threads:
            thread.start()
        self.stop.wait(self.duration)
        self.stop.set()
        for thread in threads:
            thread.join(self.target.timeout + 30)
        self.report.duration = time.monotonic() - self.started
        if self.sampler:
            self.sampler.stop()
            self.report.rss = self.sampler.samples
        checkers = [threading.Thread(target=w.verify_all, name=f"verify-{w.number}") for w in workers]
        checkers.append(threading.Thread(target=workers[0].verify_shared, name="verify-shared"))
        for checker in checkers:
            checker.start()
        for checker in checkers:
            checker.join()
        self.judge_outages()
        return self.report

    def wait_until_started(self, elapsed: float) -> None:
        """Block until the soak has been running ``elapsed`` seconds (for fault injection)."""
        while not self.started or time.monotonic() - self.started < elapsed:
            if self.stop.is_set():
                return
            time.sleep(0.05)

    @contextlib.contextmanager
    def outage(self, mount: str) -> Iterator[Outage]:
        """Mark ``mount`` down for the block (the caller stops and starts its backend inside)."""
        record = Outage(mount, time.monotonic())
        with self.lock:
            self.outages.append(record)
        try:
            yield record
        finally:
            record.up_at = time.monotonic()

    # --- accounting ------------------------------------------------------------------

    def record(self, method: str, path: str, status: int, started: float, ended: float, expected: bool, note: str,
               dest: str = "") -> None:  # fmt: skip
        with self.lock:
            self.report.count(method, status)
            if status >= 500:
                self.report.server_errors.append((method, path, status, started, ended, note[:200], dest))
            elif not expected:
                self.report.unexpected.append(f"{method} {path} -> {status}: {note[:200]}")
            mount = mount_of(path, self.target.mounts)
            if status < 400 and mount is not None:
                self.served[mount] += 1
            for outage in self.outages:
                if (
                    outage.mount == mount
                    and outage.up_at
                    and status < 500
                    and outage.recovered_at is None
                    and started >= outage.up_at
                ):
                    outage.recovered_at = ended

    def write_shared(self, data: bytes) -> None:
        with self.lock:
            self.shared_written.add(hashlib.sha256(data).digest())

    def check_shared(self, path: str, body: bytes) -> None:
        """A shared name holds the bytes of one write made to shared names; anything else is corrupt."""
        with self.lock:
            known = hashlib.sha256(body).digest() in self.shared_written
        self.corrupted(path, 0 if known else max(1, len(body)), len(body))

    def corrupted(self, path: str, count: int, size: int) -> None:
        with self.lock:
            self.report.verified_bytes += size
            if count:
                self.report.corrupted_bytes += count
                self.report.corruptions.append(f"{path}: {count} of {size} bytes differ")

    def judge_outages(self) -> None:
        """5xx answers inside an outage window are expected if 502/503 and fast enough."""
        kept = []
        for error in self.report.server_errors:
            _method, path, status, started, ended, _note, dest = error
            outage = self.outage_for(path, started, ended) or (dest and self.outage_for(dest, started, ended))
            if outage and status in (502, 503) and ended - started <= self.outage_bound:
                self.report.outage_answers += 1
                self.report.outage_slowest = max(self.report.outage_slowest, ended - started)
                continue
            kept.append(error)
        self.report.server_errors = kept
        self.report.outages = [
            {"mount": o.mount, "down_s": round((o.up_at or o.down_at) - o.down_at, 1),
             "recovered_after_s": None if o.recovered_at is None or o.up_at is None else round(o.recovered_at - o.up_at, 2)}
            for o in self.outages
        ]  # fmt: skip

    def outage_for(self, path: str, started: float, ended: float) -> Outage | None:
        mount = mount_of(path, self.target.mounts)
        for outage in self.outages:
            end = outage.recovered_at or float("inf")
            if outage.mount == mount and ended >= outage.down_at and started <= end:
                return outage
        return None


def mount_of(path: str, mounts: tuple[str, ...]) -> str | None:
    return next((m for m in mounts if path == m or path.startswith(m + "/")), None)


class Client:
    """One soaking client: a requests session, a random stream and a model of its files."""

    def __init__(self, soak: Soak, number: int) -> None:
        self.soak = soak
        self.number = number
        self.random = random.Random(soak.seed * 1000 + number)
        self.session = requests.Session()
        self.session.auth = soak.target.auth
        self.files: dict[str, list[bytes | None]] = {}  # path: the contents it may have (None: absent)
        self.folders = [f"{m}/{soak.run_id}/c{number}" for m in soak.target.mounts]
        self.counter = 0
        self.held: dict[str, str] = {}  # locks whose UNLOCK failed (a backend was down): path: token

    def prepare(self) -> None:
        for mount in self.soak.target.mounts:
            self.call("MKCOL", f"{mount}/{self.soak.run_id}", expect=(201, 405))
        for folder in self.folders:
            self.call("MKCOL", folder, expect=(201,))

    def loop(self) -> None:
        self.session.close()  # a keep-alive connection idle while others prepared may be closed by now
        names, weights = zip(*OPERATIONS.items())
        while not self.soak.stop.is_set():
            self.release_held()
            operation = self.random.choices(names, weights)[0]
            if operation == "dispel" and not self.soak.target.dispel:
                operation = "get"
            try:
                getattr(self, f"op_{operation}")()
            except requests.RequestException as error:
                self.soak.record(operation.upper(), "-", 599, time.monotonic(), time.monotonic(), False, repr(error))

    # --- HTTP -----------------------------------------------------------------------

    def call(
        self, method: str, path: str, expect: tuple[int, ...] = (), dest: str = "", **kwargs: Any
    ) -> requests.Response:
        started = time.monotonic()
        response = self.session.request(
            method, self.soak.target.url + quote(path), timeout=self.soak.target.timeout, **kwargs
        )
        ended = time.monotonic()
        ok = not expect or response.status_code in expect
        note = response.text[:200] if not ok else ""
        self.soak.record(method, path, response.status_code, started, ended, ok, note, dest)
        return response

    # --- the model --------------------------------------------------------------------

    def release_held(self) -> None:
        for path, token in list(self.held.items()):
            if self.call("UNLOCK", path, headers={"Lock-Token": token}).status_code < 500:
                del self.held[path]

    def pick_existing(self) -> str | None:
        present = [p for p, states in self.files.items() if all(s is not ABSENT for s in states) and p not in self.held]
        return self.random.choice(present) if present else None

    def new_name(self, folder: str | None = None) -> str:
        folder = folder or self.random.choice(self.folders)
        self.counter += 1
        return f"{folder}/f{self.counter % (NAMES_PER_MOUNT * 3)}.bin"

    def body(self) -> bytes:
        weights = [w for w, _, _ in SIZES]
        _, low, high = self.random.choices(SIZES, weights)[0]
        return self.random.randbytes(self.random.randint(low, high))

    def settle(self, path: str, response_ok: bool, new: bytes | None) -> None:
        """After a write: the new state if it succeeded; if it answered 5xx, old or new."""
        old = self.files.get(path, [ABSENT])
        self.files[path] = [new] if response_ok else [*old, new]

    def check(self, path: str, body: bytes) -> None:
        states = [s for s in self.files.get(path, [ABSENT]) if s is not ABSENT]
        if any(hashlib.sha256(s).digest() == hashlib.sha256(body).digest() for s in states):
            self.soak.corrupted(path, 0, len(body))
            self.files[path] = [body]
            return
        nearest = min((differing(s, body) for s in states), default=len(body))
        self.soak.corrupted(path, nearest, len(body))

    # --- operations -------------------------------------------------------------------

    def op_put(self) -> None:
        path = self.pick_existing() if self.random.random() < 0.5 else None
        path = path or self.new_name()
        if path in self.held:
            return
        data = self.body()
        exists = self.files.get(path, [ABSENT])
        expect = (204,) if ABSENT not in exists else (201,) if all(s is ABSENT for s in exists) else (201, 204)
        response = self.call("PUT", path, expect=expect, data=data)
        self.settle(path, response.status_code < 300, data)

    def op_get(self) -> None:
        path = self.pick_existing()
        if path is None:
            return self.op_put()
        response = self.call("GET", path, expect=(200,))
        if response.status_code == 200:
            self.check(path, response.content)
        return None

    def op_range(self) -> None:
        path = self.pick_existing()
        states = self.files.get(path or "", [])
        if path is None or len(states) != 1 or not states[0]:
            return self.op_get()
        data = states[0]
        start = self.random.randrange(len(data))
        end = min(len(data) - 1, start + self.random.randint(0, 200_000))
        response = self.call("GET", path, expect=(206,), headers={"Range": f"bytes={start}-{end}"})
        if response.status_code == 206:
            self.soak.corrupted(path, differing(data[start : end + 1], response.content), end + 1 - start)
        return None

    def op_propfind(self) -> None:
        folder = self.random.choice(self.folders)
        response = self.call("PROPFIND", folder + "/", expect=(207,), headers={"Depth": "1"})
        if response.status_code != 207:
            return
        listed = listing(response.content)
        for path, states in self.files.items():
            if not path.startswith(folder + "/") or len(states) != 1:
                continue
            name = path.rsplit("/", 1)[1]
            if states[0] is ABSENT and name in listed:
                self.soak.record("PROPFIND", path, 200, 0, 0, False, "a deleted file is listed")
            elif states[0] is not ABSENT and listed.get(name) != len(states[0]):
                self.soak.record(
                    "PROPFIND", path, 200, 0, 0, False, f"listed size {listed.get(name)}, expected {len(states[0])}"
                )

    def op_copy(self, move: bool = False) -> None:
        source = self.pick_existing()
        if source is None:
            return self.op_put()
        dest = self.new_name()
        if dest == source or dest in self.held or len(self.files[source]) != 1:
            return None
        exists = self.files.get(dest, [ABSENT])
        expect = (204,) if ABSENT not in exists else (201,) if all(s is ABSENT for s in exists) else (201, 204)
        headers = {"Destination": self.soak.target.url + quote(dest), "Overwrite": "T"}
        response = self.call("MOVE" if move else "COPY", source, expect=expect, dest=dest, headers=headers)
        ok = response.status_code < 300
        content = self.files[source][0]
        self.settle(dest, ok, content)
        if move:
            self.settle(source, ok, ABSENT)
        return None

    def op_move(self) -> None:
        self.op_copy(move=True)

    def op_delete(self) -> None:
        path = self.pick_existing()
        if path is None:
            return
        response = self.call("DELETE", path, expect=(204,))
        self.settle(path, response.status_code < 300, ABSENT)
        if response.status_code < 300 and self.random.random() < 0.3:
            self.call("GET", path, expect=(404,))

    def op_lock(self) -> None:
        path = self.pick_existing()
        if path is None:
            return
        locked = self.call("LOCK", path, expect=(200,), data=LOCKINFO, headers={"Timeout": "Second-60", "Depth": "0"})
        token = locked.headers.get("Lock-Token")
        if locked.status_code != 200 or not token:
            return
        data = self.body()
        self.call("PUT", path, expect=(423,), data=b"must not be written")
        response = self.call("PUT", path, expect=(204,), data=data, headers={"If": f"({token})"})
        self.settle(path, response.status_code < 300, data)
        if self.call("UNLOCK", path, expect=(204,), headers={"Lock-Token": token}).status_code >= 500:
            self.held[path] = token

    def op_shared_lock(self) -> None:
        path = self.soak.shared_path
        locked = self.call(
            "LOCK", path, expect=(200, 423), data=LOCKINFO, headers={"Timeout": "Second-30", "Depth": "0"}
        )
        token = locked.headers.get("Lock-Token")
        if locked.status_code == 200 and token:
            self.call("UNLOCK", path, expect=(204,), headers={"Lock-Token": token})

    def op_dispel(self) -> None:
        url, expected = self.random.choice(list(self.soak.target.dispel.items()))
        response = self.call("GET", url, expect=(200,))
        if response.status_code == 200:
            same = hashlib.sha256(response.content).hexdigest() == expected
            self.soak.corrupted(url, 0 if same else max(1, len(response.content)), len(response.content))

    def op_shared(self) -> None:
        """One of PUT, GET, COPY, MOVE, DELETE on names every client uses at once."""
        path = self.random.choice(self.soak.shared_names)
        kind = self.random.choices(("put", "get", "copy", "move", "delete"), (4, 4, 2, 2, 1))[0]
        if kind == "put":
            data = self.body()
            self.soak.write_shared(data)
            self.call("PUT", path, expect=SHARED_OK, data=data)
        elif kind == "get":
            response = self.call("GET", path, expect=SHARED_OK)
            if response.status_code == 200:
                self.soak.check_shared(path, response.content)
        elif kind == "delete":
            self.call("DELETE", path, expect=SHARED_OK)
        else:
            dest = self.random.choice([name for name in self.soak.shared_names if name != path])
            headers = {"Destination": self.soak.target.url + quote(dest), "Overwrite": "T"}
            self.call(kind.upper(), path, expect=SHARED_OK, dest=dest, headers=headers)

    # --- the end --------------------------------------------------------------------------

    def verify_shared(self) -> None:
        """GET every shared name once more: absent, or the bytes of one write."""
        for path in self.soak.shared_names:
            response = self.call("GET", path, expect=(200, 404))
            if response.status_code == 200:
                self.soak.check_shared(path, response.content)

    def verify_all(self) -> None:
        """GET every file the model knows (absent ones must be 404)."""
        self.session.close()
        for path, states in list(self.files.items()):
            response = self.call("GET", path)
            if response.status_code == 404:
                if ABSENT not in states:
                    self.soak.record("GET", path, 404, 0, 0, False, "a file the model holds is missing")
            elif response.status_code == 200:
                self.check(path, response.content)


def listing(body: bytes) -> dict[str, int | None]:
    """Names and sizes of the members in a Depth: 1 multistatus (the folder itself left out)."""
    root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    found: dict[str, int | None] = {}
    for response in root.iterfind("{DAV:}response"):
        href = unquote(urlsplit(response.findtext("{DAV:}href") or "").path)
        if href.endswith("/"):
            continue
        length = response.findtext(".//{DAV:}getcontentlength")
        found[href.rsplit("/", 1)[1]] = int(length) if length is not None else None
    return found


def differing(expected: bytes, got: bytes) -> int:
    """How many bytes differ (positions that differ, plus the difference in length)."""
    if expected == got:
        return 0
    common = min(len(expected), len(got))
    step = 1 << 16
    diff = 0
    for start in range(0, common, step):
        a, b = expected[start : start + step], got[start : start + step]
        if a != b:
            diff += sum(x != y for x, y in zip(a, b))
    return diff + abs(len(expected) - len(got))
