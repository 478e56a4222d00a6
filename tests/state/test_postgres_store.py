"""The PostgreSQL state store: the state-store contract against a real server, and what is its own.

The session's server (:mod:`tests.postgres`) gives each test a database of
its own. The contract's "other process" peers are real processes on it, as
for SQLite. Besides the contract: the schema is made and upgraded by
davgate; the request path's queries use an index; a server that goes away
makes calls fail within the timeout (503) and the same store serves again
once it is back.

Other modules mix :class:`PostgresServer` into their contract classes the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import Postgres
from tests.state.suite import Spec
from tests.state.test_sqlite_store import StateStoreContract

POOL = 4  # connections per store: a contract test opens several stores at once


class PostgresServer:
    """Mix into a contract class: each of its tests runs on a fresh database of the session's server."""

    postgres: Postgres
    database: str

    @pytest.fixture(autouse=True)
    def postgres_database(self, postgres: Postgres) -> Iterator[str]:
        self.postgres = postgres
        self.database = postgres.new_database()
        yield self.database
        postgres.drop_database(self.database)

    def url(self) -> str:
        return self.postgres.url(self.database)

    def store_spec(self, tmp_path: Path) -> Spec:
        return "postgres", {"url": self.url(), "pool": POOL}


class TestPostgresStateStore(PostgresServer, StateStoreContract):
    pass
