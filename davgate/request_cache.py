"""Resources remembered for the rest of one request, until the request changes storage.

WsgiDAV asks the provider for the same path several times while serving one
request (the directory browser, then the method handler; a PUT also asks
for the parent), and each lookup costs a ``stat`` and a containment check.
The first answer is kept in the request's environ under :data:`KEY`, by
path; a missing path is remembered as ``None``.

Anything that changes storage during the request (a PUT's commit, DELETE,
MOVE, COPY, MKCOL, a new lock's empty file, a new modification time) MUST
call :func:`forget`, so that no later lookup in the same request sees the
old state. Another request never sees this cache: each request has its own
environ.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

KEY = "davgate.resources"


def lookup(environ: MutableMapping[str, Any], path: str, make: Callable[[], Any]) -> Any:
    """The resource at ``path`` this request already looked up, else ``make()``'s, kept."""
    cache = environ.get(KEY)
    if cache is None:
        cache = environ[KEY] = {}
    elif path in cache:
        return cache[path]
    resource = cache[path] = make()
    return resource


def forget(environ: MutableMapping[str, Any] | None) -> None:
    """Storage changed: every later lookup in this request asks the mount again."""
    cache = environ.get(KEY) if environ is not None else None
    if cache:
        cache.clear()


@contextlib.contextmanager
def changing(environ: MutableMapping[str, Any] | None) -> Iterator[None]:
    """Around a change to storage: forget afterwards, even if the change failed halfway."""
    try:
        yield
    finally:
        forget(environ)
