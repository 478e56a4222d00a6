"""Dead properties in PostgreSQL: one row per (url, name), its key.

A value keeps its type (WsgiDAV hands us ``bytes`` or ``str``): the bytes
are stored with a flag saying whether they were text. A subtree is a range
of urls (``COLLATE "C"``; everything below ``/a`` sorts between ``/a/`` and
``/a0``), which the primary key answers. Copies and moves are one
transaction each: a reader sees them before or after, never half done.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from davgate.state import PropertyValue, keys
from davgate.state.postgres.connection import PostgresConnection

UPSERT = (
    "INSERT INTO properties (url, name, value, is_text) VALUES (%s, %s, %s, %s)"
    " ON CONFLICT (url, name) DO UPDATE SET value = excluded.value, is_text = excluded.is_text"
)


class PropertiesMixin(PostgresConnection):
    def property_names(self, url: str) -> list[str]:
        with self._connection() as db:
            return [name for (name,) in db.execute("SELECT name FROM properties WHERE url = %s ORDER BY name", (url,))]

    def get_property(self, url: str, name: str) -> PropertyValue | None:
        sql = "SELECT value, is_text FROM properties WHERE url = %s AND name = %s"
        with self._connection() as db:
            row = db.execute(sql, (url, name)).fetchone()
        return _value(*row) if row else None

    def properties_of(self, urls: Sequence[str]) -> dict[str, dict[str, PropertyValue]]:
        found: dict[str, dict[str, PropertyValue]] = {}
        if not urls:
            return found
        sql = "SELECT url, name, value, is_text FROM properties WHERE url = ANY(%s::text[])"
        with self._connection() as db:
            for url, name, value, is_text in db.execute(sql, (list(urls),)):
                found.setdefault(url, {})[name] = _value(value, is_text)
        return found

    def set_property(self, url: str, name: str, value: PropertyValue) -> None:
        if not isinstance(value, (bytes, str)):
            raise TypeError(f"property value must be bytes or str, not {type(value).__name__}")
        with self._connection() as db:
            db.execute(UPSERT, (url, name, *_stored(value)))

    def remove_property(self, url: str, name: str) -> None:
        with self._connection() as db:
            db.execute("DELETE FROM properties WHERE url = %s AND name = %s", (url, name))

    def remove_properties(self, url: str, *, with_children: bool = False) -> None:
        where, params = _scope(url, with_children)
        with self._connection() as db:
            db.execute(f"DELETE FROM properties WHERE {where}", params)

    def copy_properties(self, src: str, dest: str) -> None:
        if src == dest:
            return
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM properties WHERE url = %s LIMIT 1", (src,)).fetchone():
                db.execute("DELETE FROM properties WHERE url = %s", (dest,))
                sql = "INSERT INTO properties (url, name, value, is_text) SELECT %s, name, value, is_text FROM properties WHERE url = %s"
                db.execute(sql, (dest, src))

    def move_properties(self, src: str, dest: str, *, with_children: bool) -> None:
        if src == dest:
            return
        where, params = _scope(src, with_children)
        with self._transaction() as db:
            rows = db.execute(
                f"DELETE FROM properties WHERE {where} RETURNING url, name, value, is_text", params
            ).fetchall()
            if not rows:
                return
            moved = [(keys.moved(url, src, dest), name, value, is_text) for url, name, value, is_text in rows]
            db.execute("DELETE FROM properties WHERE url = ANY(%s::text[])", (sorted({row[0] for row in moved}),))
            with db.cursor() as cursor:
                cursor.executemany(UPSERT, moved)


def _scope(url: str, with_children: bool) -> tuple[str, dict[str, Any]]:
    """``url`` alone, or ``url`` and everything below it (as the SQLite store means it)."""
    if not with_children:
        return "url = %(url)s", {"url": url}
    base = url.rstrip("/")
    low, high = keys.subtree(base)
    return "(url = %(url)s OR (url >= %(low)s AND url < %(high)s))", {"url": base, "low": low, "high": high}


def _stored(value: PropertyValue) -> tuple[bytes, bool]:
    return (value.encode(), True) if isinstance(value, str) else (bytes(value), False)


def _value(value: bytes, is_text: bool) -> PropertyValue:
    return bytes(value).decode() if is_text else bytes(value)
