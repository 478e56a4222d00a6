"""GET and HEAD of a folder: davgate's page instead of WsgiDAV's; everything else passes on."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from wsgidav.mw.base_mw import BaseMiddleware

from davgate.pages import folder
from davgate.pages.html import PAGE_HEADERS


class FolderPages(BaseMiddleware):
    """WsgiDAV middleware behind access control, where WsgiDAV's dir browser was."""

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        provider = environ.get("wsgidav.provider")
        if method not in ("GET", "HEAD") or provider is None:
            return self.next_app(environ, start_response)
        path = environ["PATH_INFO"]
        resource = provider.get_resource_inst(path, environ)
        if resource is None or not resource.is_collection:
            return self.next_app(environ, start_response)
        if path != canonical(path):
            return redirect(start_response, folder.url_of(path))
        body = folder.page(resource, environ)
        start_response("200 OK", [*PAGE_HEADERS, ("Content-Length", str(len(body)))])
        return [] if method == "HEAD" else [body]


def canonical(path: str) -> str:
    """``/a/b/`` for ``/a/b``, ``/a//b`` and ``/a/b/``."""
    return "/" + "".join(segment + "/" for segment in path.split("/") if segment)


def redirect(start_response: Callable, location: str) -> list[bytes]:
    """A folder's page lives at its URL with a trailing '/', so that its relative links resolve inside it."""
    start_response(
        "301 Moved Permanently", [("Location", location), ("Content-Length", "0"), ("Cache-Control", "no-store")]
    )
    return []
