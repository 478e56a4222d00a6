"""What can go wrong with a DISPEL path, each with its HTTP status and a one-line reason.

Elements, the path parser and the engine raise these; :func:`to_dav_error`
is the one place where they become responses. The body of such a response
is the status and the reason on one line, as plain text, so that ``curl``
shows why.
"""

from __future__ import annotations

from wsgidav import dav_error
from wsgidav.dav_error import DAVError, get_http_status_string

# WsgiDAV names unknown statuses "504 Status"; give the status line its real phrase.
dav_error.ERROR_DESCRIPTIONS.setdefault(504, "504 Gateway Timeout")


class DispelError(Exception):
    """A request for a DISPEL path failed; ``reason`` is one line for the client."""

    status = 500

    def __init__(self, reason: str) -> None:
        self.reason = one_line(reason)
        super().__init__(self.reason)


class UnknownTemplate(DispelError):
    status = 404


class BadParameter(DispelError):
    """A parameter's text does not have the expected form; names both."""

    status = 400

    def __init__(self, name: str, expected: str, got: str) -> None:
        super().__init__(f"parameter '{name}': expected {expected}, got {shorten(got)!r}")
        self.name = name
        self.expected = expected


class WrongCount(DispelError):
    status = 400


class BadOption(DispelError):
    """A result's query names an option the template does not have, or one twice."""

    status = 400


class InputNotFound(DispelError):
    status = 404


class OutOfBounds(DispelError):
    """The selection lies outside the input (window, layer, page)."""

    status = 400


class ReadOnly(DispelError):
    status = 403


class ExecutionFailed(DispelError):
    status = 500


class TemplateInvalid(ExecutionFailed):
    """A template file that cannot be used; a server-side configuration error."""


class TimedOut(DispelError):
    status = 504


class OverLimit(DispelError):
    """A run needs more than the mount allows: memory (``memory_limit``) or one read (``max_remote_read``)."""

    status = 507


BY_STATUS: dict[int, type[DispelError]] = {
    400: OutOfBounds,
    403: ReadOnly,
    404: InputNotFound,
    500: ExecutionFailed,
    504: TimedOut,
    507: OverLimit,
}


def from_status(status: int, reason: str) -> DispelError:
    """Rebuild an error reported by a worker process or another server."""
    return BY_STATUS.get(status, ExecutionFailed)(reason)


class OneLineError(DAVError):
    """A DAVError whose body is ``<status>: <reason>`` on one line of plain text."""

    def get_response_page(self) -> tuple[str, bytes]:
        line = f"{get_http_status_string(self)}: {self.context_info}\n"
        return "text/plain; charset=utf-8", line.encode("utf-8")


def to_dav_error(error: DispelError) -> DAVError:
    return OneLineError(error.status, context_info=error.reason)


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
