"""The federated namespace: one WsgiDAV provider at ``/`` over every mount.

WsgiDAV refuses COPY and MOVE between two of its providers, so davgate
registers exactly one provider, this one, and dispatches each path to the
mount that owns it. Paths above the mounts (``/`` itself, and ``/projects``
when ``/projects/a`` is a mount) are read-only virtual folders listing what
lies below them.

Extension point: a mount that has a method ``get_resource_inst(path,
environ, rel)`` makes its own WsgiDAV resources for its paths (the
``dispel`` mount does, see :mod:`davgate.dispel.mount`); every other mount
gets the shared resources of :mod:`davgate.providers.resources`.
"""

from __future__ import annotations

from urllib.parse import quote

from wsgidav import util
from wsgidav.dav_error import HTTP_BAD_REQUEST, HTTP_CONFLICT, HTTP_FORBIDDEN, DAVError
from wsgidav.dav_provider import DAVCollection, DAVProvider

from davgate.providers import Entry, Mount
from davgate.providers.resources import FileResource, FolderResource, translate

FORBIDDEN_SEGMENTS = {".", ".."}
ROOT_WRITE_REFUSED = "this folder lists mounts; write inside a mount"


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


class Namespace(DAVProvider):
    """Dispatches paths to mounts; the single provider WsgiDAV sees."""

    def __init__(self, mounts: dict[str, Mount]) -> None:
        super().__init__()
        self.mounts = {tuple(split_path(path)): mount for path, mount in mounts.items()}

    def locate(self, path: str) -> tuple[Mount, str] | None:
        """The mount owning ``path`` and the path relative to it, or None."""
        segments = split_path(path)
        for size in range(len(segments), 0, -1):
            mount = self.mounts.get(tuple(segments[:size]))
            if mount is not None:
                return mount, "/".join(segments[size:])
        return None

    def locate_or_fail(self, path: str) -> tuple[Mount, str]:
        found = self.locate(path)
        if found is None:
            raise DAVError(HTTP_CONFLICT, context_info="destination is not inside a mount")
        return found

    def virtual_members(self, path: str) -> list[str] | None:
        """Names listed by the virtual folder at ``path``, or None if there is none."""
        prefix = tuple(split_path(path))
        names = {key[len(prefix)] for key in self.mounts if len(key) > len(prefix) and key[: len(prefix)] == prefix}
        return sorted(names) if names else None

    def get_resource_inst(self, path: str, environ: dict):
        found = self.locate(path)
        if found is None:
            members = self.virtual_members(path)
            return VirtualFolder(path, environ, members) if members is not None else None
        mount, rel = found
        own_resources = getattr(mount, "get_resource_inst", None)
        if own_resources is not None:  # extension point: a virtual mount (dispel) makes its own
            return own_resources(path, environ, rel)
        with translate():
            entry = mount.stat(rel)
        if entry is None:
            return None
        return self.resource(path, environ, mount, rel, entry)

    def resource(self, path: str, environ: dict, mount: Mount, rel: str, entry: Entry):
        cls = FolderResource if entry.is_folder else FileResource
        return cls(path, environ, mount, rel, entry)

    def ref_url(self, path: str, is_collection: bool) -> str:
        """The lock and property key of ``path``, as WsgiDAV's get_ref_url() builds it."""
        if is_collection and not path.endswith("/"):
            path += "/"
        return quote(self.share_path + path)
