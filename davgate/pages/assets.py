"""The pages' static files (CSS, JavaScript, icons), served from the package under ``/.davgate/``.

They are read once, when the module is imported, from ``static/`` beside
it (package data, so they come with ``pip install .``). Only the files
found there are served, by exact name: nothing from a request ever becomes
a file path. Each carries a strong ETag (a hash of its bytes), which also
versions its URL in the pages, so a new davgate is never served stale
assets from a browser's cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources

from wsgidav.mw.base_mw import BaseMiddleware

ASSETS = "/.davgate"  # reserved: no mount may sit here (ops.startup.check_reserved_paths)
TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
READ = ("GET", "HEAD")


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str

    @property
    def version(self) -> str:
        return self.etag[:12]


def load() -> dict[str, Asset]:
    """Every file of ``static/`` with a known type, by name."""
    found = {}
    for item in resources.files(__package__).joinpath("static").iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in TYPES:
            body = item.read_bytes()
            found[item.name] = Asset(body, TYPES[suffix], hashlib.sha256(body).hexdigest()[:32])
    return found


FILES = load()


def url(name: str) -> str:
    """The versioned URL of asset ``name`` (which must exist), for the pages."""
    return f"{ASSETS}/{name}?v={FILES[name].version}"


def is_asset_path(path: str) -> bool:
    return path == ASSETS or path.startswith(ASSETS + "/")


class Assets(BaseMiddleware):
    """WsgiDAV middleware in front of authentication: answers every request below :data:`ASSETS`."""

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if not is_asset_path(path):
            return self.next_app(environ, start_response)
        method = environ["REQUEST_METHOD"]
        if method not in READ:
            return plain(start_response, "405 Method Not Allowed", "davgate's assets can only be read", READ)
        asset = FILES.get(path[len(ASSETS) + 1 :])
        if asset is None:
            return plain(start_response, "404 Not Found", "no such asset of davgate")
        return serve(environ, start_response, asset)


def serve(environ: dict, start_response: Callable, asset: Asset) -> list[bytes]:
    etag = f'"{asset.etag}"'
    headers = [
        ("ETag", etag),
        ("Cache-Control", "no-cache"),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Length", str(len(asset.body))),  # on a 304 too: the length of what is not sent again
    ]
    if etag in environ.get("HTTP_IF_NONE_MATCH", ""):
        start_response("304 Not Modified", headers)
        return []
    headers.append(("Content-Type", asset.content_type))
    start_response("200 OK", headers)
    return [] if environ["REQUEST_METHOD"] == "HEAD" else [asset.body]


def plain(start_response: Callable, status: str, reason: str, allow: tuple[str, ...] = ()) -> list[bytes]:
    body = f"{status}: {reason}\n".encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    headers += [("X-Content-Type-Options", "nosniff")] + ([("Allow", ", ".join(allow))] if allow else [])
    start_response(status, headers)
    return [body]
