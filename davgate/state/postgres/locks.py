"""WebDAV write locks in PostgreSQL: one row per lock, granted under one advisory lock.

A new lock conflicts with locks on its root, on its ancestors (depth
infinity) and, for depth infinity, below it: rows that do not exist yet
cannot be row-locked, so granting takes a transaction-scoped advisory lock
(:data:`~davgate.state.postgres.schema.LOCK_GRANTS`) around the check and
the insert. Of two processes granting at once, the second checks after the
first committed, and sees its lock. Reads take no lock. A subtree is a
range of ``root`` (``COLLATE "C"``), which the ``locks_root`` index answers.
Expiry compares stored times with the caller's clock, as WsgiDAV's own
lock storage does.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import psycopg

from davgate.state import LockConflict, LockRecord, keys
from davgate.state.postgres.connection import PostgresConnection
from davgate.state.postgres.schema import LOCK_GRANTS

COLUMNS = "token, root, type, scope, depth, owner, principal, timeout, expire"
LIVE = "(expire < 0 OR expire >= %(now)s)"
# LIVE as two probes of the expire index, each stopping at its first row
ANY_LIVE = "SELECT EXISTS (SELECT FROM locks WHERE expire < 0) OR EXISTS (SELECT FROM locks WHERE expire >= %(now)s)"


class LocksMixin(PostgresConnection):
    def create_lock(self, lock: LockRecord) -> None:
        with self._transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_GRANTS,))
            _purge(db, time.time())
            conflicts = _conflicting_roots(db, lock)
            if conflicts:
                raise LockConflict(lock.root, conflicts)
            db.execute(f"INSERT INTO locks ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", _row(lock))

    def get_lock(self, token: str) -> LockRecord | None:
        with self._connection() as db:
            row = db.execute(
                f"SELECT {COLUMNS} FROM locks WHERE token = %(token)s AND {LIVE}", _at(token=token)
            ).fetchone()
        return _record(row) if row else None

    def refresh_lock(self, token: str, *, timeout: float, expire: float) -> LockRecord | None:
        sql = f"UPDATE locks SET timeout = %(timeout)s, expire = %(expire)s WHERE token = %(token)s AND {LIVE} RETURNING {COLUMNS}"
        with self._connection() as db:
            row = db.execute(sql, _at(token=token, timeout=timeout, expire=expire)).fetchone()
        return _record(row) if row else None

    def delete_lock(self, token: str) -> bool:
        with self._transaction() as db:
            _purge(db, time.time())
            return db.execute("DELETE FROM locks WHERE token = %s", (token,)).rowcount > 0

    def list_locks(self, root: str, *, include_root: bool, include_children: bool) -> list[LockRecord]:
        clauses: list[str] = []
        if include_root:
            clauses.append("root = %(root)s")
        if include_children:
            clauses.append("(root >= %(low)s AND root < %(high)s AND root <> %(root)s)")
        if not clauses:
            return []
        low, high = keys.subtree(root)
        sql = f"SELECT {COLUMNS} FROM locks WHERE ({' OR '.join(clauses)}) AND {LIVE} ORDER BY seq"
        with self._connection() as db:
            rows = db.execute(sql, _at(root=root, low=low, high=high)).fetchall()
        return [_record(row) for row in rows]

    def any_live_lock(self) -> bool:
        with self._connection() as db:
            return bool(db.execute(ANY_LIVE, _at()).fetchone()[0])  # type: ignore[index]

    def purge_expired_locks(self) -> int:
        with self._connection() as db:
            return _purge(db, time.time())

    def clear_locks(self) -> None:
        with self._connection() as db:
            db.execute("DELETE FROM locks")


def _at(**params: Any) -> dict[str, Any]:
    """Query parameters with ``now``, the caller's clock, for :data:`LIVE`."""
    return {"now": time.time(), **params}


def _row(lock: LockRecord) -> tuple[Any, ...]:
    return dataclasses.astuple(lock)


def _record(row: tuple[Any, ...]) -> LockRecord:
    token, root, type_, scope, depth, owner, *rest = row
    return LockRecord(token, root, type_, scope, depth, bytes(owner), *rest)


def _purge(db: psycopg.Connection, now: float) -> int:
    return db.execute("DELETE FROM locks WHERE expire >= 0 AND expire < %s", (now,)).rowcount


def _conflicting_roots(db: psycopg.Connection, lock: LockRecord) -> list[str]:
    """Roots of stored locks that overlap ``lock`` and are not both shared (expired ones were purged)."""
    overlap = ["root = %(root)s", "(depth = 'infinity' AND root = ANY(%(ancestors)s::text[]))"]
    if lock.depth == "infinity":
        overlap.append("(root >= %(low)s AND root < %(high)s)")
    low, high = keys.subtree(lock.root)
    shared = " AND scope = 'exclusive'" if lock.scope == "shared" else ""
    sql = f"SELECT DISTINCT root FROM locks WHERE ({' OR '.join(overlap)}){shared} ORDER BY root"
    params = {"root": lock.root, "ancestors": keys.ancestors(lock.root), "low": low, "high": high}
    return [root for (root,) in db.execute(sql, params)]
