"""State stores: where davgate keeps what every process must share.

A state store holds the records that must not live in one process's memory:
WebDAV locks and dead properties, the DISPEL cache index, its single-flight
leases and shared counters now; later the staging job queue and metadata.
Two davgate processes (or hosts, with a networked backend) that open the same store MUST
honour each other's locks and see each other's properties, so a backend
MUST NOT cache lock or property state in memory.

A backend is chosen by the short name in ``state.type`` and loaded with
:func:`open_store`; WsgiDAV reaches it through the adapters in
:mod:`davgate.state.wsgidav_adapters`. New record kinds are added as a new
section of methods here and a new table (schema version) in each backend;
existing sections do not change. The management API's records (users,
infrastructures, the query index, copy jobs, metadata) are the section
:class:`~davgate.state.api_records.ApiRecords`, which ``StateStore`` derives
from.
"""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

from davgate.state.api_records import ApiRecords, ApiUsage, ApiUser, CopyJob, IndexEntry, InfraRecord, RecordExists

__all__ = [
    "ApiRecords",
    "ApiUsage",
    "ApiUser",
    "CACHE_BYTES",
    "CacheEntry",
    "CopyJob",
    "HostKey",
    "IndexEntry",
    "InfraRecord",
    "Lease",
    "LockConflict",
    "LockRecord",
    "PropertyValue",
    "RecordExists",
    "StateStore",
    "StateStoreError",
    "open_store",
]

# Backends by short name: "module:Class", imported only when chosen.
BACKENDS = {
    "sqlite": "davgate.state.sqlite:SqliteStateStore",
    "mongo": "davgate.state.mongo:MongoStateStore",
    "postgres": "davgate.state.postgres:PostgresStateStore",
}
NOT_BUILT: set[str] = set()

#: A dead property's value: the XML WsgiDAV gave us, returned in the same type.
PropertyValue = bytes | str


@dataclass(frozen=True)
class LockRecord:
    """One WebDAV write lock, as WsgiDAV's lock manager describes it.

    ``root`` is a normalised lock root (``/a/b``, no trailing slash);
    ``expire`` is seconds since the epoch, or negative for "never";
    ``timeout`` is the lifetime granted when the lock was created or refreshed.
    """

    token: str
    root: str
    type: Literal["write"]
    scope: Literal["shared", "exclusive"]
    depth: Literal["0", "infinity"]
    owner: bytes
    principal: str
    timeout: float
    expire: float

    def is_expired(self, now: float) -> bool:
        return 0 <= self.expire < now


@dataclass(frozen=True)
class HostKey:
    """The SSH host key pinned for ``host``:``port`` the first time davgate connected.

    ``key_type`` is the key's SSH name (``ssh-ed25519``), ``key_b64`` the
    base64 of its public blob, as in a known_hosts line; ``pinned`` is seconds
    since the epoch.
    """

    host: str
    port: int
    key_type: str
    key_b64: str
    pinned: float


CACHE_BYTES = "dispel_cache_bytes"  # the counter that keeps the running total of the cache index's sizes


@dataclass(frozen=True)
class CacheEntry:
    """One cached DISPEL result, as the cache index tracks it.

    ``key`` names the blob in the cache backend; ``definition`` is the
    digest of the template file that made it; ``params`` its parameters as
    text. ``created`` and ``last_use`` are seconds since the epoch.
    """

    key: str
    template: str
    definition: str
    params: str
    size: int
    digest: str
    created: float
    hits: int = 0
    last_use: float = 0.0


@dataclass(frozen=True)
class Lease:
    """Who is making the result ``key`` now (single-flight across processes).

    ``expires`` is seconds since the epoch. A lease whose maker failed keeps
    the failure (``status``, ``reason``) until it expires, so that everyone
    waiting for it gets the same answer.
    """

    key: str
    holder: str
    expires: float
    status: int | None = None
    reason: str = ""


class StateStoreError(Exception):
    """The state store cannot be used (e.g. its schema is newer than this davgate)."""


class StoreBusy(StateStoreError):
    """Another process held the store for longer than this one may wait (``busy_timeout``); nothing was changed."""


class StoreUnavailable(StoreBusy):
    """The store's server did not answer within the store's timeout (down, unreachable, restarting).

    Answered like a busy store (503, try again), because it is one to a
    client: the next request may find the server back. A call cut off in
    the middle of a write may or may not have taken effect.
    """


class LockConflict(StateStoreError):
    """A new lock overlaps live locks it cannot share with; names their roots."""

    def __init__(self, root: str, conflicting_roots: list[str]) -> None:
        super().__init__(f"cannot lock {root}: locked at {', '.join(conflicting_roots)}")
        self.root = root
        self.conflicting_roots = conflicting_roots


class StateStore(ApiRecords, ABC):
    """The contract every state backend implements.

    Paths are WsgiDAV reference URLs (quoted, starting with ``/``). A backend
    MUST make every single method call atomic with respect to all other
    processes using the same store, and MUST treat an expired lock as absent.
    """

    # --- locks --------------------------------------------------------------

    @abstractmethod
    def create_lock(self, lock: LockRecord) -> None:
        """Store ``lock`` unless it conflicts with a live lock; else raise :class:`LockConflict`.

        Two locks conflict when their scopes overlap (same root; an ancestor
        with depth infinity; a descendant of a new depth-infinity lock) and
        they are not both shared. The check and the insert MUST be one atomic
        step, so that of two racing exclusive locks only one is granted.
        """

    @abstractmethod
    def get_lock(self, token: str) -> LockRecord | None:
        """Return the live lock with ``token``, or ``None``."""

    @abstractmethod
    def refresh_lock(self, token: str, *, timeout: float, expire: float) -> LockRecord | None:
        """Give a live lock a new ``timeout`` and ``expire``; ``None`` if there is none."""

    @abstractmethod
    def delete_lock(self, token: str) -> bool:
        """Remove a lock; ``True`` if a live lock was removed."""

    @abstractmethod
    def list_locks(self, root: str, *, include_root: bool, include_children: bool) -> list[LockRecord]:
        """Return live locks rooted at ``root`` and/or strictly below it."""

    @abstractmethod
    def any_live_lock(self) -> bool:
        """True if any live lock exists anywhere (one cheap read: the check before every write)."""

    @abstractmethod
    def purge_expired_locks(self) -> int:
        """Delete expired locks; return how many."""

    @abstractmethod
    def clear_locks(self) -> None:
        """Delete every lock."""

    # --- dead properties ------------------------------------------------------

    @abstractmethod
    def property_names(self, url: str) -> list[str]:
        """Names (Clark notation) of the dead properties of ``url``."""

    @abstractmethod
    def get_property(self, url: str, name: str) -> PropertyValue | None:
        """The value of one dead property, or ``None``."""

    @abstractmethod
    def properties_of(self, urls: Sequence[str]) -> dict[str, dict[str, PropertyValue]]:
        """The dead properties of each of ``urls`` that has any, by URL then name, in few reads.

        What a PROPFIND of a collection needs at once instead of one query per member.
        """

    @abstractmethod
    def set_property(self, url: str, name: str, value: PropertyValue) -> None:
        """Create or replace one dead property."""

    @abstractmethod
    def remove_property(self, url: str, name: str) -> None:
        """Remove one dead property; removing a missing one is not an error."""

    @abstractmethod
    def remove_properties(self, url: str, *, with_children: bool = False) -> None:
        """Remove all dead properties of ``url``; with ``with_children``, also below it."""

    @abstractmethod
    def copy_properties(self, src: str, dest: str) -> None:
        """Give ``dest`` the dead properties of ``src``, replacing its own, if ``src`` has any."""

    @abstractmethod
    def move_properties(self, src: str, dest: str, *, with_children: bool) -> None:
        """Move dead properties of ``src`` (and, if asked, of everything below it) to ``dest``.

        Each moved resource's properties replace those at its new URL. The
        move MUST be atomic.
        """

    # --- SSH host keys (trust on first use) -----------------------------------

    @abstractmethod
    def get_host_key(self, host: str, port: int) -> HostKey | None:
        """The key pinned for ``host``:``port``, or ``None``."""

    @abstractmethod
    def pin_host_key(self, host: str, port: int, key_type: str, key_b64: str) -> bool:
        """Pin a key for ``host``:``port`` unless one is pinned; ``True`` if this call pinned it.

        A pinned key is never replaced here: of two processes racing to pin
        different keys, exactly one wins and the other MUST see the winner.
        """

    @abstractmethod
    def forget_host_key(self, host: str, port: int) -> bool:
        """Remove the pin of ``host``:``port`` (an operator accepting a new key); ``True`` if one was removed."""

    # --- DISPEL: cache index, leases, counters -------------------------------

    @abstractmethod
    def cache_get(self, key: str) -> CacheEntry | None:
        """The index entry of a cached result, or ``None``."""

    @abstractmethod
    def cache_put(self, entry: CacheEntry) -> None:
        """Add or replace an index entry; the running total of sizes follows."""

    @abstractmethod
    def cache_touch(self, uses: Mapping[str, tuple[int, float]]) -> None:
        """Add ``hits`` and advance ``last_use`` of entries: ``{key: (hits, last_use)}``."""

    @abstractmethod
    def cache_remove(self, keys: Iterable[str]) -> None:
        """Remove index entries; missing ones are not an error."""

    @abstractmethod
    def cache_evict(self, max_bytes: int) -> list[CacheEntry]:
        """Remove least recently used entries until the total size is at most ``max_bytes``.

        Returns the removed entries (the caller deletes their blobs). Two
        processes evicting at once MUST NOT both return one entry.
        """

    @abstractmethod
    def cache_drop(self, template: str, keep_definition: str) -> list[CacheEntry]:
        """Remove the entries of ``template`` made by any other definition; returns them."""

    @abstractmethod
    def cache_entries(self) -> list[CacheEntry]:
        """Every index entry, least recently used first."""

    @abstractmethod
    def acquire_lease(self, key: str, holder: str, expires: float) -> Lease:
        """Take the lease of ``key`` for ``holder`` unless someone else holds a live one.

        Returns the live lease after the call: ``holder``'s own if it was
        free (or expired, or already ``holder``'s), else the other holder's.
        """

    @abstractmethod
    def release_lease(
        self, key: str, holder: str, *, status: int | None = None, reason: str = "", keep: float = 0.0
    ) -> None:
        """End ``holder``'s lease; with a ``status``, keep the failure visible for ``keep`` seconds."""

    @abstractmethod
    def add_counter(self, name: str, amount: int = 1) -> None:
        """Add to a counter shared by every process on this store."""

    @abstractmethod
    def counter(self, name: str) -> int:
        """A counter's value (0 if it was never added to)."""

    @abstractmethod
    def counters(self, prefix: str) -> dict[str, int]:
        """Every counter whose name starts with ``prefix``: ``{name: value}`` (e.g. per-template DISPEL counts)."""

    # --- content digests (RFC 3230), by path and ETag ----------------------------

    @abstractmethod
    def get_digests(self, path: str, etag: str) -> dict[str, str]:
        """The digests known for version ``etag`` of ``path``: ``{algorithm: value}`` (may be empty)."""

    @abstractmethod
    def put_digests(self, path: str, etag: str, digests: Mapping[str, str]) -> None:
        """Add or replace digests of version ``etag`` of ``path``; those of its other versions are dropped."""

    # --- lifetime -------------------------------------------------------------

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store is not used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def redact_url(url: str) -> str:
    """A store's ``url`` without its password, for messages and logs."""
    return re.sub(r"(//[^:/@]*):[^@/]*@", r"\1:***@", url)


def open_store(kind: str, **options: Any) -> StateStore:
    """Open the state backend named ``kind`` (``state.type``) with its options."""
    if kind in NOT_BUILT:
        raise ValueError(f"state.type: {kind!r} is not built yet")
    try:
        target = BACKENDS[kind]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"state.type: unknown state store {kind!r} (known: {known})") from None
    module_name, class_name = target.split(":")
    backend = getattr(importlib.import_module(module_name), class_name)
    return backend(**options)
