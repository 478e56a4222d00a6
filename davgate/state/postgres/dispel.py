"""The DISPEL cache index, single-flight leases and shared counters in PostgreSQL.

The index keeps the total size of its entries in the counter
:data:`~davgate.state.CACHE_BYTES`, changed in the same transaction as the
entries, so eviction never sums the table. Removing entries is ``DELETE ...
RETURNING``: a row is deleted (and its size counted) by one process only.
Evicting processes queue on an advisory lock
(:data:`~davgate.state.postgres.schema.EVICTION`), so each sees the total
the one before left and together they free just enough. A lease changes
hands by one conditional upsert (compare and set on holder and expiry).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg

from davgate.state import CACHE_BYTES, CacheEntry, Lease
from davgate.state.postgres.connection import PostgresConnection
from davgate.state.postgres.schema import EVICTION

COLUMNS = "key, template, definition, params, size, digest, created, hits, last_use"
QUALIFIED = ", ".join(f"d.{name}" for name in COLUMNS.split(", "))
LEASE_COLUMNS = "key, holder, expires, status, reason"
LRU = "ORDER BY last_use, created"
# Rows are locked in key order by every call that locks several, so two calls never wait for each other in a circle.
IN_KEY_ORDER = "key = ANY(%s::text[]) ORDER BY key"
EVICT_BATCH = 100  # entries read at a time while choosing what to evict
LEASE_LITTER = 60.0  # seconds an ended lease is kept before any acquire removes it


class DispelMixin(PostgresConnection):
    def cache_get(self, key: str) -> CacheEntry | None:
        with self._connection() as db:
            row = db.execute(f"SELECT {COLUMNS} FROM dispel_cache WHERE key = %s", (key,)).fetchone()
        return CacheEntry(*row) if row else None

    def cache_put(self, entry: CacheEntry) -> None:
        placeholders = ", ".join(["%s"] * 9)
        with self._transaction() as db:
            while True:  # a racing put of the same key: lock its row once it exists
                old = db.execute("SELECT size FROM dispel_cache WHERE key = %s FOR UPDATE", (entry.key,)).fetchone()
                if old is not None:
                    db.execute(
                        f"UPDATE dispel_cache SET ({COLUMNS}) = ({placeholders}) WHERE key = %s",
                        (*dataclasses.astuple(entry), entry.key),
                    )
                    break
                sql = f"INSERT INTO dispel_cache ({COLUMNS}) VALUES ({placeholders}) ON CONFLICT (key) DO NOTHING"
                if db.execute(sql, dataclasses.astuple(entry)).rowcount:
                    break
            _add(db, CACHE_BYTES, entry.size - (old[0] if old else 0))

    def cache_touch(self, uses: Mapping[str, tuple[int, float]]) -> None:
        if not uses:
            return
        keys = sorted(uses)
        update = (
            "UPDATE dispel_cache AS d SET hits = d.hits + u.hits, last_use = GREATEST(d.last_use, u.last_use)"
            " FROM unnest(%s::text[], %s::bigint[], %s::float8[]) AS u (key, hits, last_use) WHERE d.key = u.key"
        )
        with self._transaction() as db:
            db.execute(f"SELECT FROM dispel_cache WHERE {IN_KEY_ORDER} FOR UPDATE", (keys,))  # no deadlock
            db.execute(update, (keys, [uses[key][0] for key in keys], [uses[key][1] for key in keys]))

    def cache_remove(self, keys: Iterable[str]) -> None:
        with self._transaction() as db:
            _remove(db, IN_KEY_ORDER, (list(keys),))

    def cache_evict(self, max_bytes: int) -> list[CacheEntry]:
        if self.counter(CACHE_BYTES) <= max_bytes:
            return []
        with self._transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s, 0)", (EVICTION,))
            excess = _counter(db, CACHE_BYTES) - max_bytes
            chosen: list[str] = []
            while excess > 0:
                sql = f"SELECT key, size FROM dispel_cache {LRU} LIMIT %s OFFSET %s"
                batch = db.execute(sql, (EVICT_BATCH, len(chosen))).fetchall()
                if not batch:
                    break
                for key, size in batch:
                    if excess <= 0:
                        break
                    chosen.append(key)
                    excess -= size
            removed = _remove(db, IN_KEY_ORDER, (chosen,))
        return sorted(removed, key=lambda entry: (entry.last_use, entry.created))

    def cache_drop(self, template: str, keep_definition: str) -> list[CacheEntry]:
        with self._transaction() as db:
            return _remove(db, "template = %s AND definition <> %s ORDER BY key", (template, keep_definition))

    def cache_entries(self) -> list[CacheEntry]:
        with self._connection() as db:
            return [CacheEntry(*row) for row in db.execute(f"SELECT {COLUMNS} FROM dispel_cache {LRU}")]

    def acquire_lease(self, key: str, holder: str, expires: float) -> Lease:
        take = (
            f"INSERT INTO dispel_leases ({LEASE_COLUMNS}) VALUES (%(key)s, %(holder)s, %(expires)s, NULL, '')"
            " ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires = excluded.expires, status = NULL, reason = ''"
            f" WHERE dispel_leases.holder = excluded.holder OR dispel_leases.expires < %(now)s RETURNING {LEASE_COLUMNS}"
        )
        with self._connection() as db:
            now = time.time()
            db.execute("DELETE FROM dispel_leases WHERE expires < %s", (now - LEASE_LITTER,))
            while True:
                row = db.execute(take, {"key": key, "holder": holder, "expires": expires, "now": now}).fetchone()
                if row is None:  # someone else holds a live lease
                    row = db.execute(f"SELECT {LEASE_COLUMNS} FROM dispel_leases WHERE key = %s", (key,)).fetchone()
                if row is not None:
                    return Lease(*row)
                now = time.time()  # released meanwhile: try again

    def release_lease(
        self, key: str, holder: str, *, status: int | None = None, reason: str = "", keep: float = 0.0
    ) -> None:
        with self._connection() as db:
            if status is None or keep <= 0:
                db.execute("DELETE FROM dispel_leases WHERE key = %s AND holder = %s", (key, holder))
                return
            sql = "UPDATE dispel_leases SET status = %s, reason = %s, expires = %s WHERE key = %s AND holder = %s"
            db.execute(sql, (status, reason, time.time() + keep, key, holder))

    def add_counter(self, name: str, amount: int = 1) -> None:
        with self._connection() as db:
            _add(db, name, amount)

    def counter(self, name: str) -> int:
        with self._connection() as db:
            return _counter(db, name)

    def counters(self, prefix: str) -> dict[str, int]:
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self._connection() as db:
            return {
                name: int(value)
                for name, value in db.execute("SELECT name, value FROM counters WHERE name LIKE %s", (like,))
            }


def _add(db: psycopg.Connection, name: str, amount: int) -> None:
    sql = (
        "INSERT INTO counters (name, value) VALUES (%s, %s)"
        " ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value"
    )
    db.execute(sql, (name, amount))


def _counter(db: psycopg.Connection, name: str) -> int:
    row = db.execute("SELECT value FROM counters WHERE name = %s", (name,)).fetchone()
    return int(row[0]) if row else 0


def _remove(db: psycopg.Connection, where: str, params: tuple[Any, ...]) -> list[CacheEntry]:
    """Delete the index entries ``where`` selects (locked in its order), keep the running total right; return them."""
    sql = (
        f"WITH doomed AS (SELECT key FROM dispel_cache WHERE {where} FOR UPDATE)"
        f" DELETE FROM dispel_cache AS d USING doomed WHERE d.key = doomed.key RETURNING {QUALIFIED}"
    )
    removed = [CacheEntry(*row) for row in db.execute(sql, params)]
    freed = sum(entry.size for entry in removed)
    if freed:
        _add(db, CACHE_BYTES, -freed)
    return removed
