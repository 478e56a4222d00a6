"""The management API's records on the PostgreSQL state store: the API records contract, on a real server."""

from __future__ import annotations

from tests.state.test_api_records import ApiRecordsContract
from tests.state.test_postgres_store import PostgresServer


class TestPostgresApiRecords(PostgresServer, ApiRecordsContract):
    pass
