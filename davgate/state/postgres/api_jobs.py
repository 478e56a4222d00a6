"""The management API's copy jobs in PostgreSQL: one row per job, keyed by owner and id.

Claiming a job or its webhook is one ``UPDATE`` of the oldest due row,
chosen ``FOR UPDATE SKIP LOCKED``: of processes claiming at once each locks
a different row, none waits on another, and a row claimed meanwhile is
re-checked and passed over. Every later step is conditional on the holder.
``seq`` (the order of adding) breaks ties of ``created``, as SQLite's rowid does.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable

from davgate.state.api_records import CopyJob, RecordExists
from davgate.state.postgres.connection import PostgresConnection

FIELDS = [field.name for field in dataclasses.fields(CopyJob)]
COLUMNS = ", ".join(FIELDS)
CLAIMABLE = "state IN ('queued', 'running') AND ((state = 'queued' AND lease <= %(now)s) OR (state = 'running' AND lease < %(now)s))"
HOOK_DUE = "hook_state = 'pending' AND hook_next <= %(now)s"
CLAIM = (
    "UPDATE api_jobs SET state = 'running', holder = %(holder)s, lease = %(lease)s, bytes_done = 0,"
    " attempts = attempts + 1, updated = %(now)s WHERE (owner, id) = ("
    f"SELECT owner, id FROM api_jobs WHERE {CLAIMABLE} ORDER BY created, seq LIMIT 1 FOR UPDATE SKIP LOCKED)"
    f" RETURNING {COLUMNS}"
)
HOOK_CLAIM = (
    "UPDATE api_jobs SET holder = %(holder)s, hook_next = %(lease)s WHERE (owner, id) = ("
    f"SELECT owner, id FROM api_jobs WHERE {HOOK_DUE} ORDER BY hook_next, seq LIMIT 1 FOR UPDATE SKIP LOCKED)"
    f" RETURNING {COLUMNS}"
)
RUNNING = "owner = %(owner)s AND id = %(id)s AND holder = %(holder)s AND state = 'running'"


class JobsMixin(PostgresConnection):
    def job_add(self, jobs: Iterable[CopyJob]) -> None:
        rows = [dataclasses.astuple(job) for job in jobs]
        placeholders = ", ".join(["%s"] * len(FIELDS))
        sql = f"INSERT INTO api_jobs ({COLUMNS}) VALUES ({placeholders}) ON CONFLICT (owner, id) DO NOTHING"
        with self._transaction() as db:
            taken = [row[1] for row in rows if db.execute(sql, row).rowcount == 0]
            if taken:
                raise RecordExists(taken)  # rolls back the jobs inserted before it

    def job_get(self, owner: str, job_id: str) -> CopyJob | None:
        with self._connection() as db:
            row = db.execute(f"SELECT {COLUMNS} FROM api_jobs WHERE owner = %s AND id = %s", (owner, job_id)).fetchone()
        return CopyJob(*row) if row else None

    def job_list(self, owner: str) -> list[CopyJob]:
        with self._connection() as db:
            rows = db.execute(f"SELECT {COLUMNS} FROM api_jobs WHERE owner = %s ORDER BY created, seq", (owner,))
            return [CopyJob(*row) for row in rows]

    def job_claim(self, holder: str, now: float, lease: float) -> CopyJob | None:
        with self._connection() as db:
            row = db.execute(CLAIM, {"holder": holder, "lease": lease, "now": now}).fetchone()
        return CopyJob(*row) if row else None

    def job_progress(self, owner: str, job_id: str, holder: str, done: int, total: int, lease: float) -> bool:
        sql = f"UPDATE api_jobs SET bytes_done = %(done)s, bytes_total = %(total)s, lease = %(lease)s, updated = %(now)s WHERE {RUNNING}"
        params = {"done": done, "total": total, "lease": lease, "now": time.time()}
        with self._connection() as db:
            return db.execute(sql, {**params, "owner": owner, "id": job_id, "holder": holder}).rowcount > 0

    def job_release(
        self, owner: str, job_id: str, holder: str, retry_at: float = 0.0, *, uncount: bool = False
    ) -> bool:
        sql = (
            "UPDATE api_jobs SET state = 'queued', holder = '', lease = %(retry_at)s, updated = %(now)s,"
            f" attempts = attempts - %(uncount)s WHERE {RUNNING}"
        )
        params = {"retry_at": retry_at, "now": time.time(), "uncount": int(uncount)}
        with self._connection() as db:
            return db.execute(sql, {**params, "owner": owner, "id": job_id, "holder": holder}).rowcount > 0

    def job_finish(
        self, owner: str, job_id: str, holder: str, *, state: str, error: str, checksum: str, now: float
    ) -> bool:
        sql = (
            "UPDATE api_jobs SET state = %(state)s, error = %(error)s, checksum = %(checksum)s, holder = '', lease = 0,"
            " updated = %(now)s, hook_state = CASE WHEN webhook <> '' THEN 'pending' ELSE '' END, hook_next = %(now)s"
            f" WHERE {RUNNING}"
        )
        params = {"state": state, "error": error, "checksum": checksum, "now": now}
        with self._connection() as db:
            return db.execute(sql, {**params, "owner": owner, "id": job_id, "holder": holder}).rowcount > 0

    def webhook_claim(self, holder: str, now: float, lease: float) -> CopyJob | None:
        with self._connection() as db:
            row = db.execute(HOOK_CLAIM, {"holder": holder, "lease": lease, "now": now}).fetchone()
        return CopyJob(*row) if row else None

    def webhook_result(self, owner: str, job_id: str, holder: str, *, delivered: bool, retry_at: float | None) -> None:
        state = "delivered" if delivered else ("pending" if retry_at is not None else "failed")
        sql = (
            "UPDATE api_jobs SET hook_state = %s, hook_attempts = hook_attempts + 1, hook_next = %s, holder = ''"
            " WHERE owner = %s AND id = %s AND holder = %s AND hook_state = 'pending'"
        )
        with self._connection() as db:
            db.execute(sql, (state, retry_at or 0.0, owner, job_id, holder))

    def job_purge(self, before: float) -> int:
        sql = "DELETE FROM api_jobs WHERE state IN ('done', 'failed') AND hook_state <> 'pending' AND updated < %s"
        with self._connection() as db:
            return db.execute(sql, (before,)).rowcount
