"""MongoDB state store: the state of many davgate processes on many hosts.

``state: {type: mongo, url: "mongodb://host/", database: davgate}``. Every
record kind is a module here (a mixin over :class:`MongoConnection`), each
keeping its records in its own collection of the one database. Nothing is
cached in memory: what one process writes, the next call in any other sees.

No method needs transactions, so a single MongoDB server (no replica set)
is enough: each call that must be atomic is either one atomic operation on
one document (an insert guarded by a unique key, a conditional
``find_one_and_update``), or a protocol built from them (granting a lock:
see :mod:`davgate.state.mongo.locks`; adding several copy jobs:
:mod:`davgate.state.mongo.api_jobs`). The few calls that change several
documents in place (copying or moving properties, removing several cache
entries, syncing an index folder) change each document atomically, ordered
so that nothing is lost between them, but a reader may see them half done:
the SQLite store's moves are all or nothing, these are not.
"""

from __future__ import annotations

from davgate.state import StateStore
from davgate.state.mongo.api import ApiMixin
from davgate.state.mongo.api_index import IndexMixin
from davgate.state.mongo.api_jobs import JobsMixin
from davgate.state.mongo.connection import SCHEMA, ClientFactory, MongoConnection
from davgate.state.mongo.digests import DigestsMixin
from davgate.state.mongo.dispel import DispelMixin
from davgate.state.mongo.hostkeys import HostKeysMixin
from davgate.state.mongo.locks import LocksMixin
from davgate.state.mongo.properties import PropertiesMixin

__all__ = ["SCHEMA", "ClientFactory", "MongoConnection", "MongoStateStore"]


class MongoStateStore(
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
    """The state store in the MongoDB ``database`` at ``url``.

    ``client_factory(url)`` makes the client (default: :class:`pymongo.MongoClient`);
    tests pass one that makes a mongomock client.
    """
