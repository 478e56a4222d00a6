"""The PostgreSQL store's tables, version by version, and the migration that applies them.

``SCHEMA[n]`` brings a database from version ``n`` to ``n + 1``; the version
is the one row of ``davgate_schema``. New record kinds append a version; old
ones never change. Every davgate that opens the store migrates it, in one
transaction under an advisory lock, so replicas starting together apply
each version once, and a failed migration leaves the previous version whole.

Paths and other keys compared as ranges (a subtree is ``lo <= key < hi``,
see :mod:`davgate.state.keys`) are ``COLLATE "C"``: byte order, as in
Python, SQLite and MongoDB, whatever the database's own collation is.
"""

from __future__ import annotations

import psycopg

from davgate.state import StateStoreError

KEY = 'TEXT COLLATE "C" NOT NULL'

SCHEMA: tuple[tuple[str, ...], ...] = (
    (  # 1: locks, dead properties, SSH host keys, DISPEL's records, content digests
        f"""CREATE TABLE locks (
            token TEXT PRIMARY KEY, root {KEY}, type TEXT NOT NULL, scope TEXT NOT NULL,
            depth TEXT NOT NULL, owner BYTEA NOT NULL, principal TEXT NOT NULL,
            timeout DOUBLE PRECISION NOT NULL, expire DOUBLE PRECISION NOT NULL,
            seq BIGINT GENERATED ALWAYS AS IDENTITY)""",
        "CREATE INDEX locks_root ON locks (root)",
        "CREATE INDEX locks_expire ON locks (expire)",
        f"""CREATE TABLE properties (
            url {KEY}, name {KEY}, value BYTEA NOT NULL, is_text BOOLEAN NOT NULL,
            PRIMARY KEY (url, name))""",
        """CREATE TABLE ssh_host_keys (
            host TEXT NOT NULL, port INTEGER NOT NULL, key_type TEXT NOT NULL, key_b64 TEXT NOT NULL,
            pinned DOUBLE PRECISION NOT NULL, PRIMARY KEY (host, port))""",
        """CREATE TABLE dispel_cache (
            key TEXT PRIMARY KEY, template TEXT NOT NULL, definition TEXT NOT NULL, params TEXT NOT NULL,
            size BIGINT NOT NULL, digest TEXT NOT NULL, created DOUBLE PRECISION NOT NULL,
            hits BIGINT NOT NULL, last_use DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX dispel_cache_lru ON dispel_cache (last_use, created)",
        "CREATE INDEX dispel_cache_template ON dispel_cache (template)",
        """CREATE TABLE dispel_leases (
            key TEXT PRIMARY KEY, holder TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL,
            status INTEGER, reason TEXT NOT NULL)""",
        "CREATE INDEX dispel_leases_expires ON dispel_leases (expires)",
        f"CREATE TABLE counters (name {KEY} PRIMARY KEY, value BIGINT NOT NULL)",
        f"""CREATE TABLE digests (
            path {KEY}, etag TEXT NOT NULL, algorithm TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (path, etag, algorithm))""",
    ),
    (  # 2: the management API: users, infrastructures, the query index, copy jobs, metadata
        "CREATE TABLE api_users (email TEXT PRIMARY KEY, name TEXT NOT NULL, created DOUBLE PRECISION NOT NULL)",
        f"""CREATE TABLE api_infrastructures (
            name {KEY} PRIMARY KEY, owner TEXT NOT NULL, spec TEXT NOT NULL, created DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX api_infrastructures_owner ON api_infrastructures (owner, name)",
        f"""CREATE TABLE api_index (
            namespace {KEY}, adaptor {KEY}, path {KEY}, parent {KEY}, name {KEY},
            is_folder BOOLEAN NOT NULL, size BIGINT NOT NULL, modified DOUBLE PRECISION NOT NULL,
            checked DOUBLE PRECISION NOT NULL, PRIMARY KEY (namespace, adaptor, path))""",
        "CREATE INDEX api_index_parent ON api_index (namespace, adaptor, parent)",
        "CREATE INDEX api_index_files ON api_index (namespace, name, adaptor, path) WHERE NOT is_folder",
        "CREATE INDEX api_index_stale ON api_index (namespace, adaptor, checked, path) WHERE is_folder",
        f"""CREATE TABLE api_jobs (
            owner {KEY}, id {KEY}, source TEXT NOT NULL, target TEXT NOT NULL, route TEXT NOT NULL,
            webhook TEXT NOT NULL, state TEXT NOT NULL, bytes_done BIGINT NOT NULL, bytes_total BIGINT NOT NULL,
            error TEXT NOT NULL, checksum TEXT NOT NULL, created DOUBLE PRECISION NOT NULL,
            updated DOUBLE PRECISION NOT NULL, holder TEXT NOT NULL, lease DOUBLE PRECISION NOT NULL,
            attempts INTEGER NOT NULL, hook_state TEXT NOT NULL, hook_attempts INTEGER NOT NULL,
            hook_next DOUBLE PRECISION NOT NULL, seq BIGINT GENERATED ALWAYS AS IDENTITY,
            PRIMARY KEY (owner, id))""",
        "CREATE INDEX api_jobs_owner ON api_jobs (owner, created, seq)",
        "CREATE INDEX api_jobs_queue ON api_jobs (created, seq) WHERE state IN ('queued', 'running')",
        "CREATE INDEX api_jobs_hooks ON api_jobs (hook_next, seq) WHERE hook_state = 'pending'",
        "CREATE INDEX api_jobs_final ON api_jobs (updated) WHERE state IN ('done', 'failed')",
        f"""CREATE TABLE api_metadata (
            owner {KEY}, collection {KEY}, id {KEY}, document TEXT NOT NULL,
            PRIMARY KEY (owner, collection, id))""",
    ),
    (  # 3: infrastructures' ids (a record of version 2 takes its name as id; see InfraRecord)
        "ALTER TABLE api_infrastructures ADD COLUMN id TEXT NOT NULL DEFAULT ''",
        "UPDATE api_infrastructures SET id = name WHERE id = ''",
        "ALTER TABLE api_infrastructures ALTER COLUMN id DROP DEFAULT",
    ),
)

VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS davgate_schema ("
    " one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one), version INTEGER NOT NULL)"
)
# Advisory locks, as the first key of pg_advisory_xact_lock(int, int): one list, so none collide.
MIGRATION, LOCK_GRANTS, EVICTION, DIGESTS = (0x64670000 + n for n in range(4))


def migrate(db: psycopg.Connection, name: str, schema: tuple[tuple[str, ...], ...] = SCHEMA) -> int:
    """Bring the database to ``len(schema)``, in one transaction; return the version it had.

    ``name`` names the store in errors. ``schema`` is :data:`SCHEMA`, or a
    prefix of it (a test making a database of an older davgate).
    """
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s, 0)", (MIGRATION,))
        db.execute(VERSION_TABLE)
        row = db.execute("SELECT version FROM davgate_schema").fetchone()
        version = row[0] if row else 0
        if version > len(SCHEMA):
            raise StateStoreError(
                f"state store {name} has schema version {version}; this davgate knows up to {len(SCHEMA)}"
            )
        for statements in schema[version:]:
            for statement in statements:
                db.execute(statement)
        if version < len(schema):
            db.execute(
                "INSERT INTO davgate_schema (version) VALUES (%s) ON CONFLICT (one) DO UPDATE SET version = excluded.version",
                (len(schema),),
            )
    return version
