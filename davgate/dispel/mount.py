"""The ``dispel`` mount: virtual, read-only paths that run templates.

It is a :class:`~davgate.providers.Mount`, so the rest of davgate can stat,
list and read it like any storage; for WebDAV it makes its own resources
(:mod:`davgate.dispel.tree`) through the namespace's extension point
``get_resource_inst(path, environ, rel)``, because a result's size is only
known once it is made, and its responses carry their own headers (ETag,
gzip, file name).

The mount is built like every other from its configuration; the
application then calls :meth:`DispelMount.attach` with a lookup of the
other mounts (its ``source`` among them), the state store and the cache.

A result, a cached result and a listing show what the template reads from
its source mount, so :meth:`DispelMount.reads` names that for the access
control (:mod:`davgate.access`): a request reads there under the source
mount's rules and the token's scopes, as if it asked the source itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from davgate import errors
from davgate.dispel.cache import DispelCache
from davgate.dispel.elements import Registry
from davgate.dispel.engine import Engine, determined_path
from davgate.dispel.errors import DispelError, ReadOnly, to_dav_error
from davgate.dispel.executor import Executor
from davgate.dispel.templates import TemplateSet
from davgate.dispel.tree import Folder, Node, ResultFile, resolve, translated
from davgate.providers import Entry, Mount, Upload
from davgate.state import StateStore

WRITE_METHODS = frozenset({"PUT", "DELETE", "MKCOL", "PROPPATCH", "MOVE", "LOCK", "UNLOCK", "POST", "PATCH"})
MEMO = "davgate.dispel.resources"


class DispelMount(Mount):
    """Serves ``/dispel/<template>/<p1>/.../<pn>`` from the templates in ``options.templates``."""

    def __init__(self, path: str, options: Any) -> None:
        super().__init__(path, options)
        self.readonly = True
        self.engine: Engine | None = None
        self.segments = tuple(s for s in path.split("/") if s)

    def attach(self, *, lookup: Callable[[str], Mount | None], store: StateStore, cache: DispelCache) -> None:
        """Connect the mount to the application: other mounts, the state store, the cache."""
        options = self.options
        elements: Mapping[str, str] = dict(getattr(options, "elements", None) or {})
        templates = TemplateSet(
            options.templates, Registry(elements), on_change=lambda t: cache.drop_template(t.name, t.digest)
        )
        self.engine = Engine(
            templates=templates,
            lookup=lookup,
            source=options.source,
            store=store,
            cache=cache,
            executor=Executor.for_mount(options),
            time_limit=options.time_limit,
            tile_size=options.tile_size,
            elements=elements,
        )

    def require_engine(self) -> Engine:
        if self.engine is None:
            raise errors.Unavailable(self.path, "the dispel mount is not attached to an application")
        return self.engine

    # --- WebDAV: the namespace's extension point ---------------------------------------

    def get_resource_inst(self, path: str, environ: dict, rel: str):
        """The resource at ``path`` (``rel`` inside this mount), or None; cached per request."""
        memo = environ.setdefault(MEMO, {})
        if path in memo:
            return memo[path]
        if self.is_write(environ):
            raise to_dav_error(ReadOnly(f"{self.path} is read-only: DISPEL paths cannot be written"))
        query = environ.get("QUERY_STRING", "") if path == environ.get("PATH_INFO") else ""  # the request's own target
        with translated():
            node = resolve(self.require_engine(), rel, query)
        memo[path] = self.make_resource(path, environ, node)
        return memo[path]

    def make_resource(self, path: str, environ: dict, node: Node):
        return ResultFile(path, environ, node, self) if node.is_result else Folder(path, environ, node, self)

    def is_write(self, environ: dict) -> bool:
        method = environ.get("REQUEST_METHOD", "")
        if method in WRITE_METHODS:
            return True
        if method == "COPY":
            destination = unquote(urlsplit(environ.get("HTTP_DESTINATION", "")).path)
            return tuple(s for s in destination.split("/") if s)[: len(self.segments)] == self.segments
        return False

    def reads(self, rel: str) -> list[str]:
        """The namespace path a request for ``rel`` reads: its template's input, as far as ``rel`` determines it.

        The root lists template names only (and those whose source the user
        may not read are left out of it, :mod:`davgate.dispel.tree`). An
        unknown template reads nothing (the request is a 404); parameters
        that do not parse could name anything on the source, so the whole
        source mount is what they read.
        """
        segments = [s for s in rel.split("/") if s]
        if not segments:
            return []
        engine = self.require_engine()
        try:
            template = engine.templates.get(segments[0])
        except DispelError:
            return []
        source = "/" + (template.input_mount or engine.source).strip("/")
        try:
            selection = template.parse(segments[1:])
        except DispelError:
            return [source]
        path, _complete = determined_path(template, len(selection.values), selection.texts)
        return [f"{source}/{path}" if path else source]

    def resolve(self, rel: str) -> Node:
        """The node at ``rel``; raises DispelError (404 unknown template, 400 bad parameters, ...)."""
        return resolve(self.require_engine(), rel)

    # --- the Mount contract ------------------------------------------------------------

    def stat(self, rel: str) -> Entry | None:
        try:
            node = self.resolve(rel)
        except DispelError as error:
            if error.status in (400, 404):
                return None
            raise storage_error(rel, error) from error
        return self.entry(rel.rsplit("/", 1)[-1], node)

    def list(self, rel: str) -> list[Entry]:
        try:
            return [self.entry(name, node) for name, node in self.resolve(rel).members()]
        except DispelError as error:
            raise storage_error(rel, error) from error

    def entry(self, name: str, node: Node) -> Entry:
        modified = node.modified() or 0.0
        if not node.is_result:
            return Entry(name=name, is_folder=True, modified=modified, etag=node.etag())
        assert node.template is not None and node.selection is not None and node.located is not None
        key = node.engine.key(node.template, node.selection, node.located)
        output = node.template.outputs[node.selection.output or node.template.default_output]
        size = node.engine.cached_size(key) or 0
        return Entry(name=name, is_folder=False, size=size, modified=modified, etag=key, content_type=output.media_type)

    def open_read(self, rel: str) -> BinaryIO:
        try:
            node = self.resolve(rel)
            if not node.is_result:
                raise errors.Conflict(rel, "a folder has no content")
            assert node.template is not None and node.selection is not None and node.located is not None
            return node.engine.result(node.template, node.selection, node.located).file
        except DispelError as error:
            raise storage_error(rel, error) from error

    def open_upload(self, rel: str) -> Upload:
        raise errors.ReadOnly(rel)

    def make_folder(self, rel: str) -> None:
        raise errors.ReadOnly(rel)

    def remove_file(self, rel: str) -> None:
        raise errors.ReadOnly(rel)

    def remove_folder(self, rel: str) -> None:
        raise errors.ReadOnly(rel)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()


def storage_error(rel: str, error: DispelError) -> errors.StorageError:
    """A DISPEL error as the storage error tree says it (for users of the Mount contract)."""
    cls: type[errors.StorageError] = {
        400: errors.NotFound,
        403: errors.ReadOnly,
        404: errors.NotFound,
        504: errors.Unavailable,
    }.get(error.status, errors.BadGateway)
    return cls(rel, error.reason)


__all__ = ["DispelMount", "translated"]
