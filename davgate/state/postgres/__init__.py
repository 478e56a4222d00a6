"""PostgreSQL state store: the state of many davgate processes on many hosts.

``state: {type: postgres, url: "postgresql://user:password@host/db", pool: 10, timeout: 5}``.
Every record kind is a module here (a mixin over :class:`PostgresConnection`),
each keeping its records in its own tables of the one database
(:mod:`davgate.state.postgres.schema`, created and migrated by davgate).
Nothing is cached in memory: what one process writes, the next call in any
other sees.

Unlike the MongoDB store, every call that changes several rows is one
transaction, so moves and syncs are all or nothing, as in SQLite. Where
processes race, rows are locked (``FOR UPDATE``; ``SKIP LOCKED`` when
claiming jobs) or, where the rows to lock do not exist yet (granting a
WebDAV lock, storing a path's digests, evicting), an advisory lock is held
for the few statements of one transaction. See docs/SCALING.md.
"""

from __future__ import annotations

from davgate.state import StateStore
from davgate.state.postgres.api import ApiMixin
from davgate.state.postgres.api_index import IndexMixin
from davgate.state.postgres.api_jobs import JobsMixin
from davgate.state.postgres.connection import PostgresConnection
from davgate.state.postgres.digests import DigestsMixin
from davgate.state.postgres.dispel import DispelMixin
from davgate.state.postgres.hostkeys import HostKeysMixin
from davgate.state.postgres.locks import LocksMixin
from davgate.state.postgres.properties import PropertiesMixin
from davgate.state.postgres.schema import SCHEMA

__all__ = ["SCHEMA", "PostgresConnection", "PostgresStateStore"]


class PostgresStateStore(
    LocksMixin,
    PropertiesMixin,
    HostKeysMixin,
    DispelMixin,
    DigestsMixin,
    ApiMixin,
    IndexMixin,
    JobsMixin,
    StateStore,
):
    """The state store in the PostgreSQL database at ``url`` (see :class:`PostgresConnection`)."""
