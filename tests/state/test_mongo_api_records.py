"""The management API's records on the Mongo state store: the API records contract,
on mongomock always and on a real MongoDB when ``DAVGATE_TEST_MONGO_URL`` is set.

The contract's "other process" is a second store (its own client) on the
same server, raced from threads, which mongomock supports as well.
"""

from __future__ import annotations

from pathlib import Path

from davgate.state import InfraRecord
from tests.state.test_api_records import ApiRecordsContract
from tests.state.test_mongo_store import MongoServer


class TestMongoApiRecords(MongoServer, ApiRecordsContract):
    def test_the_one_document_of_old_is_moved_to_one_document_each(self, tmp_path: Path) -> None:
        with self.make_store(tmp_path) as store:
            old = store._collection("infrastructures")  # as davgate before version 6 kept them
            records = [{"name": f"t{i}", "owner": "u@x", "spec": "{}", "created": 1.0} for i in range(3)]
            old.insert_one({"_id": "infrastructures", "records": records, "generation": 7})
            store._collection("meta").update_one({"_id": "schema"}, {"$set": {"version": 5}})
        with self.make_store(tmp_path) as store:
            assert store.infra_list() == [InfraRecord(f"t{i}", "u@x", "{}", 1.0, f"t{i}") for i in range(3)]
            assert store.infra_generation() > 7
            assert store._collection("api_infrastructures").count_documents({}) == 3
            assert store._collection("infrastructures").count_documents({}) == 0
            assert store.infra_create(InfraRecord("t0", "v@x", "{}", 2.0, "new")) is False  # the name is still taken

    def test_metadata_of_old_counts_its_bytes(self, tmp_path: Path) -> None:
        with self.make_store(tmp_path) as store:
            key = {"owner": "u@x", "collection": "c", "id": "e"}
            store._collection("metadata").insert_one({**key, "json": '{"s":"é"}'})  # no size, as before version 6
        with self.make_store(tmp_path) as store:
            assert store.api_usage("u@x").metadata_bytes == 10
