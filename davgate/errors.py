"""davgate's error tree, and the one table that maps it to HTTP.

Storage backends raise these (``raise NotFound(path) from error``) instead of
their library's exceptions; :func:`to_dav_error` is the single boundary where
they become WsgiDAV ``DAVError`` responses. Nothing matches message text.

The state store's one error a client can do something about, a store that
stayed busy past its timeout, is answered 503 with ``Retry-After`` by
:class:`BusyStoreAnswer`, wherever in a request it happens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from wsgidav.dav_error import (
    HTTP_BAD_GATEWAY,
    HTTP_CONFLICT,
    HTTP_FORBIDDEN,
    HTTP_INSUFFICIENT_STORAGE,
    HTTP_NOT_FOUND,
    HTTP_PRECONDITION_FAILED,
    DAVError,
)
from wsgidav.mw.base_mw import BaseMiddleware

from davgate.state import StoreBusy

HTTP_SERVICE_UNAVAILABLE = 503


class StorageError(Exception):
    """A storage operation failed; carries the mount-relative path."""

    reason = "storage error"

    def __init__(self, path: str, detail: str | None = None) -> None:
        self.path = path
        self.detail = detail or self.reason
        super().__init__(f"{self.detail}: {path}")


class NotFound(StorageError):
    reason = "not found"


class Forbidden(StorageError):
    reason = "forbidden"


class OutsideMount(Forbidden):
    reason = "path leaves its mount"


class ReadOnly(Forbidden):
    reason = "mount is read-only"


class Conflict(StorageError):
    reason = "conflict"


class Exists(Conflict):
    reason = "already exists"


class NotEmpty(Conflict):
    reason = "folder is not empty"


class PreconditionFailed(StorageError):
    reason = "precondition failed"


class NoSpace(StorageError):
    reason = "no space left on the storage"


class Unavailable(StorageError):
    """The backend cannot be reached or did not answer in time."""

    reason = "storage backend unavailable"


class BadGateway(StorageError):
    """The backend answered with something we cannot use."""

    reason = "storage backend failed"


HTTP_STATUS: dict[type[StorageError], int] = {
    NotFound: HTTP_NOT_FOUND,
    Forbidden: HTTP_FORBIDDEN,
    Conflict: HTTP_CONFLICT,
    PreconditionFailed: HTTP_PRECONDITION_FAILED,
    NoSpace: HTTP_INSUFFICIENT_STORAGE,
    Unavailable: HTTP_SERVICE_UNAVAILABLE,
    BadGateway: HTTP_BAD_GATEWAY,
}


def status_of(error: StorageError) -> int:
    """The HTTP status for an error, by its nearest class in the table."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return HTTP_BAD_GATEWAY


def to_dav_error(error: StorageError) -> DAVError:
    return DAVError(status_of(error), context_info=error.detail)


@contextlib.contextmanager
def translate() -> Iterator[None]:
    """The boundary where storage errors become HTTP errors."""
    try:
        yield
    except StorageError as error:
        raise to_dav_error(error) from error


RETRY_AFTER = "1"  # seconds: a busy store is usually free again within one


def busy_answer(error: StoreBusy) -> DAVError:
    """503 with ``Retry-After``: the answer to a state store that stayed busy."""
    return DAVError(HTTP_SERVICE_UNAVAILABLE, context_info=str(error), add_headers=[("Retry-After", RETRY_AFTER)])


class BusyStoreAnswer(BaseMiddleware):
    """WsgiDAV middleware (just inside its ErrorPrinter): a busy state store is 503, not 500.

    Where WsgiDAV itself catches every exception of a provider's method (as
    around ``handle_delete``), the method raises :func:`busy_answer` itself.
    """

    def __call__(self, environ: dict, start_response):
        try:
            yield from self.next_app(environ, start_response)
        except StoreBusy as error:
            raise busy_answer(error) from error
