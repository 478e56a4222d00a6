"""The management API's records on the Mongo state store: the API records contract,
on mongomock always and on a real MongoDB when ``DAVGATE_TEST_MONGO_URL`` is set.

The contract's "other process" is a second store (its own client) on the
same server, raced from threads, which mongomock supports as well.
"""

from __future__ import annotations

from tests.state.test_api_records import ApiRecordsContract
from tests.state.test_mongo_store import MongoServer


class TestMongoApiRecords(MongoServer, ApiRecordsContract):
    pass
