"""The management API's records on the PostgreSQL state store: the API records contract, on a real server."""

from __future__ import annotations

from pathlib import Path

import psycopg

from davgate.state import InfraRecord
from davgate.state.postgres import SCHEMA
from davgate.state.postgres.schema import migrate
from tests.state.test_api_records import ApiRecordsContract
from tests.state.test_postgres_store import PostgresServer


class TestPostgresApiRecords(PostgresServer, ApiRecordsContract):
    def test_a_record_of_version_2_takes_its_name_as_id(self, tmp_path: Path) -> None:
        with psycopg.connect(self.url(), autocommit=True) as db:
            migrate(db, "old", SCHEMA[:2])  # a database as the previous davgate left it
            db.execute("INSERT INTO api_infrastructures VALUES ('old-1', 'u@x', '{}', 1.0)")
        with self.make_store(tmp_path) as store:
            assert store.infra_get("old-1") == InfraRecord("old-1", "u@x", "{}", 1.0, "old-1")
            assert store.infra_get("old-1").legacy  # type: ignore[union-attr]
            assert store.infra_create(InfraRecord("new-1", "u@x", "{}", 2.0, "a1b2")) is True
            assert not store.infra_get("new-1").legacy  # type: ignore[union-attr]
            assert store.infra_delete("old-1", "old-1") is True
