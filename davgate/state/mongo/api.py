"""The management API's users, infrastructures and metadata in MongoDB.

Users and metadata documents are one MongoDB document each. All
infrastructures share one document with the generation number, so that
creating or deleting one and changing the generation is one atomic update,
and reading the generation is one small read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from davgate.state.api_records import ApiUser, InfraRecord
from davgate.state.mongo.connection import Document, MongoConnection, upsert

INFRASTRUCTURES = "infrastructures"  # the _id of the one document in the "infrastructures" collection


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

    # --- micro-infrastructures -------------------------------------------------

    def _infrastructures(self) -> Collection[Document]:
        return self._collection("infrastructures")

    def infra_create(self, record: InfraRecord) -> bool:
        free = {"_id": INFRASTRUCTURES, "records.name": {"$ne": record.name}}
        update = {"$push": {"records": _infra_document(record)}, "$inc": {"generation": 1}}
        for _ in range(2):  # the second time, the document surely exists
            try:
                self._infrastructures().update_one(free, update, upsert=True)
                return True
            except DuplicateKeyError:  # the name is taken (or the document was just made)
                continue
        return False

    def infra_get(self, name: str) -> InfraRecord | None:
        return next((record for record in self._infra_records() if record.name == name), None)

    def infra_list(self, owner: str | None = None) -> list[InfraRecord]:
        records = [r for r in self._infra_records() if owner is None or r.owner == owner]
        return sorted(records, key=lambda record: record.name)

    def infra_delete(self, name: str) -> bool:
        result = self._infrastructures().update_one(
            {"_id": INFRASTRUCTURES, "records.name": name},
            {"$pull": {"records": {"name": name}}, "$inc": {"generation": 1}},
        )
        return result.modified_count > 0

    def infra_generation(self) -> int:
        found = self._infrastructures().find_one({"_id": INFRASTRUCTURES}, {"generation": 1})
        return int(found["generation"]) if found else 0

    def _infra_records(self) -> list[InfraRecord]:
        found = self._infrastructures().find_one({"_id": INFRASTRUCTURES}, {"records": 1})
        return [InfraRecord(**document) for document in (found or {}).get("records", [])]

    # --- metadata (DataNet) ------------------------------------------------------------

    def _metadata(self) -> Collection[Document]:
        return self._collection("metadata")

    def metadata_put(self, owner: str, collection: str, entry_id: str, document: Mapping[str, Any]) -> bool:
        key = {"owner": owner, "collection": collection, "id": entry_id}
        # as text: JSON keys may be what BSON keys may not
        text = json.dumps(document, separators=(",", ":"), allow_nan=False)
        result = upsert(self._metadata().replace_one, key, {**key, "json": text})
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
    return {"name": record.name, "owner": record.owner, "spec": record.spec, "created": record.created}
