"""The MongoDB connection every record kind of the Mongo state store shares.

One :class:`pymongo.MongoClient` per store (it is thread-safe and pools its
own connections), opened in the process that uses it: a client must not
cross ``fork()``, so a store opened before fork refuses use, as the SQLite
store does. Record kinds (locks, properties, ...) are mixins over this class,
one module each; they reach their collection through :meth:`_collection`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError

from davgate.state import StateStoreError, redact_url

Document = dict[str, Any]
ClientFactory = Callable[[str], MongoClient[Document]]

# SCHEMA[n] brings a database from version n to n + 1 (kept in the "meta"
# collection): the indexes each record kind needs, as (collection, keys,
# unique). New record kinds append a version; old ones never change.
SCHEMA: tuple[tuple[tuple[str, tuple[tuple[str, int], ...], bool], ...], ...] = (
    (  # 1: locks and dead properties
        ("locks", (("root", 1),), False),
        ("locks", (("expire", 1),), False),
        ("properties", (("url", 1), ("name", 1)), True),
    ),
    (),  # 2: SSH host keys pinned on first use (keyed by _id {host, port})
    (  # 3: DISPEL cache index, single-flight leases, shared counters
        ("dispel_cache", (("last_use", 1), ("created", 1)), False),
        ("dispel_cache", (("template", 1),), False),
        ("dispel_leases", (("expires", 1),), False),
    ),
    (),  # 4: content digests (RFC 3230) of the newest version of each path (keyed by _id)
    (  # 5: the management API's users, infrastructures, query index, copy jobs, metadata
        ("query_index", (("namespace", 1), ("adaptor", 1), ("path", 1)), True),
        ("query_index", (("namespace", 1), ("adaptor", 1), ("parent", 1)), False),
        ("query_index", (("namespace", 1), ("adaptor", 1), ("is_folder", 1), ("checked", 1)), False),
        ("query_index", (("namespace", 1), ("is_folder", 1), ("name", 1)), False),
        ("copy_jobs", (("owner", 1), ("id", 1)), True),
        ("copy_jobs", (("state", 1), ("created", 1)), False),
        ("copy_jobs", (("hook_state", 1), ("hook_next", 1)), False),
        ("copy_jobs", (("adding_until", 1),), False),
        ("metadata", (("owner", 1), ("collection", 1), ("id", 1)), True),
    ),
    (  # 6: one document per infrastructure (keyed by _id, its name); see davgate.state.mongo.api
        ("api_infrastructures", (("owner", 1),), False),
        ("copy_jobs", (("owner", 1), ("state", 1)), False),
    ),
)
SCHEMA_ID = "schema"


def default_client(url: str) -> MongoClient[Document]:
    return MongoClient(url, appname="davgate")


class MongoConnection:
    """Holds the client and the database; checks that the store may still be used."""

    def __init__(self, url: str, database: str = "davgate", *, client_factory: ClientFactory | None = None) -> None:
        self.url = url
        self.database = database
        self._pid = os.getpid()
        self._closed = False
        try:
            self._client = (client_factory or default_client)(url)
        except PyMongoError as error:  # a malformed url, unknown options
            raise StateStoreError(f"state store {redact_url(url)}: {error}") from error
        self._db = self._client[database]
        try:
            self._migrate()
        except PyMongoError as error:  # unreachable, refused, not allowed
            self._client.close()
            raise StateStoreError(f"state store {self!r} cannot be used: {error}") from error

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact_url(self.url)!r}, {self.database!r})"

    def _collection(self, name: str) -> Collection[Document]:
        if self._closed:
            raise StateStoreError(f"state store {self!r} is closed")
        if os.getpid() != self._pid:  # pymongo clients must not cross fork()
            raise StateStoreError(f"state store {self!r} was opened before fork; open it per worker")
        return self._db[name]

    def _migrate(self) -> None:
        meta = self._collection("meta")
        found = meta.find_one({"_id": SCHEMA_ID}) or {}
        version = int(found.get("version", 0))
        if version > len(SCHEMA):
            raise StateStoreError(
                f"state store {self!r} has schema version {version}; this davgate knows up to {len(SCHEMA)}"
            )
        for indexes in SCHEMA[version:]:
            for collection, keys, unique in indexes:
                self._collection(collection).create_index(list(keys), unique=unique)
        upsert(meta.update_one, {"_id": SCHEMA_ID}, {"$max": {"version": len(SCHEMA)}})

    def close(self) -> None:
        self._closed = True
        self._client.close()


def upsert(operation: Callable[..., Any], *args: Any) -> Any:
    """Run ``operation(*args, upsert=True)``, once more if a racing upsert inserted the same key first.

    Two upserts that both find nothing both insert; the unique index refuses
    the second, which then finds the winner's document and updates it.
    """
    try:
        return operation(*args, upsert=True)
    except DuplicateKeyError:
        return operation(*args, upsert=True)
