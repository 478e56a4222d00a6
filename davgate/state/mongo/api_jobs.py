"""The management API's copy jobs in MongoDB: one document per job, unique by owner and id.

Claiming a job or its webhook is one ``find_one_and_update`` (oldest first),
so two processes never get the same one; every later step is conditional on
the holder. Adding several jobs is all or none without transactions: they
are inserted hidden (``adding``), and shown (one ``update_many``) only when
every one of them went in; if an id was taken they are deleted again, never
having been seen. Hidden jobs of an add that died are removed after
``ADD_TTL`` seconds.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterable

from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

from davgate.state.api_records import CopyJob, RecordExists
from davgate.state.mongo.connection import Document, MongoConnection

ADD_TTL = 60.0
SHOWN: Document = {"adding": {"$exists": False}}
OLDEST = [("created", 1), ("_id", 1)]  # ObjectIds grow: in order of adding
DUPLICATE_KEY = 11000


class JobsMixin(MongoConnection):
    def _jobs(self) -> Collection[Document]:
        return self._collection("copy_jobs")

    def job_add(self, jobs: Iterable[CopyJob]) -> None:
        collection = self._jobs()
        documents = [dataclasses.asdict(job) for job in jobs]
        if not documents:
            return
        now = time.time()
        collection.delete_many({"adding_until": {"$lt": now}})  # hidden jobs of an add that died
        keys = [{"owner": document["owner"], "id": document["id"]} for document in documents]
        taken = {(d["owner"], d["id"]) for d in collection.find({"$or": keys}, {"owner": 1, "id": 1})}
        if taken:
            raise RecordExists([key["id"] for key in keys if (key["owner"], key["id"]) in taken])
        batch = {"adding": uuid.uuid4().hex, "adding_until": now + ADD_TTL}
        try:
            collection.insert_many([{**document, **batch} for document in documents], ordered=False)
        except BulkWriteError as error:  # a racing add took some of the ids
            collection.delete_many({"adding": batch["adding"]})
            failures = error.details.get("writeErrors", [])
            if any(failure.get("code") != DUPLICATE_KEY for failure in failures):
                raise
            raise RecordExists([keys[failure["index"]]["id"] for failure in failures]) from None
        collection.update_many({"adding": batch["adding"]}, {"$unset": {"adding": "", "adding_until": ""}})

    def job_get(self, owner: str, job_id: str) -> CopyJob | None:
        found = self._jobs().find_one({"owner": owner, "id": job_id, **SHOWN})
        return _job(found) if found else None

    def job_list(self, owner: str) -> list[CopyJob]:
        return [_job(document) for document in self._jobs().find({"owner": owner, **SHOWN}).sort(OLDEST)]

    def job_claim(self, holder: str, now: float, lease: float) -> CopyJob | None:
        due = [{"state": "queued", "lease": {"$lte": now}}, {"state": "running", "lease": {"$lt": now}}]
        claimable = {"$or": due, **SHOWN}
        running = {"state": "running", "holder": holder, "lease": lease, "bytes_done": 0, "updated": now}
        return self._claim(claimable, {"$set": running, "$inc": {"attempts": 1}}, OLDEST)

    def job_progress(self, owner: str, job_id: str, holder: str, done: int, total: int, lease: float) -> bool:
        progress = {"bytes_done": done, "bytes_total": total, "lease": lease, "updated": time.time()}
        return self._update_running(owner, job_id, holder, progress)

    def job_release(
        self, owner: str, job_id: str, holder: str, retry_at: float = 0.0, *, uncount: bool = False
    ) -> bool:
        queued = {"state": "queued", "holder": "", "lease": retry_at, "updated": time.time()}
        change: Document = {"$set": queued, "$inc": {"attempts": -int(uncount)}}
        running = {"owner": owner, "id": job_id, "holder": holder, "state": "running"}
        return self._jobs().update_one(running, change).matched_count > 0

    def job_finish(
        self, owner: str, job_id: str, holder: str, *, state: str, error: str, checksum: str, now: float
    ) -> bool:
        final = {"state": state, "error": error, "checksum": checksum, "holder": "", "lease": 0.0, "updated": now}
        final["hook_next"] = now
        if self._update_running(owner, job_id, holder, {**final, "hook_state": ""}, webhook={"$eq": ""}):
            return True
        return self._update_running(owner, job_id, holder, {**final, "hook_state": "pending"}, webhook={"$ne": ""})

    def webhook_claim(self, holder: str, now: float, lease: float) -> CopyJob | None:
        due = {"hook_state": "pending", "hook_next": {"$lte": now}, **SHOWN}
        update = {"$set": {"hook_next": lease, "holder": holder}}
        return self._claim(due, update, [("hook_next", 1), *OLDEST])

    def webhook_result(self, owner: str, job_id: str, holder: str, *, delivered: bool, retry_at: float | None) -> None:
        state = "delivered" if delivered else ("pending" if retry_at is not None else "failed")
        outcome = {"hook_state": state, "hook_next": retry_at or 0.0, "holder": ""}
        held = {"owner": owner, "id": job_id, "holder": holder, "hook_state": "pending"}
        self._jobs().update_one(held, {"$set": outcome, "$inc": {"hook_attempts": 1}})

    def job_purge(self, before: float) -> int:
        query = {"state": {"$in": ["done", "failed"]}, "updated": {"$lt": before}, "hook_state": {"$ne": "pending"}}
        return self._jobs().delete_many(query).deleted_count

    def _claim(self, query: Document, update: Document, order: list[tuple[str, int]]) -> CopyJob | None:
        found = self._jobs().find_one_and_update(query, update, sort=order, return_document=ReturnDocument.AFTER)
        return _job(found) if found else None

    def _update_running(self, owner: str, job_id: str, holder: str, fields: Document, **match: Document) -> bool:
        running = {"owner": owner, "id": job_id, "holder": holder, "state": "running", **match}
        return self._jobs().update_one(running, {"$set": fields}).matched_count > 0


def _job(document: Document) -> CopyJob:
    return CopyJob(**{field.name: document[field.name] for field in dataclasses.fields(CopyJob)})
