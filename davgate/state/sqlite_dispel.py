"""DISPEL's records in SQLite: the cache index, single-flight leases and shared counters.

The :class:`~davgate.state.StateStore` methods of that part, as a mixin of
:class:`~davgate.state.sqlite.SqliteStateStore` over its per-thread
connections (``_db()``) and ``BEGIN IMMEDIATE`` transactions
(``_transaction()``); :data:`TABLES` is version 3 of
:data:`davgate.state.sqlite.SCHEMA`. The index keeps the total size of its
entries in the counter :data:`~davgate.state.CACHE_BYTES`, changed in the
same transaction as the entries, so eviction never sums the table.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager

from davgate.state import CACHE_BYTES, CacheEntry, Lease

TABLES = (
    """CREATE TABLE dispel_cache (
        key TEXT PRIMARY KEY, template TEXT NOT NULL, definition TEXT NOT NULL,
        params TEXT NOT NULL, size INTEGER NOT NULL, digest TEXT NOT NULL,
        created REAL NOT NULL, hits INTEGER NOT NULL, last_use REAL NOT NULL) WITHOUT ROWID""",
    "CREATE INDEX dispel_cache_lru ON dispel_cache (last_use)",
    "CREATE INDEX dispel_cache_template ON dispel_cache (template)",
    """CREATE TABLE dispel_leases (
        key TEXT PRIMARY KEY, holder TEXT NOT NULL, expires REAL NOT NULL,
        status INTEGER, reason TEXT NOT NULL) WITHOUT ROWID""",
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
)
CACHE_COLUMNS = "key, template, definition, params, size, digest, created, hits, last_use"


class SqliteDispelRecords:
    """Needs ``_db()`` and ``_transaction()`` from :class:`~davgate.state.sqlite.SqliteStateStore`."""

    def _db(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def cache_get(self, key: str) -> CacheEntry | None:
        row = self._db().execute(f"SELECT {CACHE_COLUMNS} FROM dispel_cache WHERE key = ?", (key,)).fetchone()
        return CacheEntry(*row) if row else None

    def cache_put(self, entry: CacheEntry) -> None:
        with self._transaction() as db:
            old = db.execute("SELECT size FROM dispel_cache WHERE key = ?", (entry.key,)).fetchone()
            sql = f"INSERT OR REPLACE INTO dispel_cache ({CACHE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)"
            db.execute(sql, dataclasses.astuple(entry))
            _add(db, CACHE_BYTES, entry.size - (old[0] if old else 0))

    def cache_touch(self, uses: Mapping[str, tuple[int, float]]) -> None:
        sql = "UPDATE dispel_cache SET hits = hits + ?, last_use = MAX(last_use, ?) WHERE key = ?"
        with self._transaction() as db:
            db.executemany(sql, [(hits, last, key) for key, (hits, last) in uses.items()])

    def cache_remove(self, keys: Iterable[str]) -> None:
        with self._transaction() as db:
            _remove_entries(db, [(key,) for key in keys])

    def cache_evict(self, max_bytes: int) -> list[CacheEntry]:
        if self.counter(CACHE_BYTES) <= max_bytes:
            return []
        with self._transaction() as db:
            excess = _counter(db, CACHE_BYTES) - max_bytes
            removed: list[CacheEntry] = []
            rows = db.execute(f"SELECT {CACHE_COLUMNS} FROM dispel_cache ORDER BY last_use, created")
            for row in rows:
                if excess <= 0:
                    break
                removed.append(CacheEntry(*row))
                excess -= removed[-1].size
            rows.close()
            _remove_entries(db, [(e.key,) for e in removed])
        return removed

    def cache_drop(self, template: str, keep_definition: str) -> list[CacheEntry]:
        sql = f"SELECT {CACHE_COLUMNS} FROM dispel_cache WHERE template = ? AND definition <> ?"
        with self._transaction() as db:
            removed = [CacheEntry(*row) for row in db.execute(sql, (template, keep_definition))]
            _remove_entries(db, [(e.key,) for e in removed])
        return removed

    def cache_entries(self) -> list[CacheEntry]:
        rows = self._db().execute(f"SELECT {CACHE_COLUMNS} FROM dispel_cache ORDER BY last_use, created")
        return [CacheEntry(*row) for row in rows]

    def acquire_lease(self, key: str, holder: str, expires: float) -> Lease:
        now = time.time()
        with self._transaction() as db:
            sql = "SELECT key, holder, expires, status, reason FROM dispel_leases WHERE key = ?"
            row = db.execute(sql, (key,)).fetchone()
            if row and row[1] != holder and row[2] >= now:
                return Lease(*row)
            db.execute("DELETE FROM dispel_leases WHERE expires < ?", (now - 60,))
            sql = (
                "INSERT OR REPLACE INTO dispel_leases (key, holder, expires, status, reason) VALUES (?, ?, ?, NULL, '')"
            )
            db.execute(sql, (key, holder, expires))
        return Lease(key, holder, expires)

    def release_lease(
        self, key: str, holder: str, *, status: int | None = None, reason: str = "", keep: float = 0.0
    ) -> None:
        if status is None or keep <= 0:
            self._db().execute("DELETE FROM dispel_leases WHERE key = ? AND holder = ?", (key, holder))
            return
        sql = "UPDATE dispel_leases SET status = ?, reason = ?, expires = ? WHERE key = ? AND holder = ?"
        self._db().execute(sql, (status, reason, time.time() + keep, key, holder))

    def add_counter(self, name: str, amount: int = 1) -> None:
        _add(self._db(), name, amount)

    def counter(self, name: str) -> int:
        return _counter(self._db(), name)

    def counters(self, prefix: str) -> dict[str, int]:
        sql = "SELECT name, value FROM counters WHERE substr(name, 1, ?) = ?"
        return {name: int(value) for name, value in self._db().execute(sql, (len(prefix), prefix))}


def _add(db: sqlite3.Connection, name: str, amount: int) -> None:
    sql = "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value"
    db.execute(sql, (name, amount))


def _counter(db: sqlite3.Connection, name: str) -> int:
    row = db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else 0


def _remove_entries(db: sqlite3.Connection, keys: list[tuple[str]]) -> None:
    """Delete index entries (inside a transaction) and keep the running total right."""
    if not keys:
        return
    freed = 0
    for (key,) in keys:
        row = db.execute("DELETE FROM dispel_cache WHERE key = ? RETURNING size", (key,)).fetchone()
        freed += row[0] if row else 0
    _add(db, CACHE_BYTES, -freed)
