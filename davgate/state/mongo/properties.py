"""Dead properties in MongoDB: one document per (url, name), unique together.

A subtree is a range of urls (everything below ``/a`` sorts between ``/a/``
and ``/a0``), which the (url, name) index answers without a regex. Copies
and moves touch several documents, which MongoDB without a replica set
cannot change in one atomic step: each document changes atomically, and a
move writes the new urls before it deletes the old ones, so that a reader
(or a crash) in between sees the properties at both places, never at none.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

from davgate.state import PropertyValue, keys
from davgate.state.mongo.connection import Document, MongoConnection, upsert

DUPLICATE_KEY = 11000


class PropertiesMixin(MongoConnection):
    def _properties(self) -> Collection[Document]:
        return self._collection("properties")

    def property_names(self, url: str) -> list[str]:
        found = self._properties().find({"url": url}, {"name": 1}).sort("name", 1)
        return [document["name"] for document in found]

    def get_property(self, url: str, name: str) -> PropertyValue | None:
        found = self._properties().find_one({"url": url, "name": name}, {"value": 1})
        return found["value"] if found else None

    def properties_of(self, urls: Sequence[str]) -> dict[str, dict[str, PropertyValue]]:
        found: dict[str, dict[str, PropertyValue]] = {}
        for start in range(0, len(urls), keys.IN_BATCH):
            query = {"url": {"$in": list(urls[start : start + keys.IN_BATCH])}}
            for document in self._properties().find(query, {"_id": 0, "url": 1, "name": 1, "value": 1}):
                found.setdefault(document["url"], {})[document["name"]] = document["value"]
        return found

    def set_property(self, url: str, name: str, value: PropertyValue) -> None:
        if not isinstance(value, (bytes, str)):
            raise TypeError(f"property value must be bytes or str, not {type(value).__name__}")
        properties = self._properties()
        key = {"url": url, "name": name}
        upsert(properties.replace_one, key, {**key, "value": value})

    def remove_property(self, url: str, name: str) -> None:
        self._properties().delete_one({"url": url, "name": name})

    def remove_properties(self, url: str, *, with_children: bool = False) -> None:
        self._properties().delete_many(_scope(url, with_children))

    def copy_properties(self, src: str, dest: str) -> None:
        if src == dest:
            return
        properties = self._properties()
        found = list(properties.find({"url": src}, {"_id": 0, "name": 1, "value": 1}))
        if found:
            properties.delete_many({"url": dest})
            _put(properties, [{**document, "url": dest} for document in found])

    def move_properties(self, src: str, dest: str, *, with_children: bool) -> None:
        if src == dest:
            return
        properties = self._properties()
        found = list(properties.find(_scope(src, with_children)))
        if not found:
            return
        ids = [document["_id"] for document in found]
        moved = [{"url": keys.moved(d["url"], src, dest), "name": d["name"], "value": d["value"]} for d in found]
        targets = sorted({document["url"] for document in moved})
        if set(targets) & {document["url"] for document in found}:  # into itself: make room first
            properties.delete_many({"_id": {"$in": ids}})
        properties.delete_many({"url": {"$in": targets}, "_id": {"$nin": ids}})
        _put(properties, moved)
        properties.delete_many({"_id": {"$in": ids}})


def _scope(url: str, with_children: bool) -> Document:
    """``url`` alone, or ``url`` and everything below it (as the SQLite store means it)."""
    if not with_children:
        return {"url": url}
    base = url.rstrip("/")
    low, high = keys.subtree(base)
    return {"$or": [{"url": base}, {"url": {"$gte": low, "$lt": high}}]}


def _put(properties: Collection[Document], documents: list[Document]) -> None:
    """Insert properties; any that a racing writer created meanwhile are replaced."""
    try:
        properties.insert_many([dict(document) for document in documents], ordered=False)
    except BulkWriteError as error:
        for failed in error.details.get("writeErrors", []):
            if failed.get("code") != DUPLICATE_KEY:
                raise
            document = documents[failed["index"]]
            key = {"url": document["url"], "name": document["name"]}
            upsert(properties.replace_one, key, document)
