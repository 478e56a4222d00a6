"""The DISPEL result cache: blobs in a cache backend, tracked in the state store.

A result is stored under its key (template definition + parameters + the
input's ETag + the output, hashed), so a changed template or input simply
asks for a different key. The index in the state store holds each entry's
template, parameters, size, checksum, creation time, hits and last use; the
total size is kept under ``max_bytes`` by evicting least recently used
entries. The index row is written before the blob is committed, so a blob a
reader finds always has its row.

Hits are counted in memory and written in batches (``hit_interval``), so a
warm GET costs a ``stat`` and an ``open``, not a database write. Each
process checks a blob's checksum the first time it serves that blob's
version: a corrupted blob is dropped and made again.

Backends implement :class:`CacheBackend`; the local folder backend is here,
an S3 one plugs in the same way (stage locally, upload on commit).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
import zlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from typing import BinaryIO

from davgate.state import CacheEntry, StateStore

log = logging.getLogger("davgate.dispel.cache")

STAGING = ".staging"
READ_CHUNK = 1024 * 1024
HITS = "dispel_cache_hits"
MISSES = "dispel_cache_misses"


@dataclass(frozen=True)
class BlobInfo:
    size: int
    version: str  # changes whenever the blob's bytes may have changed


class CacheBackend(ABC):
    """Where result blobs live. Keys are hex digests, optionally with a suffix (``.gz``).

    A result is made in a local staging file (:meth:`stage`), then
    :meth:`commit` makes it the blob of its key atomically: readers see the
    old blob, or none, or the whole new one.
    """

    @abstractmethod
    def stage(self) -> str:
        """A new local file path to write a result into."""

    @abstractmethod
    def commit(self, key: str, staged: str) -> None:
        """Make the staged file the blob of ``key`` (the staged file is gone afterwards)."""

    @abstractmethod
    def discard(self, staged: str) -> None:
        """Remove a staged file that will not be committed."""

    @abstractmethod
    def stat(self, key: str) -> BlobInfo | None:
        """The blob's size and version, or None if there is no blob."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A seekable stream of the blob; raises FileNotFoundError if it is gone."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove a blob; a missing one is not an error."""

    def start(self) -> None:
        """Called once per process before use (e.g. clean up dead staging files)."""


class LocalBackend(CacheBackend):
    """Blobs as files under ``root``, fanned out by the key's first two characters."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.realpath(root)
        self.staging = os.path.join(self.root, STAGING)
        os.makedirs(self.staging, exist_ok=True)

    def path(self, key: str) -> str:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"bad cache key {key!r}")
        return os.path.join(self.root, key[:2], key)

    def stage(self) -> str:
        return os.path.join(self.staging, f"{os.getpid()}-{uuid.uuid4().hex}")

    def commit(self, key: str, staged: str) -> None:
        target = self.path(key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(staged, target)

    def discard(self, staged: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged)

    def stat(self, key: str) -> BlobInfo | None:
        try:
            st = os.stat(self.path(key))
        except FileNotFoundError:
            return None
        return BlobInfo(st.st_size, f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}")

    def open(self, key: str) -> BinaryIO:
        return open(self.path(key), "rb")

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(key))

    def start(self) -> None:
        """Remove staging files of processes that have died."""
        for name in os.listdir(self.staging):
            pid = name.split("-", 1)[0]
            if pid.isdigit() and not process_alive(int(pid)):
                self.discard(os.path.join(self.staging, name))


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def file_digest(stream: BinaryIO) -> str:
    """A checksum of a stream's bytes from its current position (CRC-32: for corruption, not attacks)."""
    crc = 0
    while chunk := stream.read(READ_CHUNK):
        crc = zlib.crc32(chunk, crc)
    return f"crc32:{crc:08x}"


@dataclass
class Blob:
    """A cached result, open for reading (eviction after opening does not disturb it)."""

    key: str
    size: int
    file: BinaryIO

    def close(self) -> None:
        self.file.close()


class DispelCache:
    """The cache index (state store) and the blobs (backend) together."""

    def __init__(
        self, backend: CacheBackend, store: StateStore, max_bytes: int, *, hit_interval: float = 1.0
    ) -> None:
        self.backend = backend
        self.store = store
        self.max_bytes = max_bytes
        self.hit_interval = hit_interval
        self._lock = threading.Lock()
        self._hits: dict[str, tuple[int, float]] = {}
        self._flushed = time.monotonic()
        self._verified: OrderedDict[tuple[str, str], None] = OrderedDict()

    def open(self, key: str) -> Blob | None:
        """The blob of ``key`` if it is cached and intact, else None."""
        info = self.backend.stat(key)
        if info is None:
            return None
        try:
            stream = self.backend.open(key)
        except FileNotFoundError:
            return None
        if not self._checked(key, info, stream):
            stream.close()
            return None
        return Blob(key, info.size, stream)

    def _checked(self, key: str, info: BlobInfo, stream: BinaryIO) -> bool:
        """Compare the blob with its index entry, once per blob version and process."""
        if (key, info.version) in self._verified:
            return True
        entry = self.store.cache_get(key)
        if entry is None:
            return False  # a blob without its index entry: made again, then adopted
        intact = entry.size == info.size and file_digest(stream) == entry.digest
        stream.seek(0)
        if not intact:
            log.warning("cache blob %s is corrupted (template %s, %s); making it again", key, entry.template, entry.params)
            self.backend.delete(key)
            self.store.cache_remove([key])
            return False
        with self._lock:
            self._verified[(key, info.version)] = None
            while len(self._verified) > 10_000:
                self._verified.popitem(last=False)
        return True

    def record_hit(self, key: str) -> None:
        now = time.time()
        with self._lock:
            count, _ = self._hits.get(key, (0, now))
            self._hits[key] = (count + 1, now)
            due = time.monotonic() - self._flushed >= self.hit_interval
        if due:
            self.flush()

    def flush(self) -> None:
        """Write the hits counted since the last flush."""
        with self._lock:
            hits, self._hits = self._hits, {}
            self._flushed = time.monotonic()
        if hits:
            self.store.cache_touch(hits)
            self.store.add_counter(HITS, sum(count for count, _ in hits.values()))

    def put(self, entry: CacheEntry, staged: str) -> Blob:
        """Index ``entry``, commit its staged blob, open it, then keep the size bound.

        The blob is opened before evicting, so a result larger than the whole
        cache is still served once.
        """
        self.store.cache_put(entry)
        try:
            self.backend.commit(entry.key, staged)
            stream = self.backend.open(entry.key)
        except BaseException:
            self.store.cache_remove([entry.key])
            self.backend.discard(staged)
            raise
        info = self.backend.stat(entry.key)
        if info is not None:
            with self._lock:
                self._verified[(entry.key, info.version)] = None
        self.evict()
        return Blob(entry.key, entry.size, stream)

    def evict(self) -> None:
        for entry in self.store.cache_evict(self.max_bytes):
            self.backend.delete(entry.key)

    def drop_template(self, template: str, keep_definition: str) -> int:
        """Forget results of older definitions of ``template``; returns how many."""
        removed = self.store.cache_drop(template, keep_definition)
        for entry in removed:
            self.backend.delete(entry.key)
        return len(removed)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.flush()
