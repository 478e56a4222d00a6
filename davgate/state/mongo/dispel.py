"""The DISPEL cache index, single-flight leases and shared counters in MongoDB.

Every step that must not be done twice is one atomic single-document
operation: an index entry is removed by ``find_one_and_delete``, so of two
processes evicting at once only one gets (and returns) each entry; a lease
changes hands by one conditional ``find_one_and_update`` (compare and set on
holder and expiry). The running total of cache sizes is a counter moved by
``$inc`` next to each entry change; eviction re-reads it before each
removal, so processes evicting at once stop when together they have freed
enough.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterable, Mapping

from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from davgate.state import CACHE_BYTES, CacheEntry, Lease
from davgate.state.mongo.connection import Document, MongoConnection, upsert

LRU = [("last_use", 1), ("created", 1)]
LEASE_LITTER = 60.0  # seconds an ended lease is kept before any acquire removes it


class DispelMixin(MongoConnection):
    def _cache(self) -> Collection[Document]:
        return self._collection("dispel_cache")

    def cache_get(self, key: str) -> CacheEntry | None:
        found = self._cache().find_one({"_id": key})
        return _entry(found) if found else None

    def cache_put(self, entry: CacheEntry) -> None:
        document = dataclasses.asdict(entry)
        key = document.pop("key")
        old = upsert(self._cache().find_one_and_replace, {"_id": key}, document, {"size": 1})
        self.add_counter(CACHE_BYTES, entry.size - (old["size"] if old else 0))

    def cache_touch(self, uses: Mapping[str, tuple[int, float]]) -> None:
        cache = self._cache()
        for key, (hits, last_use) in uses.items():
            cache.update_one({"_id": key}, {"$inc": {"hits": hits}, "$max": {"last_use": last_use}})

    def cache_remove(self, keys: Iterable[str]) -> None:
        self._take([{"_id": key} for key in keys])

    def cache_evict(self, max_bytes: int) -> list[CacheEntry]:
        removed: list[CacheEntry] = []
        if self.counter(CACHE_BYTES) <= max_bytes:
            return removed
        for document in self._cache().find({}, {"last_use": 1}).sort(LRU):
            if self.counter(CACHE_BYTES) <= max_bytes:
                break  # enough is free, perhaps by another process evicting too
            removed += self._take([document])  # unless it was used (or taken) meanwhile
        return removed

    def cache_drop(self, template: str, keep_definition: str) -> list[CacheEntry]:
        found = self._cache().find({"template": template, "definition": {"$ne": keep_definition}}, {"_id": 1})
        return self._take(list(found))

    def cache_entries(self) -> list[CacheEntry]:
        return [_entry(document) for document in self._cache().find().sort(LRU)]

    def _take(self, matches: list[Document]) -> list[CacheEntry]:
        """Remove the entries matching each filter; return those this call removed."""
        cache = self._cache()
        taken = [_entry(found) for match in matches if (found := cache.find_one_and_delete(match))]
        freed = sum(entry.size for entry in taken)
        if freed:
            self.add_counter(CACHE_BYTES, -freed)
        return taken

    def acquire_lease(self, key: str, holder: str, expires: float) -> Lease:
        leases = self._collection("dispel_leases")
        now = time.time()
        leases.delete_many({"expires": {"$lt": now - LEASE_LITTER}})
        while True:
            try:
                taken = leases.find_one_and_update(
                    {"_id": key, "$or": [{"holder": holder}, {"expires": {"$lt": now}}]},
                    {"$set": {"holder": holder, "expires": expires, "status": None, "reason": ""}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
                assert taken is not None  # an upsert returning the document after
                return _lease(taken)
            except DuplicateKeyError:  # someone else holds a live lease
                held = leases.find_one({"_id": key})
                if held is not None:
                    return _lease(held)
                now = time.time()  # released meanwhile: try again

    def release_lease(
        self, key: str, holder: str, *, status: int | None = None, reason: str = "", keep: float = 0.0
    ) -> None:
        leases = self._collection("dispel_leases")
        if status is None or keep <= 0:
            leases.delete_one({"_id": key, "holder": holder})
            return
        failure = {"status": status, "reason": reason, "expires": time.time() + keep}
        leases.update_one({"_id": key, "holder": holder}, {"$set": failure})

    def add_counter(self, name: str, amount: int = 1) -> None:
        counters = self._collection("counters")
        upsert(counters.update_one, {"_id": name}, {"$inc": {"value": amount}})

    def counter(self, name: str) -> int:
        found = self._collection("counters").find_one({"_id": name})
        return int(found["value"]) if found else 0

    def counters(self, prefix: str) -> dict[str, int]:
        found = self._collection("counters").find({"_id": {"$regex": f"^{re.escape(prefix)}"}})
        return {document["_id"]: int(document["value"]) for document in found}


def _entry(document: Document) -> CacheEntry:
    fields = {name: document[name] for name in CacheEntry.__dataclass_fields__ if name != "key"}
    return CacheEntry(key=document["_id"], **fields)


def _lease(document: Document) -> Lease:
    return Lease(document["_id"], document["holder"], document["expires"], document["status"], document["reason"])
