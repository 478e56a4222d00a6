"""The management API's records: users, infrastructures, the query index, copy jobs, metadata.

:class:`ApiRecords` is a section of the :class:`~davgate.state.StateStore`
contract (``StateStore`` derives from it), kept in its own module because it
is long. Every method here is abstract: a backend implements all of them,
and ``tests/state/test_api_records.py`` holds the contract tests a backend's
test class inherits. As for the rest of the store, each call MUST be atomic
with respect to every other process using the same store, and a backend
MUST NOT cache these records in memory: what one process writes, the next
call in any other process sees.

Times are seconds since the epoch. Owners are API user names (e-mail
addresses) or ``"admin"``. Paths in the index are absolute within their
adaptor (``/UC1/data.bin``; the adaptor's root is ``/``).
"""

from __future__ import annotations

import json
import posixpath
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ApiRecords", "ApiUsage", "ApiUser", "CopyJob", "IndexEntry", "InfraRecord", "RecordExists", "document_text"]

#: The states of a copy job; ``done`` and ``failed`` are final.
JOB_STATES = ("queued", "running", "done", "failed")
#: The states of a job's webhook: none to send, waiting to be sent, sent, given up.
HOOK_STATES = ("", "pending", "delivered", "failed")


def document_text(document: Mapping[str, Any]) -> str:
    """A metadata document as the stores keep it (and as its size counts towards a quota)."""
    return json.dumps(document, separators=(",", ":"), allow_nan=False)


class RecordExists(Exception):
    """A record with that key exists already; ``keys`` names them."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(f"already exists: {', '.join(keys)}")
        self.keys = keys


@dataclass(frozen=True)
class ApiUser:
    """A user registered through ``PUT /api/v1/user``."""

    email: str
    name: str
    created: float


@dataclass(frozen=True)
class InfraRecord:
    """One micro-infrastructure: ``spec`` is its description as JSON text.

    The store keeps ``spec`` opaque; it never holds a plain password (see
    :mod:`davgate.api.infrastructures`). ``id`` is its identity, made once
    at creation and never reused: what belongs to the infrastructure (its
    volumes, its query index, the copy jobs that name it) belongs to the
    id, not to the name, which another user may take once it is free. A
    record stored before records had ids gets its name as id when a store
    reads it (stable, and :attr:`legacy` tells it apart).
    """

    name: str
    owner: str
    spec: str
    created: float
    id: str = ""

    @property
    def legacy(self) -> bool:
        """Whether the record was stored before ids existed (its files sit where names led)."""
        return self.id == self.name


@dataclass(frozen=True)
class ApiUsage:
    """What one API user holds, for the quotas of :mod:`davgate.api.quotas`.

    ``jobs_waiting`` counts copy jobs ``queued`` or ``running``;
    ``metadata_bytes`` is the length of the stored JSON text of every document.
    """

    infrastructures: int
    metadata_entries: int
    metadata_bytes: int
    jobs_waiting: int


@dataclass(frozen=True)
class IndexEntry:
    """A file or folder the query index knows, in adaptor ``adaptor`` of namespace ``namespace``.

    ``checked`` is for folders: when their listing was last read (0: never).
    """

    namespace: str
    adaptor: str
    path: str
    is_folder: bool
    size: int = 0
    modified: float = 0.0
    checked: float = 0.0

    @property
    def parent(self) -> str:
        """The folder holding this entry; ``""`` for an adaptor's root."""
        return "" if self.path == "/" else posixpath.dirname(self.path)

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)


@dataclass(frozen=True)
class CopyJob:
    """A staging copy, from its submission to its webhook.

    ``source`` and ``target`` are the ``from`` and ``to`` the client sent;
    ``route`` is where they resolved to (JSON text, opaque to the store).
    ``holder`` and ``lease`` say which process runs the copy (or delivers
    the webhook) and until when; a lease that ran out is anybody's.
    """

    owner: str
    id: str
    source: str
    target: str
    route: str
    webhook: str = ""
    state: str = "queued"
    bytes_done: int = 0
    bytes_total: int = -1  # -1: not known yet
    error: str = ""
    checksum: str = ""
    created: float = 0.0
    updated: float = 0.0
    holder: str = ""
    lease: float = 0.0
    attempts: int = 0  # times the copy was started
    hook_state: str = ""
    hook_attempts: int = 0
    hook_next: float = 0.0  # when the webhook may be tried (again)


class ApiRecords(ABC):
    """The management API's section of the state store contract."""

    # --- API users ------------------------------------------------------------

    @abstractmethod
    def api_user_put(self, email: str, name: str) -> bool:
        """Register ``email`` with ``name``, or rename a registered user; ``True`` if new."""

    @abstractmethod
    def api_user_get(self, email: str) -> ApiUser | None:
        """The registered user ``email``, or ``None``."""

    @abstractmethod
    def api_user_delete(self, email: str) -> bool:
        """Forget a user (their tokens stop working); ``True`` if one was removed."""

    @abstractmethod
    def api_users(self) -> list[ApiUser]:
        """Every registered user, by e-mail address."""

    @abstractmethod
    def api_usage(self, owner: str) -> ApiUsage:
        """How many infrastructures, metadata entries and bytes, and waiting jobs ``owner`` has."""

    # --- micro-infrastructures -------------------------------------------------

    @abstractmethod
    def infra_create(self, record: InfraRecord) -> bool:
        """Store ``record`` (with its ``id``) unless its name is taken; ``True`` if stored.

        A successful create MUST change :meth:`infra_generation` no earlier
        than the record can be read: a process that sees the new generation
        sees the record.
        """

    @abstractmethod
    def infra_get(self, name: str) -> InfraRecord | None:
        """The infrastructure ``name``, or ``None``."""

    @abstractmethod
    def infra_list(self, owner: str | None = None) -> list[InfraRecord]:
        """Every infrastructure (of ``owner`` only, if given), by name."""

    @abstractmethod
    def infra_delete(self, name: str, record_id: str | None = None) -> bool:
        """Remove an infrastructure (only if its id is ``record_id``, when given); ``True`` if it did.

        Changes the generation like a create, once the record is gone.
        """

    @abstractmethod
    def infra_generation(self) -> int:
        """A number that changes whenever infrastructures are created or deleted.

        Processes poll it (about once a second) to know when to rebuild
        their mount table: it MUST be one cheap read.
        """

    # --- the query index ---------------------------------------------------------

    @abstractmethod
    def index_put(self, entries: Iterable[IndexEntry]) -> None:
        """Add or update entries. An existing folder keeps its ``checked`` unless it was a file."""

    @abstractmethod
    def index_remove(self, namespace: str, adaptor: str, path: str) -> None:
        """Remove ``path`` and everything below it; missing entries are not an error."""

    @abstractmethod
    def index_sync_folder(
        self, namespace: str, adaptor: str, folder: str, members: Iterable[IndexEntry], checked: float
    ) -> None:
        """Make the indexed members of ``folder`` exactly ``members``, atomically.

        Members no longer there are removed with everything below them (as
        are members that changed between file and folder); the others are
        added or updated as by :meth:`index_put`. ``folder`` itself is
        stored as a folder, with ``checked``.
        """

    @abstractmethod
    def index_stale_folders(self, namespace: str, adaptor: str, before: float, limit: int) -> list[str]:
        """Up to ``limit`` folder paths whose ``checked`` is before ``before``, least recent first."""

    @abstractmethod
    def index_files(self, namespace: str, name: str | None = None) -> list[IndexEntry]:
        """The files (not folders) of a namespace, or only those whose base name is ``name``.

        Ordered by base name, adaptor, then path.
        """

    @abstractmethod
    def index_drop(self, namespace: str, adaptor: str | None = None) -> None:
        """Forget every entry of a namespace (or of one adaptor of it)."""

    # --- copy jobs ----------------------------------------------------------------

    @abstractmethod
    def job_add(self, jobs: Iterable[CopyJob]) -> None:
        """Queue all of ``jobs`` or none: raise :class:`RecordExists` naming the (owner's) ids taken."""

    @abstractmethod
    def job_get(self, owner: str, job_id: str) -> CopyJob | None:
        """One job of ``owner``, or ``None``."""

    @abstractmethod
    def job_list(self, owner: str) -> list[CopyJob]:
        """The jobs of ``owner``, oldest first."""

    @abstractmethod
    def job_claim(self, holder: str, now: float, lease: float) -> CopyJob | None:
        """Take the oldest job that is ``queued`` (with a ``lease`` not after ``now``: a retry waits
        for it), or ``running`` with a lease before ``now`` (its process died).

        The job becomes ``running`` for ``holder`` until ``lease``, with
        ``bytes_done`` 0 and ``attempts`` one more; that job is returned. Of
        two processes claiming at once, each MUST get a different job.
        """

    @abstractmethod
    def job_progress(self, owner: str, job_id: str, holder: str, done: int, total: int, lease: float) -> bool:
        """Record progress and extend the lease; ``False`` if ``holder`` no longer runs the job."""

    @abstractmethod
    def job_release(
        self, owner: str, job_id: str, holder: str, retry_at: float = 0.0, *, uncount: bool = False
    ) -> bool:
        """Put a job ``holder`` runs back in the queue, to be claimed from ``retry_at`` on; ``True`` if it did.

        For a retry after an outage (later) and for a process that stops
        (at once, and with ``uncount`` the start does not count: ``attempts``
        goes down by one). ``lease`` becomes ``retry_at``.
        """

    @abstractmethod
    def job_finish(
        self, owner: str, job_id: str, holder: str, *, state: str, error: str, checksum: str, now: float
    ) -> bool:
        """End a job ``holder`` runs as ``done`` or ``failed``; ``False`` if ``holder`` no longer runs it.

        A job with a webhook gets ``hook_state`` ``pending`` and ``hook_next`` ``now``.
        """

    @abstractmethod
    def webhook_claim(self, holder: str, now: float, lease: float) -> CopyJob | None:
        """Take the webhook of a job whose ``hook_state`` is ``pending`` and ``hook_next`` is not after ``now``.

        ``hook_next`` becomes ``lease`` (a holder that dies is retried then)
        and ``holder`` the holder; that job is returned. Two processes never
        get the same webhook.
        """

    @abstractmethod
    def webhook_result(self, owner: str, job_id: str, holder: str, *, delivered: bool, retry_at: float | None) -> None:
        """After an attempt: delivered; or not, tried again at ``retry_at``; or (``None``) given up.

        ``hook_attempts`` goes up by one; nothing changes unless ``holder`` holds the webhook.
        """

    @abstractmethod
    def job_purge(self, before: float) -> int:
        """Remove final jobs last updated before ``before`` whose webhook is not pending; how many."""

    # --- metadata (DataNet) ------------------------------------------------------------

    @abstractmethod
    def metadata_put(self, owner: str, collection: str, entry_id: str, document: Mapping[str, Any]) -> bool:
        """Create or replace a document (JSON types only); ``True`` if it was created."""

    @abstractmethod
    def metadata_get(self, owner: str, collection: str, entry_id: str) -> dict[str, Any] | None:
        """A document as it was put, or ``None``."""

    @abstractmethod
    def metadata_delete(self, owner: str, collection: str, entry_id: str) -> bool:
        """Remove a document; ``True`` if it existed."""

    @abstractmethod
    def metadata_scan(self, owner: str, collection: str) -> list[tuple[str, dict[str, Any]]]:
        """Every ``(id, document)`` of a collection, by id.

        Filtering is the caller's (:mod:`davgate.api.metadata`), so every
        backend answers a filter alike.
        """
