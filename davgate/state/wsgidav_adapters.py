"""WsgiDAV's lock storage and property manager, backed by a :class:`StateStore`.

Wire them into the WsgiDAV config dict::

    config["lock_storage"] = StoreLockStorage(store)
    config["property_manager"] = StorePropertyManager(store)

Both speak WsgiDAV's interfaces exactly as ``LockStorageDict`` and
``PropertyManager`` do (same arguments, same dict shapes, same value types),
but keep nothing in memory. WsgiDAV's ``LockManager`` checks for conflicts
and then creates the lock under an in-process lock only; another process can
grant a conflicting lock in between. So :meth:`StoreLockStorage.create` lets
the store check again atomically and answers a conflict the way
``LockManager`` does: ``DAVError(HTTP_LOCKED)`` naming the conflicting roots.

The store belongs to whoever opened it: ``close()`` here does not close it,
because WsgiDAV calls it from ``LockManager.__del__`` while the property
manager may still be in use.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from wsgidav import util
from wsgidav.dav_error import (
    HTTP_LOCKED,
    DAVError,
    DAVErrorCondition,
    PRECONDITION_CODE_LockConflict,
)
from wsgidav.lock_man.lock_manager import generate_lock_token, normalize_lock_root, validate_lock

from davgate.state import LockConflict, LockRecord, PropertyValue, StateStore

LockDict = dict[str, Any]

_logger = util.get_module_logger("davgate.state")


class StoreLockStorage:
    """WsgiDAV lock storage (``LockStorageDict``'s interface) over a state store."""

    LOCK_TIME_OUT_DEFAULT = 604800  # 1 week, in seconds (as WsgiDAV)
    LOCK_TIME_OUT_MAX = 4 * 604800  # 4 weeks, in seconds (as WsgiDAV)

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r})"

    def open(self) -> None:
        """Called by ``LockManager`` before first use; the store is already open."""

    def close(self) -> None:
        """Called by ``LockManager`` on shutdown; the store's owner closes it."""

    def cleanup(self) -> None:
        """Purge expired locks."""
        self.store.purge_expired_locks()

    def clear(self) -> None:
        """Delete all locks."""
        self.store.clear_locks()

    def get(self, token: str) -> LockDict | None:
        """Return the lock dict for ``token``, or ``None`` if missing or expired."""
        lock = self.store.get_lock(token)
        return _to_dict(lock) if lock else None

    def create(self, path: str, lock: LockDict) -> LockDict:
        """Store a new direct lock on ``path``; return ``lock``, completed in place.

        As in WsgiDAV: ``lock['root']`` becomes the normalised ``path``,
        ``lock['timeout']`` may be shortened, ``lock['expire']`` and
        ``lock['token']`` are added. Raises ``DAVError(HTTP_LOCKED)`` if a
        conflicting lock exists (possibly granted by another process).
        """
        assert lock.get("token") is None
        assert lock.get("expire") is None, "Use timeout instead of expire"
        assert path and "/" in path
        lock["root"] = normalize_lock_root(path)
        timeout = self._clamp(lock.get("timeout"))
        lock["timeout"] = timeout
        lock["expire"] = time.time() + timeout
        validate_lock(lock)
        lock["token"] = generate_lock_token()
        try:
            self.store.create_lock(LockRecord(**{f.name: lock[f.name] for f in _FIELDS}))
        except LockConflict as error:
            _logger.debug(f"create({path!r}) refused by the state store: {error}")
            raise DAVError(HTTP_LOCKED, err_condition=_conflict_condition(error)) from error
        return lock

    def refresh(self, token: str, *, timeout: float | None) -> LockDict:
        """Give a live lock a new timeout (-1: the maximum); raise ValueError if there is none."""
        assert timeout is None or timeout == -1 or timeout > 0
        timeout = self._clamp(timeout)
        lock = self.store.refresh_lock(token, timeout=timeout, expire=time.time() + timeout)
        if lock is None:
            raise ValueError(f"no live lock with token {token!r}")
        return _to_dict(lock)

    def delete(self, token: str) -> bool:
        """Delete a lock; ``False`` if it does not exist or has expired."""
        return self.store.delete_lock(token)

    def any_live(self) -> bool:
        """Not in WsgiDAV's interface: whether any live lock exists at all (one cheap read)."""
        return self.store.any_live_lock()

    def get_lock_list(
        self, path: str, *, include_root: bool, include_children: bool, token_only: bool
    ) -> list[LockDict] | list[str]:
        """Return the live direct locks on ``path`` and/or below it (dicts or tokens)."""
        assert util.is_str(path)
        assert path and path.startswith("/")
        assert include_root or include_children
        locks = self.store.list_locks(
            normalize_lock_root(path), include_root=include_root, include_children=include_children
        )
        if token_only:
            return [lock.token for lock in locks]
        return [_to_dict(lock) for lock in locks]

    def _clamp(self, timeout: float | None) -> float:
        """WsgiDAV's rule: default if unset, the maximum if infinite or too long."""
        if timeout is None:
            return float(self.LOCK_TIME_OUT_DEFAULT)
        timeout = float(timeout)
        if timeout < 0 or timeout > self.LOCK_TIME_OUT_MAX:
            return float(self.LOCK_TIME_OUT_MAX)
        return timeout


class StorePropertyManager:
    """WsgiDAV property manager (``PropertyManager``'s interface) over a state store.

    Values are stored as given (WsgiDAV passes ``etree.tostring()`` bytes)
    and returned in the same type. ``dry_run`` writes do nothing, as in WsgiDAV.
    """

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r})"

    def get_properties(self, norm_url: str, environ: dict | None = None) -> list[str]:
        return self.store.property_names(norm_url)

    def get_property(self, norm_url: str, name: str, environ: dict | None = None) -> PropertyValue | None:
        return self.store.get_property(norm_url, name)

    def properties_of(self, norm_urls: Sequence[str]) -> dict[str, dict[str, PropertyValue]]:
        """Not in WsgiDAV's interface: the dead properties of many resources at once."""
        return self.store.properties_of(norm_urls)

    def write_property(
        self,
        norm_url: str,
        name: str,
        property_value: PropertyValue,
        dry_run: bool = False,
        environ: dict | None = None,
    ) -> None:
        assert norm_url and norm_url.startswith("/")
        assert name
        assert property_value is not None
        if not dry_run:
            self.store.set_property(norm_url, name, property_value)

    def remove_property(self, norm_url: str, name: str, dry_run: bool = False, environ: dict | None = None) -> None:
        """Remove one property; a missing one is not an error."""
        if not dry_run:
            self.store.remove_property(norm_url, name)

    def remove_properties(self, norm_url: str, environ: dict | None = None, *, with_children: bool = False) -> None:
        self.store.remove_properties(norm_url, with_children=with_children)

    def copy_properties(self, src_url: str, dest_url: str, environ: dict | None = None) -> None:
        self.store.copy_properties(src_url, dest_url)

    def move_properties(self, src_url: str, dest_url: str, with_children: bool, environ: dict | None = None) -> None:
        self.store.move_properties(src_url, dest_url, with_children=with_children)

    def _dump(self, msg: str = "") -> None:
        """Called by WsgiDAV's debug filter on ``?dump_storage``; the data is in the store."""
        _logger.info(f"{self!r}: {msg}")


_FIELDS = dataclasses.fields(LockRecord)


def _to_dict(lock: LockRecord) -> LockDict:
    return dataclasses.asdict(lock)


def _conflict_condition(error: LockConflict) -> DAVErrorCondition:
    condition = DAVErrorCondition(PRECONDITION_CODE_LockConflict)
    for root in error.conflicting_roots:
        condition.add_href(root)
    return condition
