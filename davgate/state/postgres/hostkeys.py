"""SSH host keys pinned on first use: one row per host and port, its key.

Pinning is one ``INSERT ... ON CONFLICT DO NOTHING``: the first insert wins,
every later one (racing or not) inserts nothing; a pin is never replaced.
"""

from __future__ import annotations

import time

from davgate.state import HostKey
from davgate.state.postgres.connection import PostgresConnection


class HostKeysMixin(PostgresConnection):
    def get_host_key(self, host: str, port: int) -> HostKey | None:
        sql = "SELECT host, port, key_type, key_b64, pinned FROM ssh_host_keys WHERE host = %s AND port = %s"
        with self._connection() as db:
            row = db.execute(sql, (host, int(port))).fetchone()
        return HostKey(*row) if row else None

    def pin_host_key(self, host: str, port: int, key_type: str, key_b64: str) -> bool:
        sql = (
            "INSERT INTO ssh_host_keys (host, port, key_type, key_b64, pinned) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (host, port) DO NOTHING"
        )
        with self._connection() as db:
            return db.execute(sql, (host, int(port), key_type, key_b64, time.time())).rowcount > 0

    def forget_host_key(self, host: str, port: int) -> bool:
        with self._connection() as db:
            return db.execute("DELETE FROM ssh_host_keys WHERE host = %s AND port = %s", (host, int(port))).rowcount > 0
