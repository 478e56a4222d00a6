"""The management API's records in SQLite: the :class:`ApiRecords` half of :class:`SqliteStateStore`.

A mixin over the store's per-thread connections (``_db()``) and
``BEGIN IMMEDIATE`` transactions (``_transaction()``); :data:`TABLES` is one
version of :data:`davgate.state.sqlite.SCHEMA` and :data:`IDENTITIES` the next.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

from davgate.state.api_records import (
    ApiRecords,
    ApiUsage,
    ApiUser,
    CopyJob,
    IndexEntry,
    InfraRecord,
    RecordExists,
    document_text,
)

TABLES = (
    "CREATE TABLE api_users (email TEXT PRIMARY KEY, name TEXT NOT NULL, created REAL NOT NULL) WITHOUT ROWID",
    """CREATE TABLE api_infrastructures (
        name TEXT PRIMARY KEY, owner TEXT NOT NULL, spec TEXT NOT NULL, created REAL NOT NULL) WITHOUT ROWID""",
    """CREATE TABLE api_index (
        namespace TEXT NOT NULL, adaptor TEXT NOT NULL, path TEXT NOT NULL, parent TEXT NOT NULL,
        name TEXT NOT NULL, is_folder INTEGER NOT NULL, size INTEGER NOT NULL, modified REAL NOT NULL,
        checked REAL NOT NULL, PRIMARY KEY (namespace, adaptor, path)) WITHOUT ROWID""",
    "CREATE INDEX api_index_parent ON api_index (namespace, adaptor, parent)",
    "CREATE INDEX api_index_name ON api_index (namespace, name)",
    "CREATE INDEX api_index_stale ON api_index (namespace, adaptor, is_folder, checked)",
    """CREATE TABLE api_jobs (
        owner TEXT NOT NULL, id TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,
        route TEXT NOT NULL, webhook TEXT NOT NULL, state TEXT NOT NULL, bytes_done INTEGER NOT NULL,
        bytes_total INTEGER NOT NULL, error TEXT NOT NULL, checksum TEXT NOT NULL, created REAL NOT NULL,
        updated REAL NOT NULL, holder TEXT NOT NULL, lease REAL NOT NULL, attempts INTEGER NOT NULL,
        hook_state TEXT NOT NULL, hook_attempts INTEGER NOT NULL, hook_next REAL NOT NULL,
        PRIMARY KEY (owner, id))""",
    "CREATE INDEX api_jobs_queue ON api_jobs (state, lease)",
    "CREATE INDEX api_jobs_hooks ON api_jobs (hook_state, hook_next)",
    """CREATE TABLE api_metadata (
        owner TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL, document TEXT NOT NULL,
        PRIMARY KEY (owner, collection, id)) WITHOUT ROWID""",
)

#: Infrastructures get ids; records stored before that take their name as id (see InfraRecord).
IDENTITIES = (
    "ALTER TABLE api_infrastructures ADD COLUMN id TEXT NOT NULL DEFAULT ''",
    "UPDATE api_infrastructures SET id = name WHERE id = ''",
    "CREATE INDEX api_infrastructures_owner ON api_infrastructures (owner)",
)

GENERATION = "api_infrastructure_generation"  # a row of the counters table
INDEX_COLUMNS = "namespace, adaptor, path, is_folder, size, modified, checked"
JOB_COLUMNS = ", ".join(field.name for field in dataclasses.fields(CopyJob))
CLAIMABLE = "((state = 'queued' AND lease <= ?) OR (state = 'running' AND lease < ?))"
HOOK_DUE = "hook_state = 'pending' AND hook_next <= ?"
INFRA_COLUMNS = "name, owner, spec, created, id"
USAGE = (
    "SELECT (SELECT count(*) FROM api_infrastructures WHERE owner = :owner),"
    " (SELECT count(*) FROM api_metadata WHERE owner = :owner),"
    " (SELECT coalesce(sum(length(CAST(document AS BLOB))), 0) FROM api_metadata WHERE owner = :owner),"
    " (SELECT count(*) FROM api_jobs WHERE owner = :owner AND state IN ('queued', 'running'))"
)


def _entry(row: tuple[Any, ...]) -> IndexEntry:
    namespace, adaptor, path, is_folder, size, modified, checked = row
    return IndexEntry(namespace, adaptor, path, bool(is_folder), size, modified, checked)


def _below(path: str) -> tuple[str, str]:
    """Bounds ``lo <= p < hi`` of every path strictly below ``path`` ('0' follows '/')."""
    prefix = path.rstrip("/") + "/"
    return prefix, prefix[:-1] + "0"


class SqliteApiRecords(ApiRecords):
    """Needs ``_db()`` and ``_transaction()`` from :class:`~davgate.state.sqlite.SqliteStateStore`."""

    def _db(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    # --- API users ----------------------------------------------------------------

    def api_user_put(self, email: str, name: str) -> bool:
        with self._transaction() as db:
            if db.execute("UPDATE api_users SET name = ? WHERE email = ?", (name, email)).rowcount:
                return False
            db.execute("INSERT INTO api_users (email, name, created) VALUES (?, ?, ?)", (email, name, time.time()))
        return True

    def api_user_get(self, email: str) -> ApiUser | None:
        row = self._db().execute("SELECT email, name, created FROM api_users WHERE email = ?", (email,)).fetchone()
        return ApiUser(*row) if row else None

    def api_user_delete(self, email: str) -> bool:
        return self._db().execute("DELETE FROM api_users WHERE email = ?", (email,)).rowcount > 0

    def api_users(self) -> list[ApiUser]:
        return [
            ApiUser(*row) for row in self._db().execute("SELECT email, name, created FROM api_users ORDER BY email")
        ]

    def api_usage(self, owner: str) -> ApiUsage:
        return ApiUsage(*self._db().execute(USAGE, {"owner": owner}).fetchone())

    # --- micro-infrastructures -------------------------------------------------------

    def infra_create(self, record: InfraRecord) -> bool:
        sql = f"INSERT OR IGNORE INTO api_infrastructures ({INFRA_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
        with self._transaction() as db:
            if db.execute(sql, dataclasses.astuple(record)).rowcount == 0:
                return False
            _bump(db)
        return True

    def infra_get(self, name: str) -> InfraRecord | None:
        sql = f"SELECT {INFRA_COLUMNS} FROM api_infrastructures WHERE name = ?"
        row = self._db().execute(sql, (name,)).fetchone()
        return InfraRecord(*row) if row else None

    def infra_list(self, owner: str | None = None) -> list[InfraRecord]:
        sql = f"SELECT {INFRA_COLUMNS} FROM api_infrastructures"
        rows = (
            self._db().execute(sql + " ORDER BY name")
            if owner is None
            else (self._db().execute(sql + " WHERE owner = ? ORDER BY name", (owner,)))
        )
        return [InfraRecord(*row) for row in rows]

    def infra_delete(self, name: str, record_id: str | None = None) -> bool:
        sql, params = "DELETE FROM api_infrastructures WHERE name = ?", (name,)
        if record_id is not None:
            sql, params = sql + " AND id = ?", (name, record_id)
        with self._transaction() as db:
            if db.execute(sql, params).rowcount == 0:
                return False
            _bump(db)
        return True

    def infra_generation(self) -> int:
        row = self._db().execute("SELECT value FROM counters WHERE name = ?", (GENERATION,)).fetchone()
        return int(row[0]) if row else 0

    # --- the query index ------------------------------------------------------------------

    def index_put(self, entries: Iterable[IndexEntry]) -> None:
        with self._transaction() as db:
            _upsert(db, entries)

    def index_remove(self, namespace: str, adaptor: str, path: str) -> None:
        with self._transaction() as db:
            _remove(db, namespace, adaptor, path)

    def index_sync_folder(
        self, namespace: str, adaptor: str, folder: str, members: Iterable[IndexEntry], checked: float
    ) -> None:
        wanted = {entry.path: entry for entry in members}
        sql = "SELECT path, is_folder FROM api_index WHERE namespace = ? AND adaptor = ? AND parent = ?"
        with self._transaction() as db:
            for path, is_folder in db.execute(sql, (namespace, adaptor, folder)).fetchall():
                entry = wanted.get(path)
                if entry is None or entry.is_folder != bool(is_folder):
                    _remove(db, namespace, adaptor, path)
            _upsert(db, [*wanted.values(), IndexEntry(namespace, adaptor, folder, True, checked=checked)])
            sql = "UPDATE api_index SET checked = ? WHERE namespace = ? AND adaptor = ? AND path = ?"
            db.execute(sql, (checked, namespace, adaptor, folder))

    def index_stale_folders(self, namespace: str, adaptor: str, before: float, limit: int) -> list[str]:
        sql = (
            "SELECT path FROM api_index WHERE namespace = ? AND adaptor = ? AND is_folder = 1 AND checked < ?"
            " ORDER BY checked, path LIMIT ?"
        )
        return [path for (path,) in self._db().execute(sql, (namespace, adaptor, before, limit))]

    def index_files(self, namespace: str, name: str | None = None) -> list[IndexEntry]:
        where, params = "namespace = ? AND is_folder = 0", [namespace]
        if name is not None:
            where, params = where + " AND name = ?", [namespace, name]
        sql = f"SELECT {INDEX_COLUMNS} FROM api_index WHERE {where} ORDER BY name, adaptor, path"
        return [_entry(row) for row in self._db().execute(sql, params)]

    def index_drop(self, namespace: str, adaptor: str | None = None) -> None:
        if adaptor is None:
            self._db().execute("DELETE FROM api_index WHERE namespace = ?", (namespace,))
        else:
            self._db().execute("DELETE FROM api_index WHERE namespace = ? AND adaptor = ?", (namespace, adaptor))

    # --- copy jobs ---------------------------------------------------------------------------

    def job_add(self, jobs: Iterable[CopyJob]) -> None:
        rows = [dataclasses.astuple(job) for job in jobs]
        marks = ",".join("?" * len(JOB_COLUMNS.split(", ")))
        with self._transaction() as db:
            taken = [
                job_id for owner, job_id, *_ in rows
                if db.execute("SELECT 1 FROM api_jobs WHERE owner = ? AND id = ?", (owner, job_id)).fetchone()
            ]  # fmt: skip
            if taken:
                raise RecordExists(taken)
            db.executemany(f"INSERT INTO api_jobs ({JOB_COLUMNS}) VALUES ({marks})", rows)

    def job_get(self, owner: str, job_id: str) -> CopyJob | None:
        sql = f"SELECT {JOB_COLUMNS} FROM api_jobs WHERE owner = ? AND id = ?"
        row = self._db().execute(sql, (owner, job_id)).fetchone()
        return CopyJob(*row) if row else None

    def job_list(self, owner: str) -> list[CopyJob]:
        sql = f"SELECT {JOB_COLUMNS} FROM api_jobs WHERE owner = ? ORDER BY created, rowid"
        return [CopyJob(*row) for row in self._db().execute(sql, (owner,))]

    def job_claim(self, holder: str, now: float, lease: float) -> CopyJob | None:
        find = f"SELECT owner, id FROM api_jobs WHERE {CLAIMABLE} ORDER BY created, rowid LIMIT 1"
        if self._db().execute(find, (now, now)).fetchone() is None:
            return None  # the common case, without taking the write lock
        update = (
            "UPDATE api_jobs SET state = 'running', holder = ?, lease = ?, bytes_done = 0, attempts = attempts + 1,"
            " updated = ? WHERE owner = ? AND id = ?"
        )
        with self._transaction() as db:
            row = db.execute(find, (now, now)).fetchone()
            if row is None:
                return None
            db.execute(update, (holder, lease, now, *row))
            found = db.execute(f"SELECT {JOB_COLUMNS} FROM api_jobs WHERE owner = ? AND id = ?", row).fetchone()
        return CopyJob(*found)

    def job_progress(self, owner: str, job_id: str, holder: str, done: int, total: int, lease: float) -> bool:
        sql = (
            "UPDATE api_jobs SET bytes_done = ?, bytes_total = ?, lease = ?, updated = ?"
            " WHERE owner = ? AND id = ? AND holder = ? AND state = 'running'"
        )
        return self._db().execute(sql, (done, total, lease, time.time(), owner, job_id, holder)).rowcount > 0

    def job_release(
        self, owner: str, job_id: str, holder: str, retry_at: float = 0.0, *, uncount: bool = False
    ) -> bool:
        sql = (
            "UPDATE api_jobs SET state = 'queued', holder = '', lease = ?, updated = ?, attempts = attempts - ?"
            " WHERE owner = ? AND id = ? AND holder = ? AND state = 'running'"
        )
        return self._db().execute(sql, (retry_at, time.time(), int(uncount), owner, job_id, holder)).rowcount > 0

    def job_finish(
        self, owner: str, job_id: str, holder: str, *, state: str, error: str, checksum: str, now: float
    ) -> bool:
        sql = (
            "UPDATE api_jobs SET state = ?, error = ?, checksum = ?, holder = '', lease = 0, updated = ?,"
            " hook_state = CASE WHEN webhook <> '' THEN 'pending' ELSE '' END, hook_next = ?"
            " WHERE owner = ? AND id = ? AND holder = ? AND state = 'running'"
        )
        return self._db().execute(sql, (state, error, checksum, now, now, owner, job_id, holder)).rowcount > 0

    def webhook_claim(self, holder: str, now: float, lease: float) -> CopyJob | None:
        find = f"SELECT owner, id FROM api_jobs WHERE {HOOK_DUE} ORDER BY hook_next, rowid LIMIT 1"
        if self._db().execute(find, (now,)).fetchone() is None:
            return None
        with self._transaction() as db:
            row = db.execute(find, (now,)).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE api_jobs SET holder = ?, hook_next = ? WHERE owner = ? AND id = ?", (holder, lease, *row)
            )
            found = db.execute(f"SELECT {JOB_COLUMNS} FROM api_jobs WHERE owner = ? AND id = ?", row).fetchone()
        return CopyJob(*found)

    def webhook_result(self, owner: str, job_id: str, holder: str, *, delivered: bool, retry_at: float | None) -> None:
        state = "delivered" if delivered else ("pending" if retry_at is not None else "failed")
        sql = (
            "UPDATE api_jobs SET hook_state = ?, hook_attempts = hook_attempts + 1, hook_next = ?, holder = ''"
            " WHERE owner = ? AND id = ? AND holder = ? AND hook_state = 'pending'"
        )
        self._db().execute(sql, (state, retry_at or 0.0, owner, job_id, holder))

    def job_purge(self, before: float) -> int:
        sql = "DELETE FROM api_jobs WHERE state IN ('done', 'failed') AND hook_state <> 'pending' AND updated < ?"
        return self._db().execute(sql, (before,)).rowcount

    # --- metadata -------------------------------------------------------------------------------

    def metadata_put(self, owner: str, collection: str, entry_id: str, document: Mapping[str, Any]) -> bool:
        text = document_text(document)
        key = (owner, collection, entry_id)
        with self._transaction() as db:
            sql = "UPDATE api_metadata SET document = ? WHERE owner = ? AND collection = ? AND id = ?"
            if db.execute(sql, (text, *key)).rowcount:
                return False
            db.execute("INSERT INTO api_metadata (owner, collection, id, document) VALUES (?, ?, ?, ?)", (*key, text))
        return True

    def metadata_get(self, owner: str, collection: str, entry_id: str) -> dict[str, Any] | None:
        sql = "SELECT document FROM api_metadata WHERE owner = ? AND collection = ? AND id = ?"
        row = self._db().execute(sql, (owner, collection, entry_id)).fetchone()
        return json.loads(row[0]) if row else None

    def metadata_delete(self, owner: str, collection: str, entry_id: str) -> bool:
        sql = "DELETE FROM api_metadata WHERE owner = ? AND collection = ? AND id = ?"
        return self._db().execute(sql, (owner, collection, entry_id)).rowcount > 0

    def metadata_scan(self, owner: str, collection: str) -> list[tuple[str, dict[str, Any]]]:
        sql = "SELECT id, document FROM api_metadata WHERE owner = ? AND collection = ? ORDER BY id"
        return [(entry_id, json.loads(text)) for entry_id, text in self._db().execute(sql, (owner, collection))]


def _bump(db: sqlite3.Connection) -> None:
    sql = "INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1"
    db.execute(sql, (GENERATION,))


def _upsert(db: sqlite3.Connection, entries: Iterable[IndexEntry]) -> None:
    sql = (
        "INSERT INTO api_index (namespace, adaptor, path, parent, name, is_folder, size, modified, checked)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, adaptor, path) DO UPDATE SET"
        " size = excluded.size, modified = excluded.modified,"
        " checked = CASE WHEN is_folder = excluded.is_folder THEN checked ELSE excluded.checked END,"
        " is_folder = excluded.is_folder"
    )
    db.executemany(sql, _rows(entries))


def _rows(entries: Iterable[IndexEntry]) -> Iterator[tuple[Any, ...]]:
    for e in entries:
        yield (e.namespace, e.adaptor, e.path, e.parent, e.name, int(e.is_folder), e.size, e.modified, e.checked)


def _remove(db: sqlite3.Connection, namespace: str, adaptor: str, path: str) -> None:
    if path == "/":
        db.execute("DELETE FROM api_index WHERE namespace = ? AND adaptor = ?", (namespace, adaptor))
        return
    sql = "DELETE FROM api_index WHERE namespace = ? AND adaptor = ? AND (path = ? OR (path >= ? AND path < ?))"
    db.execute(sql, (namespace, adaptor, path, *_below(path)))
