"""The query service: where each file of an infrastructure lives, from an index, never a crawl per call.

The index (in the state store, shared by every process) covers the
infrastructures that have a ``query`` logic container. It is kept current
two ways:

- davgate's own writes: after a successful PUT, DELETE, MKCOL, COPY or MOVE
  under such a space (and after each staging copy), the paths touched are
  looked up once and their entries written, before the response goes out;
- a bounded rescan for changes made behind davgate's back: every folder the
  index knows is listed again when its last listing is older than
  ``api.rescan_interval``, at most ``api.rescan_rate`` listings per second
  per adaptor, by one process at a time (a lease per adaptor). Folders never
  listed (new adaptors, folders seen in a listing) come first.

``GET /api/v1/list`` and ``GET /api/v1/find/<name>`` read the index only.
An infrastructure's entries are kept under its id (the index's
``namespace``), so what an old infrastructure of the same name left (or a
rescan of it still running) is never shown for a new one.
"""

from __future__ import annotations

import logging
import mimetypes
import posixpath
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from davgate import errors
from davgate.access import destination_of
from davgate.api.spaces import LiveSpaces, Space
from davgate.api.spec import InfraSpec
from davgate.namespace import Namespace
from davgate.providers import Entry, Mount
from davgate.state import IndexEntry, InfraRecord, StateStore

__all__ = ["Index", "Rescanner", "render"]

log = logging.getLogger("davgate.api.query")

WRITE_METHODS = frozenset({"PUT", "DELETE", "MKCOL", "COPY", "MOVE"})
TICK = 1.0  # seconds between rescan passes (or api.rescan_interval, if shorter)
LEASE_SECONDS = 30.0
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def index_entry(namespace: str, adaptor: str, folder: str, entry: Entry) -> IndexEntry:
    path = posixpath.join(folder, entry.name)
    return IndexEntry(namespace, adaptor, path, entry.is_folder, entry.size, entry.modified)


class Index:
    """Keeps the index of the spaces with a query container current."""

    def __init__(self, store: StateStore, namespace: Namespace, spaces: LiveSpaces, rate: int, interval: float) -> None:
        self.store, self.namespace, self.spaces = store, namespace, spaces
        self.rate, self.interval = rate, interval
        self.tick = min(TICK, interval)  # seconds between passes
        self.budget = max(1, round(rate * self.tick))  # listings per adaptor per pass
        self.holder = f"index-{uuid.uuid4().hex}"

    # -- davgate's own writes -------------------------------------------------------

    def watches(self, environ: dict) -> bool:
        """Whether a request may change what the index covers (cheap: method first)."""
        if environ["REQUEST_METHOD"] not in WRITE_METHODS:
            return False
        paths = [environ.get("PATH_INFO", ""), environ.get("HTTP_DESTINATION") and destination_of(environ)]
        return any(path and self.space_for(path) is not None for path in paths)

    def hook(self, environ: dict, start_response: Callable) -> Callable:
        """``start_response`` that updates the index first when the request succeeded."""

        def after(status: str, headers: list, exc_info: Any = None) -> Any:
            if status.startswith("2"):
                self.after_write(environ)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return after

    def after_write(self, environ: dict) -> None:
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        try:
            self.changed(path)
            if method in ("COPY", "MOVE"):
                self.changed(destination_of(environ) or "", walk=True)
        except Exception:  # noqa: BLE001 -- the write succeeded; the rescan will catch up
            log.exception("index update after %s %s failed", method, path)

    def changed(self, path: str, *, walk: bool = False) -> None:
        """Look ``path`` up again and index what is there now (nothing, a file, a folder)."""
        found = self.locate(path)
        if found is None:
            return
        space, adaptor, mount, rel = found
        entry = mount.stat(rel)
        index_path = "/" + rel
        if entry is None:
            self.store.index_remove(space.record.id, adaptor, index_path)
            return
        folder = posixpath.dirname(index_path)
        self.store.index_put([index_entry(space.record.id, adaptor, folder, entry if rel else Entry("", True))])
        if entry.is_folder and walk:
            self.walk(space.record.id, adaptor, mount, index_path, self.rate)

    def locate(self, path: str) -> tuple[Space, str, Mount, str] | None:
        space = self.space_for(path)
        parts = path.strip("/").split("/", 2)
        mount = space.adaptor(parts[1]) if space is not None and len(parts) > 1 else None
        if space is None or mount is None:
            return None
        return space, parts[1], mount, parts[2] if len(parts) > 2 else ""

    def space_for(self, path: str) -> Space | None:
        name = self.namespace.space_of(path)
        space = None if name is None else self.spaces.get(name)
        return space if space is not None and space.indexed else None

    def seed(self, record: InfraRecord, spec: InfraSpec) -> None:
        """A new infrastructure: its adaptors' roots, never listed, so the rescan starts there."""
        if spec.of_type("query"):
            self.store.index_put(IndexEntry(record.id, a.name, "/", True) for a in spec.adaptors)

    # -- the rescan ---------------------------------------------------------------------

    def rescan(self, now: float) -> int:
        """One pass over every indexed adaptor; how many folders were listed."""
        listed = 0
        for space in self.spaces.all():
            if space.indexed:
                for adaptor in space.spec.adaptors:
                    mount = space.adaptor(adaptor.name)
                    if mount is not None:
                        listed += self.rescan_adaptor(space.record.id, adaptor.name, mount, now)
        return listed

    def rescan_adaptor(self, namespace: str, adaptor: str, mount: Mount, now: float) -> int:
        stale = self.store.index_stale_folders(namespace, adaptor, now - self.interval, self.budget)
        if not stale:
            return 0
        key = f"api-index/{namespace}/{adaptor}"
        if self.store.acquire_lease(key, self.holder, now + LEASE_SECONDS).holder != self.holder:
            return 0
        try:
            return self.list_folders(namespace, adaptor, mount, stale, now)
        finally:
            self.store.release_lease(key, self.holder)

    def walk(self, namespace: str, adaptor: str, mount: Mount, top: str, budget: int) -> None:
        """List ``top`` and the folders below it, breadth first, at most ``budget`` listings."""
        queue = [top]
        while queue and budget > 0:
            folder = queue.pop(0)
            members = self.sync(namespace, adaptor, mount, folder, time.time())
            queue += [m.path for m in members if m.is_folder]
            budget -= 1

    def list_folders(self, namespace: str, adaptor: str, mount: Mount, folders: Iterable[str], now: float) -> int:
        count = 0
        for folder in folders:
            try:
                self.sync(namespace, adaptor, mount, folder, now)
            except errors.StorageError as error:
                log.warning("rescan of %s:/%s%s stopped: %s", namespace, adaptor, folder, error.detail)
                break
            count += 1
        return count

    def sync(self, namespace: str, adaptor: str, mount: Mount, folder: str, now: float) -> list[IndexEntry]:
        try:
            listing = mount.list(folder.lstrip("/"))
        except (errors.NotFound, errors.Conflict):
            self.store.index_remove(namespace, adaptor, folder)
            return []
        members = [index_entry(namespace, adaptor, folder, entry) for entry in listing]
        self.store.index_sync_folder(namespace, adaptor, folder, members, now)
        return members


class Rescanner:
    """A thread per process that runs :meth:`Index.rescan` every second (or ``rescan_interval``, if shorter)."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="davgate-api-rescan", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        while not self.stopping.wait(self.index.tick):
            try:
                self.index.rescan(time.time())
            except Exception:  # noqa: BLE001 -- keep the thread; the next tick tries again
                log.exception("index rescan failed")

    def stop(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)


def render(entry: IndexEntry, space: Space, base: str, host: str, port: int) -> dict[str, Any]:
    """One file as the seed's query service shows it, plus the URL to fetch it."""
    adaptor = space.spec.adaptor(entry.adaptor)
    return {
        "filename": entry.path,
        "basename": entry.name,
        "lastmod": http_date(entry.modified),
        "size": entry.size,
        "type": "file",
        "mime": mimetypes.guess_type(entry.name)[0] or "application/octet-stream",
        "location": {
            "name": entry.adaptor,
            "infrastructure": space.name,
            "host": host,
            "port": port,
            "type": "webdav",
            "mount": mount_of(adaptor.type, adaptor.options) if adaptor else "",
            "url": f"{base}/{space.name}/{entry.adaptor}{quote(entry.path)}",
        },  # fmt: skip
    }


def mount_of(kind: str, options: dict[str, Any]) -> str:
    """What an adaptor serves, as the seed's ``location.mount`` says it."""
    if kind == "sshfs":
        return str(options.get("path", "."))
    if kind == "s3":
        return f"{options['bucket']}/{options.get('prefix', '')}".rstrip("/")
    return str(options.get("volume", {}).get("name", "/"))


def http_date(timestamp: float) -> str:
    """``Fri, 28 Dec 2018 18:47:10 +0000``, whatever the locale."""
    t = time.gmtime(timestamp)
    return f"{DAYS[t.tm_wday]}, {t.tm_mday:02d} {MONTHS[t.tm_mon - 1]} {t.tm_year} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
