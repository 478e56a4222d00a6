"""The federated namespace: one WsgiDAV provider at ``/`` over every mount.

WsgiDAV refuses COPY and MOVE between two of its providers, so davgate
registers exactly one provider, this one, and dispatches each path to the
mount that owns it. Paths above the mounts (``/`` itself, and ``/projects``
when ``/projects/a`` is a mount) are read-only virtual folders listing what
lies below them: only the mounts the request may read (the access control
answers through :data:`VISIBLE`), no dead properties, no locks.

Live mounts: mounts added and removed while serving (the management API's
namespaces) come from a :class:`LiveMounts` attached with :meth:`Namespace.attach`.
Each lives below its own first segment, a *space* (``/test-001/lisa``). The
namespace asks the live mounts for their generation at most once per
``interval`` seconds (and on a miss, at most every 0.1 s) and rebuilds its
table when it changed; the hot path only compares a clock. The table is one
tuple, replaced whole, so a thread sees the old table or the new one.

Extension point: a mount that has a method ``get_resource_inst(path,
environ, rel)`` makes its own WsgiDAV resources for its paths (the
``dispel`` mount does, see :mod:`davgate.dispel.mount`); every other mount
gets the shared resources of :mod:`davgate.providers.resources`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol
from urllib.parse import quote

from wsgidav import util
from wsgidav.dav_error import HTTP_BAD_REQUEST, HTTP_CONFLICT, HTTP_FORBIDDEN, HTTP_NOT_FOUND, DAVError
from wsgidav.dav_provider import DAVCollection, DAVProvider

from davgate import lock_checks, propfind, request_cache
from davgate.digest import Digests
from davgate.providers import Entry, Mount, liveprops
from davgate.providers.resources import FileResource, FolderResource, translate

log = logging.getLogger("davgate.namespace")

FORBIDDEN_SEGMENTS = {".", ".."}
MISS_INTERVAL = 0.1  # seconds between generation checks caused by paths no mount has
MountTable = dict[tuple[str, ...], Mount]
ROOT_WRITE_REFUSED = "this folder lists mounts; write inside a mount"
VISIBLE = "davgate.access.visible"  # environ: may a listing show this mount path? (set by davgate.access)


def visible(environ: dict, path: str) -> bool:
    """Whether a listing made for this request may show ``path``; all may without access control."""
    check = environ.get(VISIBLE)
    return check is None or check(path)


def split_path(path: str) -> list[str]:
    """The segments of a request path; refuses traversal and control characters."""
    segments = [s for s in path.split("/") if s]
    for segment in segments:
        if segment in FORBIDDEN_SEGMENTS or "\\" in segment or not segment.isprintable():
            raise DAVError(HTTP_BAD_REQUEST, context_info="path has a forbidden segment or character")
    return segments


class VirtualFolder(DAVCollection):
    """A read-only folder above the mounts."""

    def __init__(self, path: str, environ: dict, members: list[str]) -> None:
        super().__init__(path, environ)
        self.members = members

    def get_member_names(self) -> list[str]:
        return list(self.members)

    def get_member(self, name: str):
        return self.provider.get_resource_inst(util.join_uri(self.path, name), self.environ)

    def get_display_name(self) -> str:
        return self.name or "/"

    def get_etag(self) -> str:
        return "virtual-" + "-".join(self.members)

    def get_property_names(self, *, is_allprop: bool) -> list[str]:
        live = [name for name in super().get_property_names(is_allprop=is_allprop) if name.startswith("{DAV:}")]
        return liveprops.property_names(live, is_allprop=is_allprop)

    def get_property_value(self, name: str):
        if name == liveprops.OC_PERMISSIONS:
            return liveprops.READ_ONLY_LETTERS
        if name in liveprops.QUOTA_PROPERTIES or not name.startswith("{DAV:}"):
            raise DAVError(HTTP_NOT_FOUND)  # no quota, and no dead properties: nobody writes here
        return super().get_property_value(name)

    def set_property_value(self, name: str, value, *, dry_run: bool = False):
        raise DAVError(HTTP_FORBIDDEN, context_info=ROOT_WRITE_REFUSED)

    def support_etag(self) -> bool:
        return True

    def get_last_modified(self) -> float | None:
        return None

    def create_empty_resource(self, name: str):
        raise DAVError(HTTP_FORBIDDEN, context_info=ROOT_WRITE_REFUSED)

    def create_collection(self, name: str):
        raise DAVError(HTTP_FORBIDDEN, context_info=ROOT_WRITE_REFUSED)

    def delete(self) -> None:
        raise DAVError(HTTP_FORBIDDEN, context_info=ROOT_WRITE_REFUSED)

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        raise DAVError(HTTP_FORBIDDEN, context_info=ROOT_WRITE_REFUSED)

    def support_recursive_move(self, dest_path: str) -> bool:
        return False

    def prevent_locking(self) -> bool:
        return True


class LiveMounts(Protocol):
    """Mounts that come and go while serving, each below its space (first segment)."""

    def generation(self) -> int:
        """A number that changes whenever :meth:`mounts` would answer differently (one cheap read)."""

    def mounts(self) -> dict[str, Mount]:
        """The live mounts by path (``/space/name``)."""


class Namespace(DAVProvider):
    """Dispatches paths to mounts; the single provider WsgiDAV sees."""

    def __init__(
        self, mounts: dict[str, Mount], digests: Digests | None = None, *, propfind_depth_infinity: bool = False
    ) -> None:
        super().__init__()
        self.static: MountTable = {tuple(split_path(path)): mount for path, mount in mounts.items()}
        self.table: tuple[MountTable, frozenset[str]] = (self.static, frozenset())  # (mounts, spaces)
        self.static_tops = frozenset(key[0] for key in self.static)
        self.digests = digests  # content digests (RFC 3230) that PUT verifies and GET answers
        self.propfind_depth_infinity = propfind_depth_infinity  # server.propfind_depth_infinity
        self.live: LiveMounts | None = None
        self.interval = 1.0
        self.generation: int | None = None
        self.next_check = self.last_miss = 0.0
        self.refreshing = threading.Lock()

    def set_lock_manager(self, lock_manager) -> None:
        """WsgiDAV's lock manager, with a write check of one query while nothing is locked."""
        super().set_lock_manager(lock_checks.quick(lock_manager, self))

    @property
    def mounts(self) -> MountTable:
        """Every mount by its path's segments, live ones included (at most ``interval`` old)."""
        return self.current()[0]

    def attach(self, live: LiveMounts, interval: float = 1.0) -> None:
        """Serve ``live``'s mounts beside the configured ones from now on."""
        self.live, self.interval = live, interval
        self.refresh(wait=True)

    def current(self) -> tuple[MountTable, frozenset[str]]:
        if self.live is not None and time.monotonic() >= self.next_check:
            self.refresh()
        return self.table

    def refresh(self, *, wait: bool = False) -> None:
        """Rebuild the table if the live mounts' generation changed (one thread at a time)."""
        if self.live is None or not self.refreshing.acquire(blocking=wait):
            return
        try:
            self.next_check = time.monotonic() + self.interval
            generation = self.live.generation()
            if generation != self.generation:
                self.table = self.rebuilt(self.live.mounts())
                self.generation = generation
        except Exception:  # noqa: BLE001 -- the store is down: keep serving the table we have
            log.exception("cannot refresh the live mounts; serving the previous table")
        finally:
            self.refreshing.release()

    def rebuilt(self, live: dict[str, Mount]) -> tuple[MountTable, frozenset[str]]:
        added = {tuple(split_path(path)): mount for path, mount in live.items()}
        added = {key: mount for key, mount in added.items() if len(key) > 1 and key[0] not in self.static_tops}
        return {**self.static, **added}, frozenset(key[0] for key in added)

    def space_of(self, path: str) -> str | None:
        """The live space ``path`` lies in, or None (configured mounts, ``/``)."""
        _mounts, spaces = self.current()
        first = path.strip("/").split("/", 1)[0]
        if first in spaces:
            return first
        now = time.monotonic()
        if self.live is None or not first or first in self.static_tops or now - self.last_miss < MISS_INTERVAL:
            return None
        self.last_miss = now  # a space made a moment ago by another process?
        self.refresh(wait=True)
        return first if first in self.table[1] else None

    def locate(self, path: str) -> tuple[Mount, str] | None:
        """The mount owning ``path`` and the path relative to it, or None."""
        segments = split_path(path)
        mounts = self.mounts
        for size in range(len(segments), 0, -1):
            mount = mounts.get(tuple(segments[:size]))
            if mount is not None:
                return mount, "/".join(segments[size:])
        return None

    def locate_or_fail(self, path: str) -> tuple[Mount, str]:
        found = self.locate(path)
        if found is None:
            raise DAVError(HTTP_CONFLICT, context_info="destination is not inside a mount")
        return found

    def virtual_members(self, path: str, environ: dict) -> list[str] | None:
        """Names listed by the virtual folder at ``path`` for this request, or None if there is none.

        A folder is there for a request that may read a mount below it; the
        root is always there, empty for one that may read none.
        """
        prefix = tuple(split_path(path))
        below = [key for key in self.mounts if len(key) > len(prefix) and key[: len(prefix)] == prefix]
        shown = [key for key in below if visible(environ, "/" + "/".join(key))]
        if not shown and (prefix or not below):
            return None
        return sorted({key[len(prefix)] for key in shown})

    def get_resource_inst(self, path: str, environ: dict):
        found = self.locate(path)
        if found is None:
            members = self.virtual_members(path, environ)
            return VirtualFolder(path, environ, members) if members is not None else None
        mount, rel = found
        own_resources = getattr(mount, "get_resource_inst", None)
        if own_resources is not None:  # extension point: a virtual mount (dispel) makes its own
            return own_resources(path, environ, rel)
        return request_cache.lookup(environ, path, lambda: self.mounted(path, environ, mount, rel))

    def mounted(self, path: str, environ: dict, mount: Mount, rel: str):
        """The resource at ``rel`` of ``mount`` from one ``stat``, or None (get_resource_inst keeps it)."""
        with translate():
            entry = mount.stat(rel)
        if entry is None:
            return None
        return self.resource(path, environ, mount, rel, entry)

    def resource(self, path: str, environ: dict, mount: Mount, rel: str, entry: Entry):
        cls = FolderResource if entry.is_folder else FileResource
        return cls(path, environ, mount, rel, entry)

    def custom_request_handler(self, environ: dict, start_response, default_handler):
        """WsgiDAV's hook per request: PROPFIND on mounted resources is answered in one pass."""
        if environ["REQUEST_METHOD"] == "PROPFIND":
            return propfind.answer(self, environ, start_response, default_handler)
        return default_handler(environ, start_response)

    def ref_url(self, path: str, is_collection: bool) -> str:
        """The lock and property key of ``path``, as WsgiDAV's get_ref_url() builds it."""
        if is_collection and not path.endswith("/"):
            path += "/"
        return quote(self.share_path + path)
