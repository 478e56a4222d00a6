"""Host keys, the DISPEL cache index, leases, counters and digests on the PostgreSQL store, on a real server."""

from __future__ import annotations

from tests.state.test_mongo_records import RecordsContract
from tests.state.test_postgres_store import PostgresServer


class TestPostgresRecords(PostgresServer, RecordsContract):
    pass
