"""WsgiDAV's lock manager, with a write check that costs one query while nothing is locked.

Before a PUT, DELETE, MOVE or PROPPATCH, WsgiDAV's ``LockManager`` looks
for conflicting locks on the target and on each of its parents, one store
query per level, and a PUT does it twice (the permission check, then the
write transaction): ten queries for ``/data/small/put/f``. Almost always no
lock exists anywhere. :class:`QuickLockManager` first asks the store whether
any live lock exists (one query, one row at most); only if there is any does
it run WsgiDAV's own check, unchanged. The answer is the same either way: with no live lock
there can be no conflict.
"""

from __future__ import annotations

from wsgidav.dav_error import DAVErrorCondition, PRECONDITION_CODE_LockConflict
from wsgidav.lock_man.lock_manager import LockManager


class QuickLockManager(LockManager):
    """``LockManager`` whose write-conflict check skips the per-level queries when no lock is live."""

    def _get_write_conflicts(self, url, depth, token_list, principal) -> DAVErrorCondition:
        if not self.any_live_lock():
            return DAVErrorCondition(PRECONDITION_CODE_LockConflict)  # no hrefs: no conflict
        return super()._get_write_conflicts(url, depth, token_list, principal)

    def any_live_lock(self) -> bool:
        """True if the store holds a lock that has not expired, anywhere (any process's)."""
        any_live = getattr(self.storage, "any_live", None)  # davgate's storage: one row at most
        if any_live is not None:
            return any_live()
        return bool(self.storage.get_lock_list("/", include_root=True, include_children=True, token_only=True))


def quick(lock_manager: LockManager | None) -> LockManager | None:
    """A :class:`QuickLockManager` over the same storage as WsgiDAV's plain ``lock_manager``."""
    if lock_manager is None or type(lock_manager) is not LockManager:
        return lock_manager  # None, or someone's own manager: left as it is
    return QuickLockManager(lock_manager.storage)
