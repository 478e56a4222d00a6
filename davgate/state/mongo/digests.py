"""Content digests (RFC 3230) of the newest version of each path: one document per path.

``{_id: path, etag, digests: {algorithm: value}}``: adding digests of the
stored version and replacing those of an older one are each one atomic
update, so a reader sees one version's digests, never a mix.
"""

from __future__ import annotations

from collections.abc import Mapping

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from davgate.state.mongo.connection import Document, MongoConnection

# An algorithm is an HTTP token, which may hold what MongoDB field names may not.
ESCAPES = (("%", "%25"), (".", "%2E"), ("$", "%24"))


class DigestsMixin(MongoConnection):
    def _digests(self) -> Collection[Document]:
        return self._collection("digests")

    def get_digests(self, path: str, etag: str) -> dict[str, str]:
        found = self._digests().find_one({"_id": path, "etag": etag}, {"digests": 1})
        return {_unescape(name): value for name, value in (found or {}).get("digests", {}).items()}

    def put_digests(self, path: str, etag: str, digests: Mapping[str, str]) -> None:
        collection = self._digests()
        if not digests:
            collection.delete_one({"_id": path, "etag": {"$ne": etag}})
            return
        fields = {_escape(name): value for name, value in digests.items()}
        while True:
            merge = {"$set": {f"digests.{name}": value for name, value in fields.items()}}
            if collection.update_one({"_id": path, "etag": etag}, merge).matched_count:
                return
            try:  # another version's (or none): replace it
                new = {"etag": etag, "digests": fields}
                collection.replace_one({"_id": path, "etag": {"$ne": etag}}, new, upsert=True)
                return
            except DuplicateKeyError:
                continue  # this version's digests were stored meanwhile: merge into them


def _escape(name: str) -> str:
    for char, escaped in ESCAPES:
        name = name.replace(char, escaped)
    return name


def _unescape(name: str) -> str:
    for char, escaped in reversed(ESCAPES):
        name = name.replace(escaped, char)
    return name
