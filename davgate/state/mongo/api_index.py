"""The management API's query index in MongoDB: one document per file or folder.

Keyed (unique) by namespace, adaptor and path; ``parent`` and ``name`` are
stored beside the path, so a folder's members and a base name are each one
indexed query, and a subtree is a range of paths. Syncing a folder changes
several documents, which MongoDB without a replica set cannot do in one
atomic step: members are changed first and the folder's ``checked`` last,
so a sync cut short leaves the folder stale, and it is synced again.
"""

from __future__ import annotations

from collections.abc import Iterable

from pymongo.collection import Collection

from davgate.state import keys
from davgate.state.api_records import IndexEntry
from davgate.state.mongo.connection import Document, MongoConnection, upsert

FIELDS = ("is_folder", "size", "modified", "checked")


class IndexMixin(MongoConnection):
    def _index(self) -> Collection[Document]:
        return self._collection("query_index")

    def index_put(self, entries: Iterable[IndexEntry]) -> None:
        index = self._index()
        for entry in entries:
            key = _key(entry.namespace, entry.adaptor, entry.path)
            same_kind = {**key, "is_folder": entry.is_folder}  # keeps its checked
            if index.update_one(same_kind, {"$set": {"size": entry.size, "modified": entry.modified}}).matched_count:
                continue
            upsert(index.replace_one, key, _document(entry))

    def index_remove(self, namespace: str, adaptor: str, path: str) -> None:
        low, high = keys.subtree(path)
        below = [{"path": path}, {"path": {"$gte": low, "$lt": high}}]
        self._index().delete_many({"namespace": namespace, "adaptor": adaptor, "$or": below})

    def index_sync_folder(
        self, namespace: str, adaptor: str, folder: str, members: Iterable[IndexEntry], checked: float
    ) -> None:
        members = list(members)
        index = self._index()
        wanted = {member.path: member.is_folder for member in members}
        found = index.find({"namespace": namespace, "adaptor": adaptor, "parent": folder}, {"path": 1, "is_folder": 1})
        for old in list(found):
            if wanted.get(old["path"]) != old["is_folder"]:  # gone, or turned file <-> folder
                self.index_remove(namespace, adaptor, old["path"])
        self.index_put(members)
        root = IndexEntry(namespace, adaptor, folder, True, checked=checked)  # last: a sync cut short is redone
        update = {
            "$set": {name: getattr(root, name) for name in FIELDS},
            "$setOnInsert": {"parent": root.parent, "name": root.name},
        }
        upsert(index.update_one, _key(namespace, adaptor, folder), update)

    def index_stale_folders(self, namespace: str, adaptor: str, before: float, limit: int) -> list[str]:
        query = {"namespace": namespace, "adaptor": adaptor, "is_folder": True, "checked": {"$lt": before}}
        if limit == 0:
            return []
        found = self._index().find(query, {"path": 1}).sort([("checked", 1), ("path", 1)])
        return [document["path"] for document in (found.limit(limit) if limit > 0 else found)]

    def index_files(self, namespace: str, name: str | None = None) -> list[IndexEntry]:
        query: Document = {"namespace": namespace, "is_folder": False}
        if name is not None:
            query["name"] = name
        found = self._index().find(query).sort([("name", 1), ("adaptor", 1), ("path", 1)])
        return [_entry(document) for document in found]

    def index_drop(self, namespace: str, adaptor: str | None = None) -> None:
        query = {"namespace": namespace} if adaptor is None else {"namespace": namespace, "adaptor": adaptor}
        self._index().delete_many(query)


def _key(namespace: str, adaptor: str, path: str) -> Document:
    return {"namespace": namespace, "adaptor": adaptor, "path": path}


def _document(entry: IndexEntry) -> Document:
    key = _key(entry.namespace, entry.adaptor, entry.path)
    return {**key, "parent": entry.parent, "name": entry.name, **{name: getattr(entry, name) for name in FIELDS}}


def _entry(document: Document) -> IndexEntry:
    return IndexEntry(
        document["namespace"], document["adaptor"], document["path"], *(document[name] for name in FIELDS)
    )
