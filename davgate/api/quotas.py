"""Per-user quotas of the API: infrastructures, metadata, waiting copy jobs, native-volume bytes.

Each is ``api.quota_<name>`` (0: no limit); the administrator's token and
what it owns are not limited. A call over a quota is refused with 507
Insufficient Storage, whose one-line reason names the quota and the
setting, and changes nothing. 507 rather than 400 or 403: the request is
well formed and allowed, the user's space is full, and the same request
succeeds once they free some (as WebDAV servers answer a PUT over quota).
Every refusal is counted in the state store's shared counters, so
``/metrics`` shows totals over all processes
(``davgate_api_quota_refusals_total{quota}``).

A check reads the user's usage, then the call writes: two calls racing
from one user may both pass and overshoot a quota by one call's worth.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from davgate import errors
from davgate.api.errors import QuotaExceeded
from davgate.api.spec import readable
from davgate.api.tokens import ADMIN
from davgate.config.schema import QUOTAS, ApiConfig
from davgate.state import StateStore
from davgate.state.api_records import document_text

if TYPE_CHECKING:
    from davgate.api.spaces import Folders

__all__ = ["COUNTER_PREFIX", "Quotas", "folder_bytes", "refusals"]

log = logging.getLogger("davgate.api")

COUNTER_PREFIX = "api-quota-refused/"


class Quotas:
    """The checks the API's calls make before they store something for a user."""

    def __init__(self, store: StateStore, options: ApiConfig, folders: Folders) -> None:
        self.store, self.options, self.folders = store, options, folders

    def limit(self, quota: str, owner: str) -> int:
        """The limit of ``quota`` for ``owner``; 0 for none."""
        return 0 if owner in (ADMIN, "") else int(getattr(self.options, f"quota_{quota}"))

    def refuse(self, quota: str, detail: str) -> QuotaExceeded:
        """Count a refusal and make its error (``detail`` says what the caller has)."""
        count_refusal(self.store, quota)
        return QuotaExceeded(self.reason(quota, detail))

    def reason(self, quota: str, detail: str) -> str:
        return f"{detail}: quota api.quota_{quota} is {getattr(self.options, f'quota_{quota}')}"

    def infrastructure(self, owner: str) -> None:
        limit = self.limit("infrastructures", owner)
        if limit and self.store.api_usage(owner).infrastructures >= limit:
            raise self.refuse("infrastructures", "you have all the infrastructures you may")

    def jobs(self, owner: str, adding: int) -> None:
        limit = self.limit("queued_jobs", owner)
        if limit and self.store.api_usage(owner).jobs_waiting + adding > limit:
            raise self.refuse("queued_jobs", f"{adding} more copy jobs would be more than you may have waiting")

    def metadata(self, owner: str, collection: str, entry_id: str, document: Mapping[str, Any]) -> None:
        entries, max_bytes = self.limit("metadata_entries", owner), self.limit("metadata_bytes", owner)
        if not (entries or max_bytes):
            return
        usage = self.store.api_usage(owner)
        old = self.store.metadata_get(owner, collection, entry_id)
        if entries and old is None and usage.metadata_entries >= entries:
            raise self.refuse("metadata_entries", "you have all the metadata entries you may")
        grown = len(document_text(document).encode()) - (0 if old is None else len(document_text(old).encode()))
        if max_bytes and grown > 0 and usage.metadata_bytes + grown > max_bytes:
            raise self.refuse("metadata_bytes", "this entry would take your metadata past its size")

    def volume_room(self, owner: str) -> int | None:
        """Bytes ``owner`` may still write to their native volumes; ``None``: no limit."""
        limit = self.limit("volume_bytes", owner)
        if not limit:
            return None
        used = 0
        for record in self.store.infra_list(owner):
            spec = readable(record.spec)  # a record stored broken has no volumes to count
            for adaptor in spec.adaptors if spec is not None else ():
                if adaptor.type == "native":
                    used += folder_bytes(self.folders.volume(record, adaptor.name))
        return limit - used

    def volume_full(self, rel: str) -> errors.NoSpace:
        """The refusal of a write past ``api.quota_volume_bytes`` (507 through WebDAV), counted."""
        count_refusal(self.store, "volume_bytes")
        return errors.NoSpace(rel, self.reason("volume_bytes", "the owner's native volumes are full"))


def count_refusal(store: StateStore, quota: str) -> None:
    try:
        store.add_counter(COUNTER_PREFIX + quota)
    except Exception:  # noqa: BLE001 -- a metric must not turn a 507 into a 500
        log.exception("counting a quota refusal failed")


def refusals(store: StateStore) -> dict[str, int]:
    """Refusals by quota, over every process (each quota present, 0 if none), for ``/metrics``."""
    counted = store.counters(COUNTER_PREFIX)
    return {quota: counted.get(COUNTER_PREFIX + quota, 0) for quota in QUOTAS}


def folder_bytes(root: os.PathLike[str] | str) -> int:
    """The size of the files below ``root`` (symlinks not followed; a missing folder is 0)."""
    total, pending = 0, [os.fspath(root)]
    while pending:
        try:
            with os.scandir(pending.pop()) as scan:
                for item in scan:
                    try:
                        if item.is_dir(follow_symlinks=False):
                            pending.append(item.path)
                        elif item.is_file(follow_symlinks=False):
                            total += item.stat(follow_symlinks=False).st_size
                    except OSError:  # vanished meanwhile
                        continue
        except (FileNotFoundError, NotADirectoryError):
            continue
    return total
