"""WebDAV write locks in MongoDB, granted atomically without transactions.

A lock conflicts with locks on its root, on its ancestors (depth infinity)
and, for depth infinity, below it: several documents, which MongoDB cannot
check and insert in one atomic step without a replica set. So a new lock is
*announced* first (stored as ``pending``), then the store is checked again,
and it is granted (``pending`` -> ``granted``, one atomic update) only if
that check, made after the announcement, saw no conflicting lock at all,
pending or granted. Of two racing locks, the one that checks later sees the
other's announcement, so both cannot be granted. Who waits for whom among
announced rivals follows their tickets (announce time, then token): a lock
withdraws when it sees an older rival, and waits for younger ones to
withdraw, so one of them always goes ahead.

An announcement lapses after ``PENDING_TTL`` seconds (a process that died
between announcing and granting blocks nobody for longer); granting is
conditional on it not having lapsed, so a lapsed one cannot be granted late.
Readers see granted locks only. Expiry compares stored times with the
caller's clock, as WsgiDAV's own lock storage does.
"""

from __future__ import annotations

import random
import time

from pymongo import ReturnDocument
from pymongo.collection import Collection

from davgate.state import LockConflict, LockRecord, keys
from davgate.state.mongo.connection import Document, MongoConnection

PENDING, GRANTED = "pending", "granted"
PENDING_TTL = 5.0  # seconds an announced lock has to be granted
SETTLE_TIMEOUT = 10.0  # seconds create_lock waits for undecided rivals before refusing
FIELDS = ("root", "type", "scope", "depth", "owner", "principal", "timeout", "expire")


class LocksMixin(MongoConnection):
    def _locks(self) -> Collection[Document]:
        return self._collection("locks")

    def create_lock(self, lock: LockRecord) -> None:
        locks = self._locks()
        _purge(locks, time.time())
        deadline = time.monotonic() + SETTLE_TIMEOUT
        ticket: tuple[float, str] | None = None  # ours, while our announcement stands
        pause = 0.001
        while True:
            rivals = _rivals(locks, lock, time.time())
            granted = [rival for rival in rivals if rival["state"] == GRANTED]
            if granted or (rivals and time.monotonic() > deadline):
                if ticket:
                    locks.delete_one({"_id": lock.token, "state": PENDING})
                raise LockConflict(lock.root, sorted({rival["root"] for rival in granted or rivals}))
            if not rivals and ticket is None:
                ticket = _announce(locks, lock)
                continue  # check again, now that others can see us
            if not rivals:
                if _grant(locks, lock.token, time.time()):
                    return
                ticket = None  # our announcement lapsed: start again
                continue
            if ticket and any((rival["ticket"], rival["_id"]) < ticket for rival in rivals):
                locks.delete_one({"_id": lock.token, "state": PENDING})  # an older rival goes first
                ticket = None
            time.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, 0.05)

    def get_lock(self, token: str) -> LockRecord | None:
        found = self._locks().find_one({"_id": token, "state": GRANTED, **_live(time.time())})
        return _record(found) if found else None

    def refresh_lock(self, token: str, *, timeout: float, expire: float) -> LockRecord | None:
        found = self._locks().find_one_and_update(
            {"_id": token, "state": GRANTED, **_live(time.time())},
            {"$set": {"timeout": timeout, "expire": expire}},
            return_document=ReturnDocument.AFTER,
        )
        return _record(found) if found else None

    def delete_lock(self, token: str) -> bool:
        locks = self._locks()
        now = time.time()
        _purge(locks, now)
        return locks.delete_one({"_id": token, "state": GRANTED, **_live(now)}).deleted_count > 0

    def list_locks(self, root: str, *, include_root: bool, include_children: bool) -> list[LockRecord]:
        where: list[Document] = []
        if include_root:
            where.append({"root": root})
        if include_children:
            low, high = keys.subtree(root)
            where.append({"root": {"$gte": low, "$lt": high, "$ne": root}})
        if not where:
            return []
        query = {"$and": [{"$or": where}, _live(time.time())], "state": GRANTED}
        found = self._locks().find(query).sort([("ticket", 1), ("_id", 1)])
        return [_record(document) for document in found]

    def any_live_lock(self) -> bool:
        return self._locks().find_one({**_live(time.time()), "state": GRANTED}, {"_id": 1}) is not None

    def purge_expired_locks(self) -> int:
        return _purge(self._locks(), time.time())

    def clear_locks(self) -> None:
        self._locks().delete_many({})


def _live(now: float) -> Document:
    """Locks that have not expired (a negative expire means never)."""
    return {"$or": [{"expire": {"$lt": 0}}, {"expire": {"$gte": now}}]}


def _rivals(locks: Collection[Document], lock: LockRecord, now: float) -> list[Document]:
    """Live locks, granted or announced, that overlap ``lock`` and are not both shared."""
    overlap: list[Document] = [{"root": lock.root}]
    ancestors = keys.ancestors(lock.root)
    if ancestors:
        overlap.append({"depth": "infinity", "root": {"$in": ancestors}})
    if lock.depth == "infinity":
        low, high = keys.subtree(lock.root)
        overlap.append({"root": {"$gte": low, "$lt": high}})
    standing = {"$or": [{"state": GRANTED}, {"pending_until": {"$gte": now}}]}
    query: Document = {"_id": {"$ne": lock.token}, "$and": [{"$or": overlap}, _live(now), standing]}
    if lock.scope == "shared":
        query["scope"] = "exclusive"
    return list(locks.find(query, {"root": 1, "state": 1, "ticket": 1}))


def _announce(locks: Collection[Document], lock: LockRecord) -> tuple[float, str]:
    now = time.time()
    fields = {name: getattr(lock, name) for name in FIELDS}
    document = {**fields, "state": PENDING, "ticket": now, "pending_until": now + PENDING_TTL}
    locks.replace_one({"_id": lock.token}, document, upsert=True)
    return now, lock.token


def _grant(locks: Collection[Document], token: str, now: float) -> bool:
    """Turn our announcement into a lock, unless it has lapsed."""
    result = locks.update_one(
        {"_id": token, "state": PENDING, "pending_until": {"$gte": now}},
        {"$set": {"state": GRANTED}, "$unset": {"pending_until": ""}},
    )
    return result.modified_count == 1


def _purge(locks: Collection[Document], now: float) -> int:
    """Delete expired locks (returning how many) and long-lapsed announcements."""
    locks.delete_many({"state": PENDING, "pending_until": {"$lt": now - PENDING_TTL}})
    return locks.delete_many({"state": GRANTED, "expire": {"$gte": 0, "$lt": now}}).deleted_count


def _record(document: Document) -> LockRecord:
    return LockRecord(token=document["_id"], **{name: document[name] for name in FIELDS})
