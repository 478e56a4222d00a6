"""SSH host keys pinned on first use: one document per host and port.

The ``_id`` is ``{host, port}``, so the first insert wins and every later one
fails on the key: pinning is one atomic insert, never a replace.
"""

from __future__ import annotations

import time

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from davgate.state import HostKey
from davgate.state.mongo.connection import Document, MongoConnection


class HostKeysMixin(MongoConnection):
    def _host_keys(self) -> Collection[Document]:
        return self._collection("ssh_host_keys")

    def get_host_key(self, host: str, port: int) -> HostKey | None:
        found = self._host_keys().find_one({"_id": _key(host, port)})
        if found is None:
            return None
        return HostKey(host, port, found["key_type"], found["key_b64"], found["pinned"])

    def pin_host_key(self, host: str, port: int, key_type: str, key_b64: str) -> bool:
        document = {"_id": _key(host, port), "key_type": key_type, "key_b64": key_b64, "pinned": time.time()}
        try:
            self._host_keys().insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    def forget_host_key(self, host: str, port: int) -> bool:
        return self._host_keys().delete_one({"_id": _key(host, port)}).deleted_count > 0


def _key(host: str, port: int) -> Document:
    return {"host": host, "port": int(port)}
