"""WsgiDAV's lock manager, with a write check that costs one query while nothing is locked.

Before a PUT, DELETE, MOVE or PROPPATCH, WsgiDAV's ``LockManager`` looks
for conflicting locks on the target and on each of its parents, one store
query per level, and a PUT does it twice (the permission check, then the
write transaction): ten queries for ``/data/small/put/f``. Almost always no
lock exists anywhere. :class:`QuickLockManager` first asks the store whether
any live lock exists (one query, one row at most); only if there is any does
it run WsgiDAV's own check, unchanged. The answer is the same either way: with no live lock
there can be no conflict.

A lock can outlive what it locks: a LOCK that creates its file races a
DELETE that removes the file before the lock is stored. Such a lock would
refuse (423) whoever makes the name next, until it expires. So a conflict
is looked at once more: locks whose root names nothing any more are
released, and the check is made again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from wsgidav.dav_error import DAVError, DAVErrorCondition, PRECONDITION_CODE_LockConflict
from wsgidav.lock_man.lock_manager import LockManager

from davgate import errors


class QuickLockManager(LockManager):
    """``LockManager`` whose write-conflict check skips the per-level queries when no lock is live."""

    exists: Callable[[str], bool] | None = None  # whether a lock's root names something (see :func:`quick`)

    def _get_write_conflicts(self, url, depth, token_list, principal) -> DAVErrorCondition:
        if not self.any_live_lock():
            return DAVErrorCondition(PRECONDITION_CODE_LockConflict)  # no hrefs: no conflict
        conflicts = super()._get_write_conflicts(url, depth, token_list, principal)
        if conflicts.hrefs and self.release_orphans(conflicts.hrefs):
            return super()._get_write_conflicts(url, depth, token_list, principal)
        return conflicts

    def _check_lock_permission(self, url, lock_type, lock_scope, lock_depth, token_list, principal) -> None:
        try:
            super()._check_lock_permission(url, lock_type, lock_scope, lock_depth, token_list, principal)
        except DAVError as error:
            if error.err_condition is None or not self.release_orphans(error.err_condition.hrefs):
                raise
            super()._check_lock_permission(url, lock_type, lock_scope, lock_depth, token_list, principal)

    def release_orphans(self, roots: Iterable[str]) -> bool:
        """Release the locks of ``roots`` that name nothing any more; True if there were any."""
        if self.exists is None:
            return False
        released = False
        for root in set(roots):
            if self.exists(root):
                continue
            for token in self.storage.get_lock_list(root, include_root=True, include_children=False, token_only=True):
                released = self.storage.delete(token) or released
        return released

    def any_live_lock(self) -> bool:
        """True if the store holds a lock that has not expired, anywhere (any process's)."""
        any_live = getattr(self.storage, "any_live", None)  # davgate's storage: one row at most
        if any_live is not None:
            return any_live()
        return bool(self.storage.get_lock_list("/", include_root=True, include_children=True, token_only=True))


def quick(lock_manager: LockManager | None, provider: Any = None) -> LockManager | None:
    """A :class:`QuickLockManager` over the same storage as WsgiDAV's plain ``lock_manager``.

    With the ``provider`` (the namespace), it releases locks that outlived what they lock.
    """
    if lock_manager is None or type(lock_manager) is not LockManager:
        return lock_manager  # None, or someone's own manager: left as it is
    manager = QuickLockManager(lock_manager.storage)
    if provider is not None:
        manager.exists = lambda root: names_something(provider, root)
    return manager


def names_something(provider: Any, root: str) -> bool:
    """Whether the lock root ``root`` (a quoted ref URL) names a file or folder; True when storage cannot tell."""
    path = unquote(root)[len(provider.share_path) :].rstrip("/") or "/"
    found = provider.locate(path)
    if found is None:
        return provider.virtual_members(path) is not None
    mount, rel = found
    try:
        return mount.stat(rel) is not None
    except errors.StorageError:
        return True
