"""The DISPEL result cache: blobs in a cache backend, tracked in the state store.

A result is stored under its key (template definition + parameters + the
input's ETag + the output, hashed), so a changed template or input simply
asks for a different key. The index in the state store holds each entry's
template, parameters, size, checksum, creation time, hits and last use; the
total size is kept under ``max_bytes`` by evicting least recently used
entries. The index row is written before the blob is committed, so a blob a
reader finds always has its row.

Hits (and the per-template hit and miss counters behind /metrics) are
counted in memory and written in batches (``hit_interval``), so a warm GET
costs a ``stat`` and an ``open``, not a database write. Each process checks
a blob's checksum the first time it serves that blob's version: a corrupted
blob is dropped and made again.

Backends implement :class:`CacheBackend`: the local folder backend is here,
the S3 one in :mod:`davgate.dispel.cache_s3`. Both make a result in a local
staging file first (:class:`Staging`) and publish it whole on commit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
import zlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import BinaryIO

from davgate import errors
from davgate.dispel.counting import HITS, MISSES, Tally, counter_name
from davgate.pids import process_alive
from davgate.state import CacheEntry, StateStore

log = logging.getLogger("davgate.dispel.cache")

STAGING = ".staging"
READ_CHUNK = 1024 * 1024


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
    def commit(self, key: str, staged: str) -> BlobInfo:
        """Make the staged file the blob of ``key``; returns the new blob's size and version.

        The staged file is gone afterwards (a reader that opened it first
        may go on reading it).
        """

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

    def close(self) -> None:
        """Release connections; the backend is not used afterwards."""


def check_key(key: str) -> str:
    if not key or "/" in key or key.startswith("."):
        raise ValueError(f"bad cache key {key!r}")
    return key


class Staging:
    """A local folder of files being made, named ``<pid>-<random>`` so a dead process's litter is found."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = os.path.realpath(folder)
        os.makedirs(self.folder, exist_ok=True)

    def new(self) -> str:
        return os.path.join(self.folder, f"{os.getpid()}-{uuid.uuid4().hex}")

    def discard(self, staged: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged)

    def clean(self) -> None:
        """Remove staging files of processes that have died."""
        for name in os.listdir(self.folder):
            pid = name.split("-", 1)[0]
            if pid.isdigit() and not process_alive(int(pid)):
                self.discard(os.path.join(self.folder, name))


class LocalBackend(CacheBackend):
    """Blobs as files under ``root``, fanned out by the key's first two characters."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.realpath(root)
        self.staging = Staging(os.path.join(self.root, STAGING))  # same filesystem: commit is a rename

    def path(self, key: str) -> str:
        return os.path.join(self.root, key[:2], check_key(key))

    def stage(self) -> str:
        return self.staging.new()

    def commit(self, key: str, staged: str) -> BlobInfo:
        target = self.path(key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(staged, target)
        return blob_info(os.stat(target))

    def discard(self, staged: str) -> None:
        self.staging.discard(staged)

    def stat(self, key: str) -> BlobInfo | None:
        try:
            return blob_info(os.stat(self.path(key)))
        except FileNotFoundError:
            return None

    def open(self, key: str) -> BinaryIO:
        return open(self.path(key), "rb")

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(key))

    def start(self) -> None:
        self.staging.clean()


def blob_info(st: os.stat_result) -> BlobInfo:
    return BlobInfo(st.st_size, f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}")


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

    def __init__(self, backend: CacheBackend, store: StateStore, max_bytes: int, *, hit_interval: float = 1.0) -> None:
        self.backend = backend
        self.store = store
        self.max_bytes = max_bytes
        self.tally = Tally(store, hit_interval)
        self._lock = threading.Lock()
        self._verified: OrderedDict[tuple[str, str], None] = OrderedDict()

    def open(self, key: str) -> Blob | None:
        """The blob of ``key`` if it is cached and intact, else None (also when the backend fails)."""
        try:
            info = self.backend.stat(key)
            if info is None:
                return None
            stream = self.backend.open(key)
        except FileNotFoundError:
            return None
        except errors.StorageError as error:
            log.warning("cache: reading %s failed, so it is made again: %s", key, error)
            return None
        try:
            intact = self._checked(key, info, stream)
        except (errors.StorageError, OSError) as error:
            log.warning("cache: checking %s failed, so it is made again: %s", key, error)
            intact = False
        if not intact:
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
            log.warning(
                "cache blob %s is corrupted (template %s, %s); making it again", key, entry.template, entry.params
            )
            self.backend.delete(key)
            self.store.cache_remove([key])
            return False
        self._remember(key, info)
        return True

    def _remember(self, key: str, info: BlobInfo) -> None:
        with self._lock:
            self._verified[(key, info.version)] = None
            while len(self._verified) > 10_000:
                self._verified.popitem(last=False)

    def entry(self, key: str) -> CacheEntry | None:
        """The index entry of ``key``, with the hits this process has not written yet."""
        entry = self.store.cache_get(key)
        hits, last = self.tally.pending_use(key)
        if entry is None or not hits:
            return entry
        return replace(entry, hits=entry.hits + hits, last_use=max(entry.last_use, last))

    def record_hit(self, key: str, template: str | None = None) -> None:
        """A request served the blob of ``key``; with ``template``, count a cache hit for it."""
        self.tally.use(key)
        if template is not None:
            self.tally.add(counter_name(template, HITS))

    def record_miss(self, template: str) -> None:
        """A request for a result of ``template`` did not find it cached."""
        self.tally.add(counter_name(template, MISSES))

    def flush(self) -> None:
        """Write the hits and counts gathered since the last flush."""
        self.tally.flush()

    def put(self, entry: CacheEntry, staged: str) -> Blob:
        """Index ``entry``, commit its staged blob, then keep the size bound.

        The result is served from the staged file, opened before the commit
        (so a remote backend need not send it back, and a result larger than
        the whole cache is still served once). If the backend cannot take
        it, the result is served all the same, uncached.
        """
        self.store.cache_put(entry)
        try:
            stream = open(staged, "rb")  # noqa: SIM115 - handed to the caller in the Blob
        except BaseException:
            self._forget(entry.key, staged)
            raise
        try:
            info = self.backend.commit(entry.key, staged)
        except (errors.StorageError, OSError) as error:
            log.warning("cache: storing %s failed, so it is served uncached: %s", entry.key, error)
            self._forget(entry.key, staged)
            return Blob(entry.key, entry.size, stream)
        except BaseException:
            stream.close()
            self._forget(entry.key, staged)
            raise
        self._remember(entry.key, info)
        self.evict()
        return Blob(entry.key, entry.size, stream)

    def _forget(self, key: str, staged: str) -> None:
        self.store.cache_remove([key])
        self.backend.discard(staged)

    def evict(self) -> None:
        self._delete(self.store.cache_evict(self.max_bytes))

    def drop_template(self, template: str, keep_definition: str) -> int:
        """Forget results of older definitions of ``template``; returns how many."""
        removed = self.store.cache_drop(template, keep_definition)
        self._delete(removed)
        return len(removed)

    def _delete(self, entries: list[CacheEntry]) -> None:
        """Delete the blobs of entries already out of the index (a failure leaves an orphan, logged)."""
        for entry in entries:
            try:
                self.backend.delete(entry.key)
            except errors.StorageError as error:
                log.warning("cache: deleting %s failed; the blob stays unindexed: %s", entry.key, error)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.tally.close()
        self.backend.close()
