"""State stores: where davgate keeps what every process must share.

A state store holds the records that must not live in one process's memory:
WebDAV locks and dead properties now; later the DISPEL cache index and its
single-flight leases, the staging job queue and metadata. Two davgate
processes (or hosts, with a networked backend) that open the same store MUST
honour each other's locks and see each other's properties, so a backend
MUST NOT cache lock or property state in memory.

A backend is chosen by the short name in ``state.type`` and loaded with
:func:`open_store`; WsgiDAV reaches it through the adapters in
:mod:`davgate.state.wsgidav_adapters`. New record kinds are added as a new
section of methods here and a new table (schema version) in each backend;
existing sections do not change.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal, Self

__all__ = [
    "LockConflict",
    "LockRecord",
    "PropertyValue",
    "StateStore",
    "StateStoreError",
    "open_store",
]

# Backends by short name: "module:Class", imported only when chosen.
BACKENDS = {"sqlite": "davgate.state.sqlite:SqliteStateStore"}
NOT_BUILT = {"mongo"}

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


class StateStoreError(Exception):
    """The state store cannot be used (e.g. its schema is newer than this davgate)."""


class LockConflict(StateStoreError):
    """A new lock overlaps live locks it cannot share with; names their roots."""

    def __init__(self, root: str, conflicting_roots: list[str]) -> None:
        super().__init__(f"cannot lock {root}: locked at {', '.join(conflicting_roots)}")
        self.root = root
        self.conflicting_roots = conflicting_roots


class StateStore(ABC):
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
    def list_locks(
        self, root: str, *, include_root: bool, include_children: bool
    ) -> list[LockRecord]:
        """Return live locks rooted at ``root`` and/or strictly below it."""

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

    # --- lifetime -------------------------------------------------------------

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store is not used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


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
