"""Content digests (RFC 3230) of the newest version of each path: one row per algorithm.

Storing digests drops those of the path's other versions in the same
transaction, under an advisory lock on the path
(:data:`~davgate.state.postgres.schema.DIGESTS`, keyed by its hash), so two
processes storing two versions at once leave one version's digests, never
a mix; digests of one version stored at once all stay.
"""

from __future__ import annotations

from collections.abc import Mapping

from davgate.state.postgres.connection import PostgresConnection
from davgate.state.postgres.schema import DIGESTS

UPSERT = (
    "INSERT INTO digests (path, etag, algorithm, value) VALUES (%s, %s, %s, %s)"
    " ON CONFLICT (path, etag, algorithm) DO UPDATE SET value = excluded.value"
)


class DigestsMixin(PostgresConnection):
    def get_digests(self, path: str, etag: str) -> dict[str, str]:
        with self._connection() as db:
            rows = db.execute("SELECT algorithm, value FROM digests WHERE path = %s AND etag = %s", (path, etag))
            return dict(rows.fetchall())

    def put_digests(self, path: str, etag: str, digests: Mapping[str, str]) -> None:
        with self._transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (DIGESTS, path))
            db.execute("DELETE FROM digests WHERE path = %s AND etag <> %s", (path, etag))
            with db.cursor() as cursor:
                cursor.executemany(UPSERT, [(path, etag, name, value) for name, value in digests.items()])
