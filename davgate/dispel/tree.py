"""The browsable DISPEL tree as WebDAV resources.

``/dispel/`` lists the templates; a template's folder lists the values of
its first parameter that exist, each of those the values of the next, and
the last level lists result files (one per listed output, e.g. ``.tif`` and
a ``.png`` preview). Listings come from source listings and TIFF headers
only: nothing is computed until a result file is read. A result's size is
shown once it is cached.

A cached result also shows its cache index entry as properties in the
namespace ``urn:davgate:dispel`` (template, parameters, size, created,
hits, last-use, checksum, definition), read-only like everything here:
writes are refused with 403 before a resource is even made (see
:mod:`davgate.dispel.mount`). ``/dispel/`` lists only the templates whose
source the request may read (:func:`davgate.namespace.visible`); below a
template, the access control has already checked the source.

A result is served as a download that never runs in a browser, as every
mounted file is (:func:`davgate.providers.resources.inert_headers`).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, BinaryIO

from wsgidav import util
from wsgidav.dav_error import HTTP_NOT_FOUND, DAVError
from wsgidav.dav_provider import DAVCollection, DAVNonCollection

from davgate import errors, sendfile
from davgate.dispel.cache import Blob
from davgate.dispel.engine import Engine, Located, determined_path
from davgate.dispel.errors import DispelError, InputNotFound, ReadOnly, to_dav_error
from davgate.dispel.params import Selection
from davgate.dispel.templates import Template
from davgate.namespace import visible
from davgate.providers import Entry
from davgate.providers.resources import inert_headers
from davgate.state import CacheEntry

if TYPE_CHECKING:
    from davgate.dispel.mount import DispelMount

COPY_CHUNK = 1024 * 1024
LIVE_PROPERTIES = (
    "{DAV:}resourcetype", "{DAV:}getcontenttype", "{DAV:}getlastmodified", "{DAV:}displayname", "{DAV:}getetag",
)  # fmt: skip
NS = "{urn:davgate:dispel}"
ENTRY_PROPERTIES: dict[str, Callable[[CacheEntry], str]] = {
    f"{NS}template": lambda entry: entry.template,
    f"{NS}parameters": lambda entry: entry.params,
    f"{NS}size": lambda entry: str(entry.size),
    f"{NS}created": lambda entry: util.get_rfc3339_time(entry.created),
    f"{NS}hits": lambda entry: str(entry.hits),
    f"{NS}last-use": lambda entry: util.get_rfc3339_time(entry.last_use),
    f"{NS}checksum": lambda entry: entry.digest,
    f"{NS}definition": lambda entry: entry.definition,
}
NOT_LOOKED_UP = CacheEntry("", "", "", "", 0, "", 0.0)


@contextmanager
def translated() -> Iterator[None]:
    """The boundary where DISPEL and storage errors become HTTP errors."""
    try:
        yield
    except DispelError as error:
        raise to_dav_error(error) from error
    except errors.StorageError as error:
        raise errors.to_dav_error(error) from error


@dataclass(frozen=True)
class Node:
    """A place in the tree: the root, a template's folder, a parameter folder or a result."""

    engine: Engine
    template: Template | None = None
    selection: Selection | None = None
    located: Located | None = None

    @property
    def is_result(self) -> bool:
        return self.selection is not None and self.selection.complete

    def etag(self) -> str:
        parts = [self.template.digest if self.template else "", *(self.selection.texts if self.selection else ())]
        if self.located is not None and self.located.entry is not None:
            parts.append(self.located.entry.etag)
        return hashlib.sha1("/".join(parts).encode()).hexdigest()

    def modified(self) -> float | None:
        stamps = [self.template.modified] if self.template else []
        if self.located is not None and self.located.entry is not None:
            stamps.append(self.located.entry.modified)
        return max(stamps) if stamps else None

    def members(self) -> list[tuple[str, Node]]:
        """Names and nodes of what this folder lists."""
        if self.template is None:
            return [(name, resolve(self.engine, name)) for name in self.engine.templates.names()]
        assert self.selection is not None
        if self.located is None:
            return []
        template, selection = self.template, self.selection
        param = template.params[len(selection.values)]
        last = len(selection.values) == len(template.params) - 1
        members = []
        for text, entry in self.engine.values(template, selection, self.located):
            child = Selection((*selection.values, param.parse(text)), (*selection.texts, text))
            if last:
                for output in template.listed_outputs:
                    members.append((f"{text}.{output}", replace(self, selection=template.result(child, output))))
                continue
            located = self.child_located(child, entry)
            if located is not None:
                members.append((text, Node(self.engine, template, child, located)))
        return members

    def child_located(self, child: Selection, entry: Entry | None) -> Located | None:
        """Where a member points: from this folder's listing, without a lookup, where possible."""
        assert self.template is not None and self.located is not None
        rel, complete = determined_path(self.template, len(child.values), child.texts)
        if rel == self.located.rel:
            return self.located
        if entry is not None and rel == "/".join(filter(None, (self.located.rel, entry.name))):
            return Located(self.located.mount, rel, entry, complete)
        try:
            return self.engine.locate(self.template, child)
        except DispelError:
            return None


def resolve(engine: Engine, rel: str, query: str = "") -> Node:
    """The node at ``rel`` (a result's options in ``query``); raises DispelError (404 unknown template, 400 bad parameters, ...)."""
    segments = [s for s in rel.split("/") if s]
    if not segments:
        return Node(engine)
    template = engine.templates.get(segments[0])
    selection = template.parse(segments[1:], query)
    try:
        located = engine.locate(template, selection)
    except InputNotFound:
        if len(segments) > 1:
            raise
        return Node(engine, template, selection, None)  # a template's folder exists before its input folder does
    return Node(engine, template, selection, located)


class DispelResource:
    """What every DISPEL resource shares: read-only, no locks, no dead properties."""

    path: str
    environ: dict
    node: Node

    def get_etag(self) -> str:
        return self.node.etag()

    def support_etag(self) -> bool:
        return True

    def get_last_modified(self) -> float | None:
        return self.node.modified()

    def get_creation_date(self) -> None:
        return None

    def prevent_locking(self) -> bool:
        return True

    def get_property_names(self, *, is_allprop: bool) -> list[str]:
        names = list(LIVE_PROPERTIES)
        if not self.is_collection and self.get_content_length() is not None:  # type: ignore[attr-defined]
            names.append("{DAV:}getcontentlength")
        return names

    def refuse(self, *args: Any, **kwargs: Any) -> Any:
        with translated():
            raise ReadOnly(f"{self.path} is read-only: DISPEL paths cannot be written")

    create_empty_resource = create_collection = delete = begin_write = refuse
    set_property_value = set_last_modified = move_recursive = refuse

    def support_recursive_move(self, dest_path: str) -> bool:
        return False

    def handle_move(self, dest_path: str) -> bool:
        self.refuse()
        return True


class Folder(DispelResource, DAVCollection):
    def __init__(self, path: str, environ: dict, node: Node, mount: DispelMount) -> None:
        DAVCollection.__init__(self, path, environ)
        self.node = node
        self.mount = mount

    def get_display_name(self) -> str:
        return self.name or self.mount.path.strip("/")

    def get_member_names(self) -> list[str]:
        return [name for name, _node in self.members()]

    def get_member_list(self) -> list:
        return [
            self.mount.make_resource(util.join_uri(self.path, name), self.environ, node)
            for name, node in self.members()
        ]

    def members(self) -> list[tuple[str, Node]]:
        """The members; at the root, only templates whose source this request may read."""
        with translated():
            members = self.node.members()
        if self.node.template is not None:
            return members
        return [(name, node) for name, node in members if visible(self.environ, util.join_uri(self.path, name))]

    def get_member(self, name: str):
        try:
            return self.provider.get_resource_inst(util.join_uri(self.path, name), self.environ)
        except DAVError:
            return None

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        """Refused: copying a folder would compute every result below it in one request."""
        with translated():
            raise ReadOnly(f"{self.path} is a DISPEL folder: copy its results one by one")


class ResultFile(DispelResource, DAVNonCollection):
    """A template's result: computed (or taken from the cache) when it is read."""

    def __init__(self, path: str, environ: dict, node: Node, mount: DispelMount) -> None:
        DAVNonCollection.__init__(self, path, environ)
        self.node = node
        self.mount = mount
        assert node.template is not None and node.selection is not None and node.selection.output is not None
        self.template, self.selection = node.template, node.selection
        self.output = node.template.outputs[node.selection.output]
        self.encoding = "gzip" if self.output.gzip and self.is_target() and wants_gzip(environ) else None
        self.size: int | None = None
        self.blob: Blob | None = None
        self._key: str | None = None
        self._entry: CacheEntry | None = NOT_LOOKED_UP

    @property
    def key(self) -> str:
        if self._key is None:
            assert self.node.located is not None
            self._key = self.node.engine.key(self.template, self.selection, self.node.located)
        return self._key

    def is_target(self) -> bool:
        """True if this request reads this very file (GET or HEAD of its path)."""
        return self.environ.get("REQUEST_METHOD") in ("GET", "HEAD") and self.path == self.environ.get("PATH_INFO")

    def get_etag(self) -> str:
        return self.key + ("-gzip" if self.encoding else "")

    def cache_entry(self) -> CacheEntry | None:
        """The result's cache index entry (None until it is cached), looked up once per request."""
        if self._entry is NOT_LOOKED_UP:
            self._entry = self.node.engine.cache.entry(self.key)
        return self._entry

    def get_property_names(self, *, is_allprop: bool) -> list[str]:
        names = super().get_property_names(is_allprop=is_allprop)
        if self.cache_entry() is not None:
            names.extend(ENTRY_PROPERTIES)
        return names

    def get_property_value(self, name: str) -> Any:
        if name not in ENTRY_PROPERTIES:
            return super().get_property_value(name)
        entry = self.cache_entry()
        if entry is None:
            raise DAVError(HTTP_NOT_FOUND)
        return ENTRY_PROPERTIES[name](entry)

    def get_content_type(self) -> str:
        return self.output.media_type

    def get_display_name(self) -> str:
        return self.name

    def support_ranges(self) -> bool:
        return True

    def get_content_length(self) -> int | None:
        if self.size is None and self.is_target():
            self.materialize()
        if self.size is None:
            entry = self.cache_entry()
            return entry.size if entry else None
        return self.size

    def materialize(self) -> None:
        """Take the result from the cache or make it; keep it open for get_content."""
        assert self.node.located is not None
        with translated():
            blob = self.node.engine.result(self.template, self.selection, self.node.located)
            if self.encoding:
                raw, blob = blob, self.node.engine.gzipped(self.template, self.selection, blob)
                raw.close()
        self.size = blob.size
        if self.environ.get("REQUEST_METHOD") == "HEAD":
            blob.close()
        else:
            self.blob = blob

    def get_content(self) -> BinaryIO:
        """The result; for a GET's body, the server may send it from the cache's file (:mod:`davgate.sendfile`)."""
        if self.blob is None:
            self.materialize()
        assert self.blob is not None
        blob, self.blob = self.blob, None
        blob.file.seek(0)
        return sendfile.offered(blob.file, self.environ)

    def finalize_headers(self, environ: dict, response_headers: list[tuple[str, str]]) -> None:
        inert_headers(response_headers)
        if self.output.gzip:
            response_headers.append(("Vary", "Accept-Encoding"))
        if self.encoding:
            response_headers.append(("Content-Encoding", self.encoding))
        name = self.template.file_name(self.selection)
        if name:
            response_headers.append(("Content-Disposition", f'inline; filename="{name}"'))

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        """COPY a result out of /dispel: the bytes are streamed into the destination."""
        if is_move:
            self.refuse()
        mount, dest_rel = self.provider.locate_or_fail(dest_path)
        if mount.readonly:
            raise DAVError(403, context_info=f"{mount.path} is read-only")
        self.encoding = None
        source = self.get_content()
        with translated():
            upload = mount.open_upload(dest_rel)
            try:
                with source:
                    shutil.copyfileobj(source, upload, COPY_CHUNK)
                upload.commit()
            except BaseException:
                upload.abort()
                raise


def wants_gzip(environ: dict) -> bool:
    """True if the client accepts gzip and did not ask for a byte range."""
    if "HTTP_RANGE" in environ:
        return False
    for part in environ.get("HTTP_ACCEPT_ENCODING", "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip"):
            return quality(params) > 0
    return False


def quality(params: str) -> float:
    """The q value of an Accept-Encoding item's parameters (1 when absent or malformed)."""
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 1.0
    return 1.0
