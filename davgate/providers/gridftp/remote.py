"""gfal2, imported once: contexts per thread and the one translation of its errors.

gfal2 reports a failure as ``GError`` with an errno (ENOENT from a 550,
EEXIST from a 553, ECOMM for a connection refused, ETIMEDOUT for a server
that does not answer). :func:`translated` is the single boundary where those
become :mod:`davgate.errors`; gfal2's own message goes to the log, never to
the client, since it names the remote URL.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import gfal2

from davgate import errors


def new_context() -> Any:
    """A gfal2 context, leaving the calling thread's signal mask as it was.

    The first context activates Globus, which blocks nearly every signal in
    the calling thread. In a main thread that is SIGTERM ignored (no graceful
    stop), and every process started from such a thread inherits the mask.
    """
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    try:
        return gfal2.creat_context()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


log = logging.getLogger("davgate.gridftp")

# gfal2 says "plugin ... loaded" at INFO for every new context (one per thread): only when asked for.
if logging.getLogger("gfal2").level == logging.NOTSET:
    logging.getLogger("gfal2").setLevel(logging.WARNING)

__all__ = ["Contexts", "gfal2", "translated"]

ERRNO: dict[int, type[errors.StorageError]] = {
    errno.ENOENT: errors.NotFound,
    errno.EACCES: errors.Forbidden,
    errno.EPERM: errors.Forbidden,
    errno.EEXIST: errors.Exists,
    errno.ENOTEMPTY: errors.NotEmpty,
    errno.ENOTDIR: errors.Conflict,
    errno.EISDIR: errors.Conflict,
    errno.ENOSPC: errors.NoSpace,
    errno.EDQUOT: errors.NoSpace,
    errno.ETIMEDOUT: errors.Unavailable,
    errno.ECONNREFUSED: errors.Unavailable,
    errno.ECONNRESET: errors.Unavailable,
    errno.EHOSTUNREACH: errors.Unavailable,
    errno.ENETUNREACH: errors.Unavailable,
    errno.ECOMM: errors.Unavailable,  # gfal2's "communication error": the server is down or hung up
    errno.ECANCELED: errors.Unavailable,
}


def translate(rel: str, error: Exception) -> errors.StorageError:
    """The davgate error a gfal2 failure stands for (by errno, never by message)."""
    if isinstance(error, gfal2.GError):
        kind = ERRNO.get(error.code, errors.BadGateway)
        log.info("gridftp %s: %s (errno %s)", rel or "/", str(error).strip(), error.code)
        return kind(rel)
    if isinstance(error, (TimeoutError, ConnectionError)):
        return errors.Unavailable(rel)
    if isinstance(error, PermissionError):  # the outbound rule refused the server's address
        return errors.Forbidden(rel, str(error))
    return errors.Unavailable(rel)  # another OSError: the server's name does not resolve, a socket failed


@contextlib.contextmanager
def translated(rel: str) -> Iterator[None]:
    try:
        yield
    except errors.StorageError:
        raise
    except (gfal2.GError, OSError) as error:
        raise translate(rel, error) from error


class Contexts:
    """One gfal2 context per thread, each set up by ``configure`` when first used."""

    def __init__(self, configure: Callable[[Any], None]) -> None:
        self.configure = configure
        self.local = threading.local()

    def get(self) -> Any:
        context = getattr(self.local, "context", None)
        if context is None:
            context = new_context()
            self.configure(context)
            self.local.context = context
        return context

    def forget(self) -> None:
        """Drop this thread's context (and the sessions it keeps)."""
        self.local.context = None
