"""The management API's users, infrastructures and metadata in MongoDB.

Users, infrastructures and metadata documents are one MongoDB document
each; an infrastructure's ``_id`` is its name, so a name is taken once.
The generation number is a document of its own (``meta``), changed after
each create or delete: a process that sees the new number sees the change.
A create or delete cut short between the two (the process died) is seen
by the others at the next change.

Until version 6 every infrastructure sat in one document (``infrastructures``,
with the 16 MB cap of a document); opening the store moves those records
to their own documents, with their names as ids (see
:class:`~davgate.state.api_records.InfraRecord`), then removes the old one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from davgate.state.api_records import ApiUsage, ApiUser, InfraRecord, document_text
from davgate.state.mongo.connection import Document, MongoConnection, upsert

OLD_LAYOUT = ("infrastructures", "infrastructures")  # collection and _id of the one document before version 6
GENERATION = "infra_generation"  # the _id of the generation's document in "meta"


class ApiMixin(MongoConnection):
    # --- API users ------------------------------------------------------------

    def _users(self) -> Collection[Document]:
        return self._collection("api_users")

    def api_user_put(self, email: str, name: str) -> bool:
        update = {"$set": {"name": name}, "$setOnInsert": {"created": time.time()}}
        result = upsert(self._users().update_one, {"_id": email}, update)
        return result.upserted_id is not None

    def api_user_get(self, email: str) -> ApiUser | None:
        found = self._users().find_one({"_id": email})
        return ApiUser(email, found["name"], found["created"]) if found else None

    def api_user_delete(self, email: str) -> bool:
        return self._users().delete_one({"_id": email}).deleted_count > 0

    def api_users(self) -> list[ApiUser]:
        return [ApiUser(d["_id"], d["name"], d["created"]) for d in self._users().find().sort("_id", 1)]

    def api_usage(self, owner: str) -> ApiUsage:
        totals = self._metadata().aggregate(
            [{"$match": {"owner": owner}}, {"$group": {"_id": None, "n": {"$sum": 1}, "bytes": {"$sum": "$bytes"}}}]
        )
        found = next(iter(totals), {"n": 0, "bytes": 0})
        waiting = {"owner": owner, "state": {"$in": ["queued", "running"]}, "adding": {"$exists": False}}
        return ApiUsage(
            self._infrastructures().count_documents({"owner": owner}),
            int(found["n"]),
            int(found["bytes"]),
            self._collection("copy_jobs").count_documents(waiting),
        )

    # --- micro-infrastructures -------------------------------------------------

    def _infrastructures(self) -> Collection[Document]:
        return self._collection("api_infrastructures")

    def infra_create(self, record: InfraRecord) -> bool:
        try:
            self._infrastructures().insert_one(_infra_document(record))
        except DuplicateKeyError:
            return False
        self._bump()
        return True

    def infra_get(self, name: str) -> InfraRecord | None:
        found = self._infrastructures().find_one({"_id": name})
        return _infra_record(found) if found else None

    def infra_list(self, owner: str | None = None) -> list[InfraRecord]:
        query = {} if owner is None else {"owner": owner}
        return [_infra_record(document) for document in self._infrastructures().find(query).sort("_id", 1)]

    def infra_delete(self, name: str, record_id: str | None = None) -> bool:
        query = {"_id": name} if record_id is None else {"_id": name, "id": record_id}
        if self._infrastructures().delete_one(query).deleted_count == 0:
            return False
        self._bump()
        return True

    def infra_generation(self) -> int:
        found = self._collection("meta").find_one({"_id": GENERATION})
        return int(found["value"]) if found else 0

    def _bump(self, by: int = 1) -> None:
        upsert(self._collection("meta").update_one, {"_id": GENERATION}, {"$inc": {"value": by}})

    def _migrate(self) -> None:
        super()._migrate()
        self._move_old_infrastructures()
        self._count_metadata_bytes()

    def _move_old_infrastructures(self) -> None:
        """Records of the one-document layout, each to its own document (again, if a move was cut short)."""
        collection, key = OLD_LAYOUT
        old = self._collection(collection).find_one({"_id": key})
        if old is None:
            return
        for document in old.get("records", []):
            record = InfraRecord(**{**document, "id": document.get("id") or document["name"]})
            upsert(self._infrastructures().update_one, {"_id": record.name}, {"$setOnInsert": _infra_document(record)})
        self._bump(int(old.get("generation", 0)) + 1)  # past every number the old layout gave out
        self._collection(collection).delete_one({"_id": key})

    def _count_metadata_bytes(self) -> None:
        """Documents stored before version 6 get their size, for :meth:`api_usage`."""
        for document in self._metadata().find({"bytes": {"$exists": False}}, {"json": 1}):
            self._metadata().update_one({"_id": document["_id"]}, {"$set": {"bytes": len(document["json"].encode())}})

    # --- metadata (DataNet) ------------------------------------------------------------

    def _metadata(self) -> Collection[Document]:
        return self._collection("metadata")

    def metadata_put(self, owner: str, collection: str, entry_id: str, document: Mapping[str, Any]) -> bool:
        key = {"owner": owner, "collection": collection, "id": entry_id}
        # as text: JSON keys may be what BSON keys may not
        text = document_text(document)
        result = upsert(self._metadata().replace_one, key, {**key, "json": text, "bytes": len(text.encode())})
        return result.upserted_id is not None

    def metadata_get(self, owner: str, collection: str, entry_id: str) -> dict[str, Any] | None:
        found = self._metadata().find_one({"owner": owner, "collection": collection, "id": entry_id})
        return json.loads(found["json"]) if found else None

    def metadata_delete(self, owner: str, collection: str, entry_id: str) -> bool:
        key = {"owner": owner, "collection": collection, "id": entry_id}
        return self._metadata().delete_one(key).deleted_count > 0

    def metadata_scan(self, owner: str, collection: str) -> list[tuple[str, dict[str, Any]]]:
        found = self._metadata().find({"owner": owner, "collection": collection}).sort("id", 1)
        return [(document["id"], json.loads(document["json"])) for document in found]


def _infra_document(record: InfraRecord) -> Document:
    return {"_id": record.name, "owner": record.owner, "spec": record.spec, "created": record.created, "id": record.id}


def _infra_record(document: Document) -> InfraRecord:
    return InfraRecord(document["_id"], document["owner"], document["spec"], document["created"], document["id"])
