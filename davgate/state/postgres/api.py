"""The management API's users, infrastructures and metadata in PostgreSQL: one row each.

Creating or deleting an infrastructure and moving the generation counter
(a row of ``counters``) are one transaction: a process that sees the new
generation sees the change. Metadata documents are kept as the JSON text
they were put as (``jsonb`` would reorder their keys). A user's usage is
counted from their rows, each count an index range on the owner.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from typing import Any

import psycopg

from davgate.state.api_records import ApiUsage, ApiUser, InfraRecord, document_text
from davgate.state.postgres.connection import PostgresConnection

GENERATION = "api_infrastructure_generation"  # a row of the counters table, as in the SQLite store
INFRA_COLUMNS = "name, owner, spec, created, id"
USAGE = (
    "SELECT (SELECT count(*) FROM api_infrastructures WHERE owner = %(owner)s),"
    " (SELECT count(*) FROM api_metadata WHERE owner = %(owner)s),"
    " (SELECT coalesce(sum(octet_length(document)), 0)::bigint FROM api_metadata WHERE owner = %(owner)s),"
    " (SELECT count(*) FROM api_jobs WHERE owner = %(owner)s AND state IN ('queued', 'running'))"
)
INSERTED = "(xmax = 0)"  # in RETURNING of an upsert: the row was inserted, not updated


class ApiMixin(PostgresConnection):
    # --- API users ------------------------------------------------------------

    def api_user_put(self, email: str, name: str) -> bool:
        sql = (
            "INSERT INTO api_users (email, name, created) VALUES (%s, %s, %s)"
            f" ON CONFLICT (email) DO UPDATE SET name = excluded.name RETURNING {INSERTED}"
        )
        with self._connection() as db:
            return bool(db.execute(sql, (email, name, time.time())).fetchone()[0])  # type: ignore[index]

    def api_user_get(self, email: str) -> ApiUser | None:
        with self._connection() as db:
            row = db.execute("SELECT email, name, created FROM api_users WHERE email = %s", (email,)).fetchone()
        return ApiUser(*row) if row else None

    def api_user_delete(self, email: str) -> bool:
        with self._connection() as db:
            return db.execute("DELETE FROM api_users WHERE email = %s", (email,)).rowcount > 0

    def api_users(self) -> list[ApiUser]:
        with self._connection() as db:
            return [ApiUser(*row) for row in db.execute("SELECT email, name, created FROM api_users ORDER BY email")]

    def api_usage(self, owner: str) -> ApiUsage:
        with self._connection() as db:
            return ApiUsage(*db.execute(USAGE, {"owner": owner}).fetchone())  # type: ignore[misc]

    # --- micro-infrastructures -------------------------------------------------

    def infra_create(self, record: InfraRecord) -> bool:
        sql = f"INSERT INTO api_infrastructures ({INFRA_COLUMNS}) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING"
        with self._transaction() as db:
            if db.execute(sql, dataclasses.astuple(record)).rowcount == 0:
                return False
            _bump(db)
        return True

    def infra_get(self, name: str) -> InfraRecord | None:
        with self._connection() as db:
            row = db.execute(f"SELECT {INFRA_COLUMNS} FROM api_infrastructures WHERE name = %s", (name,)).fetchone()
        return InfraRecord(*row) if row else None

    def infra_list(self, owner: str | None = None) -> list[InfraRecord]:
        sql = f"SELECT {INFRA_COLUMNS} FROM api_infrastructures WHERE %(owner)s::text IS NULL OR owner = %(owner)s ORDER BY name"
        with self._connection() as db:
            return [InfraRecord(*row) for row in db.execute(sql, {"owner": owner})]

    def infra_delete(self, name: str, record_id: str | None = None) -> bool:
        sql = "DELETE FROM api_infrastructures WHERE name = %(name)s AND (%(id)s::text IS NULL OR id = %(id)s)"
        with self._transaction() as db:
            if db.execute(sql, {"name": name, "id": record_id}).rowcount == 0:
                return False
            _bump(db)
        return True

    def infra_generation(self) -> int:
        with self._connection() as db:
            row = db.execute("SELECT value FROM counters WHERE name = %s", (GENERATION,)).fetchone()
        return int(row[0]) if row else 0

    # --- metadata (DataNet) ------------------------------------------------------------

    def metadata_put(self, owner: str, collection: str, entry_id: str, document: Mapping[str, Any]) -> bool:
        text = document_text(document)
        sql = (
            "INSERT INTO api_metadata (owner, collection, id, document) VALUES (%s, %s, %s, %s)"
            f" ON CONFLICT (owner, collection, id) DO UPDATE SET document = excluded.document RETURNING {INSERTED}"
        )
        with self._connection() as db:
            return bool(db.execute(sql, (owner, collection, entry_id, text)).fetchone()[0])  # type: ignore[index]

    def metadata_get(self, owner: str, collection: str, entry_id: str) -> dict[str, Any] | None:
        sql = "SELECT document FROM api_metadata WHERE owner = %s AND collection = %s AND id = %s"
        with self._connection() as db:
            row = db.execute(sql, (owner, collection, entry_id)).fetchone()
        return json.loads(row[0]) if row else None

    def metadata_delete(self, owner: str, collection: str, entry_id: str) -> bool:
        sql = "DELETE FROM api_metadata WHERE owner = %s AND collection = %s AND id = %s"
        with self._connection() as db:
            return db.execute(sql, (owner, collection, entry_id)).rowcount > 0

    def metadata_scan(self, owner: str, collection: str) -> list[tuple[str, dict[str, Any]]]:
        sql = "SELECT id, document FROM api_metadata WHERE owner = %s AND collection = %s ORDER BY id"
        with self._connection() as db:
            return [(entry_id, json.loads(text)) for entry_id, text in db.execute(sql, (owner, collection))]


def _bump(db: psycopg.Connection) -> None:
    sql = (
        "INSERT INTO counters (name, value) VALUES (%s, 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1"
    )
    db.execute(sql, (GENERATION,))
