"""Staging: copy jobs between any two adaptors, in a durable queue, with webhooks.

``POST /api/v1/copy`` takes the seed's list::

    [{"id": "copy-001", "from": "pro.cyfronet.pl:/UC1/ucdemo-0.1.simg",
      "to": "lisa.surfsara.nl:/UC1/ucdemo-0.1.simg", "webhook": "http://..."}]

An adaptor is named alone when the caller has one adaptor of that name, or
as ``<infrastructure>/<adaptor>:<path>``. ``id`` is optional (one is made)
and unique per user; ``webhook`` is optional. All jobs of a request are
queued, or none.

A job is bound to the infrastructures it names when it is queued (their
ids go into its route): if one of them is removed, or removed and its
name taken again, the job fails instead of touching the new one's storage.
Jobs queued before ids existed carry none and find theirs by name.

Jobs are records in the state store. In every davgate process a scheduler
thread claims queued jobs for at most ``api.copy_workers`` copy threads
(a lease per job: two processes never run one job, and the job of a process
that died is taken up again when its lease runs out; a process that stops
puts its jobs back at once). A copy that meets an unavailable adaptor is
retried later, up to ``api.copy_attempts`` starts. The scheduler also
delivers webhooks (:mod:`davgate.api.webhooks`) and forgets finished jobs
after ``api.job_retention`` seconds.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from davgate import errors
from davgate.api import webhooks
from davgate.api.checks import TEXT, fields
from davgate.api.copier import Copier, LeaseLost, Place, Stopped
from davgate.api.errors import BadRequest, Conflict
from davgate.api.infrastructures import stored_adaptors
from davgate.api.query import Index
from davgate.api.spaces import LiveSpaces
from davgate.api.tokens import Caller
from davgate.config.schema import ApiConfig
from davgate.hardening.outbound import OutboundRefused, OutboundRule
from davgate.namespace import Namespace
from davgate.state import CopyJob, InfraRecord, RecordExists, StateStore

__all__ = ["Stager", "parse_jobs", "show"]

log = logging.getLogger("davgate.api.staging")

JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")  # matched whole (fullmatch)
WEBHOOK = re.compile(r"https?://[^/\s?#]+")
MAX_JOBS = 1000
HOOK_THREADS = 2
PURGE_SECONDS = 3600.0
RETRY_SECONDS = 5.0


def parse_jobs(
    body: Any,
    caller: Caller,
    infrastructures: list[InfraRecord],
    webhook_allow: Sequence[str],
    outbound: OutboundRule,
) -> list[CopyJob]:
    """The jobs of a ``POST /api/v1/copy`` body, resolved against the caller's infrastructures."""
    items = body if isinstance(body, list) else [body]
    if not items or len(items) > MAX_JOBS:
        raise BadRequest(f"expected 1 to {MAX_JOBS} jobs", "invalid_value")
    adaptors = {(record.name, a.name) for record in infrastructures for a in stored_adaptors(record)}
    ids = {r.name: r.id for r in infrastructures}
    jobs, now = [], time.time()
    for i, item in enumerate(items):
        where = f"[{i}]"
        job = fields(item, where, {"from": TEXT, "to": TEXT}, {"id": TEXT, "webhook": TEXT})
        job_id = job.get("id") or f"copy-{uuid.uuid4().hex}"
        if not JOB_ID.fullmatch(job_id):
            raise BadRequest(f"{where}.id: expected 1-128 letters, digits, '.', '_', ':', '@' or '-'", "invalid_value")
        webhook = job.get("webhook", "")
        if webhook:
            check_webhook(webhook, f"{where}.webhook", webhook_allow, outbound)
        source, target = resolve(job["from"], f"{where}.from", adaptors), resolve(job["to"], f"{where}.to", adaptors)
        route = {"from": source, "to": target, "ids": [ids[source[0]], ids[target[0]]]}
        jobs.append(
            CopyJob(caller.name, job_id, job["from"], job["to"], json.dumps(route), webhook, created=now, updated=now)
        )
    if len({job.id for job in jobs}) < len(jobs):
        raise BadRequest("two jobs have the same id", "invalid_value")
    return jobs


def check_webhook(url: str, where: str, webhook_allow: Sequence[str], outbound: OutboundRule) -> None:
    """A webhook URL davgate may POST to: http(s), below ``api.webhook_allow``, where the outbound rule allows."""
    if not WEBHOOK.match(url) or not url.isprintable():
        raise BadRequest(f"{where}: expected an http(s) URL", "invalid_value")
    if not webhooks.allowed(url, webhook_allow):
        problem = (
            "this server sends webhooks only below api.webhook_allow"
            if webhook_allow
            else "expected an http(s) URL with a host and a path without '.' or '..' segments"
        )
        raise BadRequest(f"{where}: {problem}", "invalid_value")
    try:
        outbound.check(webhooks.KIND, *webhooks.address_of(url))
    except OutboundRefused as refused:
        raise BadRequest(f"{where}: {refused.reason}", "outbound_refused") from None
    except OSError:
        raise BadRequest(f"{where}: the host cannot be resolved", "invalid_value") from None


def resolve(text: str, where: str, adaptors: set[tuple[str, str]]) -> list[str]:
    """``[infrastructure, adaptor, path]`` of ``<adaptor>:<path>`` or ``<infrastructure>/<adaptor>:<path>``."""
    ref, colon, path = text.partition(":")
    if not colon or not path.startswith("/"):
        raise BadRequest(f"{where}: expected <adaptor>:/<path>", "invalid_value")
    segments = [s for s in path.split("/") if s]
    if any(s in (".", "..") or not s.isprintable() or "\\" in s for s in segments):
        raise BadRequest(f"{where}: the path has a forbidden segment", "invalid_value")
    infra, slash, name = ref.rpartition("/")
    found = [pair for pair in adaptors if pair[1] == name and (not slash or pair[0] == infra)]
    if not found:
        raise BadRequest(f"{where}: no adaptor {ref!r} in your infrastructures", "unknown_adaptor")
    if len(found) > 1:
        raise BadRequest(
            f"{where}: several infrastructures have an adaptor {name!r}; write <infrastructure>/{name}:<path>",
            "ambiguous_adaptor",
        )
    return [found[0][0], found[0][1], "/".join(segments) + ("/" if path.endswith("/") and segments else "")]


def queue(store: StateStore, jobs: list[CopyJob]) -> None:
    try:
        store.job_add(jobs)
    except RecordExists as error:
        raise Conflict(f"job ids in use: {', '.join(error.keys[:10])}", "exists") from None


def show(job: CopyJob) -> dict[str, Any]:
    """A job as ``GET /api/v1/copy/<id>`` shows it."""
    return {
        "id": job.id, "state": job.state, "from": job.source, "to": job.target,
        "bytes": job.bytes_done, "total": job.bytes_total if job.bytes_total >= 0 else None,
        "error": job.error or None, "checksum": job.checksum or None, "attempts": job.attempts,
        "created": job.created, "updated": job.updated,
        "webhook": {"url": job.webhook, "state": job.hook_state or "waiting", "attempts": job.hook_attempts} if job.webhook else None,
    }  # fmt: skip


class Stager:
    """This process's share of the staging work: copies, webhooks, cleaning up."""

    def __init__(
        self,
        store: StateStore,
        namespace: Namespace,
        spaces: LiveSpaces,
        index: Index,
        options: ApiConfig,
        outbound: OutboundRule,
    ) -> None:
        self.store, self.namespace, self.spaces, self.index, self.options = store, namespace, spaces, index, options
        self.outbound = outbound
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.copies = ThreadPoolExecutor(options.copy_workers, "davgate-api-copy")
        self.hooks = ThreadPoolExecutor(HOOK_THREADS, "davgate-api-webhook")
        self.busy = {"copy": 0, "hook": 0}
        self.lock = threading.Lock()
        self.wake, self.stopping = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self.run, name="davgate-api-staging", daemon=True)
        self.purged = 0.0

    def start(self) -> None:
        self.thread.start()

    def poke(self) -> None:
        """Look at the queue now (a job was queued, or one ended)."""
        self.wake.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.wake.clear()
            try:
                self.tick(time.time())
            except Exception:  # noqa: BLE001 -- the store may be down for a moment
                log.exception("staging scheduler failed; trying again")
            self.wake.wait(self.options.poll_interval)

    def tick(self, now: float) -> None:
        while self.take("copy", self.options.copy_workers):
            job = self.store.job_claim(self.holder, now, now + self.options.copy_lease)
            if job is None:
                self.done("copy")
                break
            self.copies.submit(self.guarded, "copy", self.run_copy, job)
        while self.take("hook", HOOK_THREADS):
            job = self.store.webhook_claim(self.holder, now, now + 2 * self.options.webhook_timeout + 5)
            if job is None:
                self.done("hook")
                break
            self.hooks.submit(self.guarded, "hook", self.run_webhook, job)
        if now - self.purged > PURGE_SECONDS:
            self.purged = now
            self.store.job_purge(now - self.options.job_retention)

    def take(self, kind: str, limit: int) -> bool:
        with self.lock:
            if self.stopping.is_set() or self.busy[kind] >= limit:
                return False
            self.busy[kind] += 1
            return True

    def done(self, kind: str) -> None:
        with self.lock:
            self.busy[kind] -= 1

    def guarded(self, kind: str, work: Any, job: CopyJob) -> None:
        try:
            work(job)
        except Exception:  # noqa: BLE001 -- the lease brings the job back
            log.exception("staging job %s of %s failed unexpectedly", job.id, job.owner)
        finally:
            self.done(kind)
            self.poke()

    # -- copies --------------------------------------------------------------------

    def run_copy(self, job: CopyJob) -> None:
        if job.attempts > self.options.copy_attempts:
            return self.finish(job, "failed", f"gave up after {job.attempts - 1} starts")
        route = json.loads(job.route)
        log.info("copy %s of %s: %s -> %s (start %d)", job.id, job.owner, job.source, job.target, job.attempts)
        try:
            ids = route.get("ids") or [None, None]  # none: queued before jobs were bound to ids
            source, target = self.place(route["from"], ids[0]), self.place(route["to"], ids[1])
            rel, checksum = self.copier(job).copy(source, target)
        except Stopped:  # this process is stopping: another takes the job at once; this start does not count
            self.store.job_release(job.owner, job.id, self.holder, uncount=True)
            return None
        except LeaseLost:
            log.warning("copy %s of %s: another process took it over", job.id, job.owner)
            return None
        except errors.Unavailable as error:
            return self.retry(job, f"{error.detail}: {error.path}")
        except errors.StorageError as error:
            return self.finish(job, "failed", f"{error.detail}: {error.path}")
        self.finish(job, "done", "", checksum)
        self.index.changed(f"/{route['to'][0]}/{route['to'][1]}/{rel}")
        return None

    def copier(self, job: CopyJob) -> Copier:
        def report(done: int, total: int) -> bool:
            lease = time.time() + self.options.copy_lease
            return self.store.job_progress(job.owner, job.id, self.holder, done, total, lease)

        return Copier(report, self.stopping, self.options.copy_rate_limit)

    def place(self, ref: list[str], bound: str | None) -> Place:
        """Where ``ref`` is now, in the infrastructure of id ``bound`` (if given) and no other."""
        infrastructure, adaptor, path = ref
        self.namespace.refresh(wait=True)  # made, removed or replaced by another process a moment ago?
        space = self.spaces.get(infrastructure)
        if space is not None and bound is not None and space.record.id != bound:
            raise errors.NotFound(
                f"{adaptor}:/{path}", f"infrastructure {infrastructure} was removed after the job was queued"
            )
        mount = space.adaptor(adaptor) if space is not None else None
        if mount is None:
            raise errors.NotFound(f"{adaptor}:/{path}", f"adaptor {adaptor} of {infrastructure} is not served")
        return Place(mount, path)

    def retry(self, job: CopyJob, reason: str) -> None:
        if job.attempts >= self.options.copy_attempts:
            return self.finish(job, "failed", reason)
        log.warning("copy %s of %s: %s; trying again later", job.id, job.owner, reason)
        self.store.job_release(job.owner, job.id, self.holder, time.time() + RETRY_SECONDS * job.attempts)
        return None

    def finish(self, job: CopyJob, state: str, error: str, checksum: str = "") -> None:
        log.info("copy %s of %s: %s%s", job.id, job.owner, state, f" ({error})" if error else "")
        self.store.job_finish(
            job.owner, job.id, self.holder, state=state, error=error, checksum=checksum, now=time.time()
        )

    # -- webhooks --------------------------------------------------------------------

    def run_webhook(self, job: CopyJob) -> None:
        if not webhooks.allowed(job.webhook, self.options.webhook_allow):  # queued before the list changed
            log.warning("webhook of copy %s of %s: not sent, its URL is no longer allowed", job.id, job.owner)
            self.store.webhook_result(job.owner, job.id, self.holder, delivered=False, retry_at=None)
            return
        opener = self.outbound.opener(webhooks.KIND)
        delivered = webhooks.deliver(job.webhook, webhooks.payload(job), self.options.webhook_timeout, opener)
        now = time.time()
        again = (
            None
            if delivered
            else webhooks.retry_at(job.hook_attempts, self.options.webhook_attempts, self.options.webhook_backoff, now)
        )
        self.store.webhook_result(job.owner, job.id, self.holder, delivered=delivered, retry_at=again)

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        self.copies.shutdown(wait=True)
        self.hooks.shutdown(wait=True)
