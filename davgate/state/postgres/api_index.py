"""The management API's query index in PostgreSQL: one row per file or folder.

Keyed by namespace, adaptor and path (``COLLATE "C"``, so a subtree is a
range of the key); ``parent`` and ``name`` are stored beside the path, so a
folder's members and a base name are each one indexed query. Syncing a
folder is one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import psycopg

from davgate.state import keys
from davgate.state.api_records import IndexEntry
from davgate.state.postgres.connection import PostgresConnection

COLUMNS = "namespace, adaptor, path, is_folder, size, modified, checked"
UPSERT = (
    "INSERT INTO api_index (namespace, adaptor, path, parent, name, is_folder, size, modified, checked)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (namespace, adaptor, path) DO UPDATE SET"
    " size = excluded.size, modified = excluded.modified,"
    " checked = CASE WHEN api_index.is_folder = excluded.is_folder THEN api_index.checked ELSE excluded.checked END,"
    " is_folder = excluded.is_folder"
)


class IndexMixin(PostgresConnection):
    def index_put(self, entries: Iterable[IndexEntry]) -> None:
        with self._transaction() as db:
            _upsert(db, entries)

    def index_remove(self, namespace: str, adaptor: str, path: str) -> None:
        with self._connection() as db:
            _remove(db, namespace, adaptor, path)

    def index_sync_folder(
        self, namespace: str, adaptor: str, folder: str, members: Iterable[IndexEntry], checked: float
    ) -> None:
        wanted = {entry.path: entry for entry in members}
        sql = "SELECT path, is_folder FROM api_index WHERE namespace = %s AND adaptor = %s AND parent = %s FOR UPDATE"
        with self._transaction() as db:
            for path, is_folder in db.execute(sql, (namespace, adaptor, folder)).fetchall():
                entry = wanted.get(path)
                if entry is None or entry.is_folder != is_folder:
                    _remove(db, namespace, adaptor, path)
            _upsert(db, [*wanted.values(), IndexEntry(namespace, adaptor, folder, True, checked=checked)])
            sql = "UPDATE api_index SET checked = %s WHERE namespace = %s AND adaptor = %s AND path = %s"
            db.execute(sql, (checked, namespace, adaptor, folder))

    def index_stale_folders(self, namespace: str, adaptor: str, before: float, limit: int) -> list[str]:
        sql = (
            "SELECT path FROM api_index WHERE namespace = %s AND adaptor = %s AND is_folder AND checked < %s"
            " ORDER BY checked, path LIMIT %s"
        )
        with self._connection() as db:
            return [path for (path,) in db.execute(sql, (namespace, adaptor, before, limit if limit >= 0 else None))]

    def index_files(self, namespace: str, name: str | None = None) -> list[IndexEntry]:
        sql = (
            f"SELECT {COLUMNS} FROM api_index WHERE namespace = %(namespace)s AND NOT is_folder"
            " AND (%(name)s::text IS NULL OR name = %(name)s) ORDER BY name, adaptor, path"
        )
        with self._connection() as db:
            return [IndexEntry(*row) for row in db.execute(sql, {"namespace": namespace, "name": name})]

    def index_drop(self, namespace: str, adaptor: str | None = None) -> None:
        sql = "DELETE FROM api_index WHERE namespace = %(namespace)s AND (%(adaptor)s::text IS NULL OR adaptor = %(adaptor)s)"
        with self._connection() as db:
            db.execute(sql, {"namespace": namespace, "adaptor": adaptor})


def _upsert(db: psycopg.Connection, entries: Iterable[IndexEntry]) -> None:
    with db.cursor() as cursor:
        cursor.executemany(UPSERT, list(_rows(entries)))


def _rows(entries: Iterable[IndexEntry]) -> Iterator[tuple[Any, ...]]:
    for e in entries:
        yield (e.namespace, e.adaptor, e.path, e.parent, e.name, e.is_folder, e.size, e.modified, e.checked)


def _remove(db: psycopg.Connection, namespace: str, adaptor: str, path: str) -> None:
    """``path`` and everything below it."""
    low, high = keys.subtree(path)
    sql = "DELETE FROM api_index WHERE namespace = %s AND adaptor = %s AND (path = %s OR (path >= %s AND path < %s))"
    db.execute(sql, (namespace, adaptor, path, low, high))
