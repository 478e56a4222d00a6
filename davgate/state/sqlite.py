"""SQLite state store: one WAL-mode file shared by the davgate processes of a host.

Every call reads or writes the file; nothing is cached in memory, so what one
process writes the next call in any other process sees. Writes that read
first (granting a lock, moving properties) run in ``BEGIN IMMEDIATE``
transactions, which take SQLite's single write lock up front: two processes
cannot both see "no conflicting lock" and both insert one. A busy database
makes callers wait (``busy_timeout``), not fail.

WAL needs shared memory, so the file must be on a local filesystem; processes
on different hosts need a networked backend.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from davgate.state import (
    HostKey,
    LockConflict,
    LockRecord,
    PropertyValue,
    StateStore,
    StateStoreError,
    StoreBusy,
    keys,
)
from davgate.state.sqlite_api import IDENTITIES as API_IDENTITIES
from davgate.state.sqlite_api import TABLES as API_TABLES
from davgate.state.sqlite_api import SqliteApiRecords
from davgate.state.sqlite_dispel import TABLES as DISPEL_TABLES
from davgate.state.sqlite_dispel import SqliteDispelRecords

# SCHEMA[n] brings the file from version n to n + 1 (kept in PRAGMA
# user_version). New record kinds append a version; old ones never change.
SCHEMA: tuple[tuple[str, ...], ...] = (
    (  # 1: locks and dead properties
        """CREATE TABLE locks (
            token TEXT PRIMARY KEY, root TEXT NOT NULL, type TEXT NOT NULL,
            scope TEXT NOT NULL, depth TEXT NOT NULL, owner BLOB NOT NULL,
            principal TEXT NOT NULL, timeout REAL NOT NULL, expire REAL NOT NULL)""",
        "CREATE INDEX locks_root ON locks (root)",
        "CREATE INDEX locks_expire ON locks (expire)",
        """CREATE TABLE properties (
            url TEXT NOT NULL, name TEXT NOT NULL, value NOT NULL,
            PRIMARY KEY (url, name)) WITHOUT ROWID""",
    ),
    (  # 2: SSH host keys pinned on first use
        """CREATE TABLE ssh_host_keys (
            host TEXT NOT NULL, port INTEGER NOT NULL, key_type TEXT NOT NULL,
            key_b64 TEXT NOT NULL, pinned REAL NOT NULL, PRIMARY KEY (host, port))""",
    ),
    DISPEL_TABLES,  # 3: DISPEL cache index, single-flight leases, shared counters
    (  # 4: content digests (RFC 3230) of the newest version of each path
        """CREATE TABLE digests (
            path TEXT NOT NULL, etag TEXT NOT NULL, algorithm TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (path, etag, algorithm)) WITHOUT ROWID""",
    ),
    API_TABLES,  # 5: the management API: users, infrastructures, query index, copy jobs, metadata
    API_IDENTITIES,  # 6: infrastructures' ids (a record of version 5 takes its name as id)
)

LOCK_COLUMNS = "token, root, type, scope, depth, owner, principal, timeout, expire"
LIVE = "(expire < 0 OR expire >= ?)"


@contextmanager
def _waited() -> Iterator[None]:
    """SQLite's busy and locked errors, which come only after ``timeout``, as :class:`StoreBusy`."""
    try:
        yield
    except sqlite3.OperationalError as error:
        if getattr(error, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise StoreBusy(f"the state store stayed busy past its busy_timeout ({error})") from error
        raise


class _WaitingConnection(sqlite3.Connection):
    """A connection whose statements raise :class:`StoreBusy` once ``busy_timeout`` has run out."""

    def execute(self, *args):  # type: ignore[override]
        with _waited():
            return super().execute(*args)

    def executemany(self, *args):  # type: ignore[override]
        with _waited():
            return super().executemany(*args)


class SqliteStateStore(SqliteApiRecords, SqliteDispelRecords, StateStore):
    """Locks and dead properties in the SQLite file at ``path``.

    cheroot serves requests on many threads, and an sqlite3 connection must
    not be shared between concurrent users, so each thread gets its own. Only
    that thread ever closes it: :meth:`close` closes the caller's connection,
    and every other thread closes its own on its next call (or the connection
    goes with the thread). Closing a connection another thread is in the
    middle of using crashes the process.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._closed = False
        self._pid = os.getpid()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    # --- connections and transactions ---------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._closed:
            self._close_own()
            raise StateStoreError(f"state store {self.path} is closed")
        if os.getpid() != self._pid:  # SQLite connections must not cross fork()
            raise StateStoreError(f"state store {self.path} was opened before fork; open it per worker")
        db = getattr(self._local, "connection", None)
        if db is None:
            db = self._local.connection = self._connect()
        return db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            factory=_WaitingConnection,
        )
        mode = self._set_wal(db)
        if mode.lower() != "wal":
            db.close()
            raise StateStoreError(f"state store {self.path}: cannot use WAL mode (got {mode!r})")
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    def _set_wal(self, db: sqlite3.Connection) -> str:
        """Switch to WAL; another process doing the same may hold the file briefly."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                return db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except StoreBusy:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold SQLite's write lock from the first read to the commit."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(SCHEMA):
                raise StateStoreError(
                    f"state store {self.path} has schema version {version}; this davgate knows up to {len(SCHEMA)}"
                )
            for statements in SCHEMA[version:]:
                for statement in statements:
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {len(SCHEMA)}")

    def close(self) -> None:
        self._closed = True
        self._close_own()

    def _close_own(self) -> None:
        db = self._local.__dict__.pop("connection", None)
        if db is not None:
            db.close()

    # --- locks ------------------------------------------------------------------

    def create_lock(self, lock: LockRecord) -> None:
        with self._transaction() as db:
            _purge(db, time.time())
            conflicts = _conflicting_roots(db, lock)
            if conflicts:
                raise LockConflict(lock.root, conflicts)
            db.execute(f"INSERT INTO locks ({LOCK_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", _row(lock))

    def get_lock(self, token: str) -> LockRecord | None:
        sql = f"SELECT {LOCK_COLUMNS} FROM locks WHERE token = ? AND {LIVE}"
        row = self._db().execute(sql, (token, time.time())).fetchone()
        return LockRecord(*row) if row else None

    def refresh_lock(self, token: str, *, timeout: float, expire: float) -> LockRecord | None:
        with self._transaction() as db:
            sql = f"UPDATE locks SET timeout = ?, expire = ? WHERE token = ? AND {LIVE}"
            if db.execute(sql, (timeout, expire, token, time.time())).rowcount == 0:
                return None
            row = db.execute(f"SELECT {LOCK_COLUMNS} FROM locks WHERE token = ?", (token,)).fetchone()
        return LockRecord(*row)

    def delete_lock(self, token: str) -> bool:
        with self._transaction() as db:
            _purge(db, time.time())
            return db.execute("DELETE FROM locks WHERE token = ?", (token,)).rowcount > 0

    def list_locks(self, root: str, *, include_root: bool, include_children: bool) -> list[LockRecord]:
        clauses: list[str] = []
        params: list[object] = []
        if include_root:
            clauses.append("root = ?")
            params.append(root)
        if include_children:
            clauses.append("(root >= ? AND root < ? AND root <> ?)")
            params.extend([*keys.subtree(root), root])
        if not clauses:
            return []
        sql = f"SELECT {LOCK_COLUMNS} FROM locks WHERE ({' OR '.join(clauses)}) AND {LIVE} ORDER BY rowid"
        rows = self._db().execute(sql, (*params, time.time())).fetchall()
        return [LockRecord(*row) for row in rows]

    def any_live_lock(self) -> bool:
        return self._db().execute(f"SELECT 1 FROM locks WHERE {LIVE} LIMIT 1", (time.time(),)).fetchone() is not None

    def purge_expired_locks(self) -> int:
        with self._transaction() as db:
            return _purge(db, time.time())

    def clear_locks(self) -> None:
        self._db().execute("DELETE FROM locks")

    # --- dead properties ----------------------------------------------------------

    def property_names(self, url: str) -> list[str]:
        rows = self._db().execute("SELECT name FROM properties WHERE url = ? ORDER BY name", (url,))
        return [name for (name,) in rows]

    def get_property(self, url: str, name: str) -> PropertyValue | None:
        sql = "SELECT value FROM properties WHERE url = ? AND name = ?"
        row = self._db().execute(sql, (url, name)).fetchone()
        return row[0] if row else None

    def properties_of(self, urls: Sequence[str]) -> dict[str, dict[str, PropertyValue]]:
        found: dict[str, dict[str, PropertyValue]] = {}
        for start in range(0, len(urls), keys.IN_BATCH):
            batch = urls[start : start + keys.IN_BATCH]
            sql = f"SELECT url, name, value FROM properties WHERE url IN ({', '.join('?' * len(batch))})"
            for url, name, value in self._db().execute(sql, batch):
                found.setdefault(url, {})[name] = value
        return found

    def set_property(self, url: str, name: str, value: PropertyValue) -> None:
        if not isinstance(value, (bytes, str)):
            raise TypeError(f"property value must be bytes or str, not {type(value).__name__}")
        sql = "INSERT OR REPLACE INTO properties (url, name, value) VALUES (?, ?, ?)"
        self._db().execute(sql, (url, name, value))

    def remove_property(self, url: str, name: str) -> None:
        self._db().execute("DELETE FROM properties WHERE url = ? AND name = ?", (url, name))

    def remove_properties(self, url: str, *, with_children: bool = False) -> None:
        if not with_children:
            self._db().execute("DELETE FROM properties WHERE url = ?", (url,))
            return
        base = url.rstrip("/")
        self._db().execute(
            "DELETE FROM properties WHERE url = ? OR (url >= ? AND url < ?)", (base, *keys.subtree(base))
        )

    def copy_properties(self, src: str, dest: str) -> None:
        if src == dest:
            return
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM properties WHERE url = ? LIMIT 1", (src,)).fetchone():
                db.execute("DELETE FROM properties WHERE url = ?", (dest,))
                sql = "INSERT INTO properties (url, name, value) SELECT ?, name, value FROM properties WHERE url = ?"
                db.execute(sql, (dest, src))

    def move_properties(self, src: str, dest: str, *, with_children: bool) -> None:
        if src == dest:
            return
        where, params = ("url = ?", [src])
        if with_children:
            base = src.rstrip("/")
            where, params = "(url = ? OR (url >= ? AND url < ?))", [base, *keys.subtree(base)]
        with self._transaction() as db:
            rows = db.execute(f"SELECT url, name, value FROM properties WHERE {where}", params).fetchall()
            if not rows:
                return
            db.execute(f"DELETE FROM properties WHERE {where}", params)
            moved = [(keys.moved(url, src, dest), name, value) for url, name, value in rows]
            db.executemany("DELETE FROM properties WHERE url = ?", {(url,) for url, _, _ in moved})
            db.executemany("INSERT INTO properties (url, name, value) VALUES (?, ?, ?)", moved)

    # --- SSH host keys ----------------------------------------------------------------

    def get_host_key(self, host: str, port: int) -> HostKey | None:
        sql = "SELECT host, port, key_type, key_b64, pinned FROM ssh_host_keys WHERE host = ? AND port = ?"
        row = self._db().execute(sql, (host, port)).fetchone()
        return HostKey(*row) if row else None

    def pin_host_key(self, host: str, port: int, key_type: str, key_b64: str) -> bool:
        sql = "INSERT OR IGNORE INTO ssh_host_keys (host, port, key_type, key_b64, pinned) VALUES (?, ?, ?, ?, ?)"
        return self._db().execute(sql, (host, port, key_type, key_b64, time.time())).rowcount > 0

    def forget_host_key(self, host: str, port: int) -> bool:
        sql = "DELETE FROM ssh_host_keys WHERE host = ? AND port = ?"
        return self._db().execute(sql, (host, port)).rowcount > 0

    # --- content digests ------------------------------------------------------------------

    def get_digests(self, path: str, etag: str) -> dict[str, str]:
        sql = "SELECT algorithm, value FROM digests WHERE path = ? AND etag = ?"
        return dict(self._db().execute(sql, (path, etag)).fetchall())

    def put_digests(self, path: str, etag: str, digests: Mapping[str, str]) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM digests WHERE path = ? AND etag <> ?", (path, etag))
            sql = "INSERT OR REPLACE INTO digests (path, etag, algorithm, value) VALUES (?, ?, ?, ?)"
            db.executemany(sql, [(path, etag, name, value) for name, value in digests.items()])


def _row(lock: LockRecord) -> tuple[object, ...]:
    return dataclasses.astuple(lock)


def _purge(db: sqlite3.Connection, now: float) -> int:
    return db.execute("DELETE FROM locks WHERE expire >= 0 AND expire < ?", (now,)).rowcount


def _conflicting_roots(db: sqlite3.Connection, lock: LockRecord) -> list[str]:
    """Roots of stored locks that overlap ``lock`` and are not both shared."""
    ancestors = keys.ancestors(lock.root)
    overlap = ["root = ?"]
    params: list[object] = [lock.scope, lock.root]
    if ancestors:
        overlap.append(f"(depth = 'infinity' AND root IN ({','.join('?' * len(ancestors))}))")
        params.extend(ancestors)
    if lock.depth == "infinity":
        overlap.append("(root >= ? AND root < ? AND root <> ?)")
        params.extend([*keys.subtree(lock.root), lock.root])
    sql = (
        "SELECT DISTINCT root FROM locks WHERE NOT (scope = 'shared' AND ? = 'shared')"
        f" AND ({' OR '.join(overlap)}) ORDER BY root"
    )
    return [root for (root,) in db.execute(sql, params)]
