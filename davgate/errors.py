"""davgate's error tree, and the one table that maps it to HTTP.

Storage backends raise these (``raise NotFound(path) from error``) instead of
their library's exceptions; :func:`to_dav_error` is the single boundary where
they become WsgiDAV ``DAVError`` responses. Nothing matches message text.
"""

from __future__ import annotations

from wsgidav.dav_error import (
    HTTP_BAD_GATEWAY,
    HTTP_CONFLICT,
    HTTP_FORBIDDEN,
    HTTP_INSUFFICIENT_STORAGE,
    HTTP_NOT_FOUND,
    HTTP_PRECONDITION_FAILED,
    DAVError,
)

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
