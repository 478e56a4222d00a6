"""Password authentication: who may use davgate.

A password backend answers one question: do this user name and password
match what the store says (an htpasswd file; a JWT backend comes later)?
Every backend derives from :class:`PasswordBackend` and implements one small
method, :meth:`PasswordBackend._check`. The public
:meth:`PasswordBackend.authenticate` owns what no backend may forget: input
checks (empty, NUL, over-long, not UTF-8 encodable) and logging, which names
the user and the reason but never the password.

Backends are loaded with :func:`load` by short name (``"htpasswd"``), by an
entry point in the group ``davgate.auth``, or by a dotted path
(``"package.module:Class"``).
"""

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod
from importlib.metadata import entry_points
from typing import Any

__all__ = [
    "BUILTIN_BACKENDS",
    "AuthenticationFailed",
    "LoadError",
    "PasswordBackend",
    "load",
]

logger = logging.getLogger("davgate.auth")

#: Longest user name or password accepted, in characters.
MAX_INPUT_LENGTH = 4096
#: Built-in backends by short name, imported only when asked for.
BUILTIN_BACKENDS: dict[str, str] = {
    "htpasswd": "davgate.auth.htpasswd:HtpasswdBackend",
}
ENTRY_POINT_GROUP = "davgate.auth"


class AuthenticationFailed(Exception):
    """Raised by :meth:`PasswordBackend._check` to refuse with a reason.

    The reason is logged: it MUST NOT contain the password.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LoadError(Exception):
    """A backend could not be found or created; the message names it."""


class PasswordBackend(ABC):
    """Base class of password backends.

    Subclasses implement :meth:`_check` only. Callers use
    :meth:`authenticate`, which MUST be safe to call from many threads if
    ``_check`` is.
    """

    def authenticate(self, user: str, password: str) -> bool:
        """Return True if ``password`` is right for ``user``; log a refusal."""
        problem = _input_problem(user, password)
        if problem is not None:
            return _refuse(user, problem)
        try:
            accepted = self._check(user, password)
        except AuthenticationFailed as e:
            return _refuse(user, e.reason)
        except Exception as e:  # noqa: BLE001 -- fail closed; its message may echo input
            return _refuse(user, f"backend error: {type(e).__name__}", logging.ERROR)
        if not accepted:
            return _refuse(user, "wrong password")
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("authenticated user %s", _printable(user))
        return True

    @abstractmethod
    def _check(self, user: str, password: str) -> bool:
        """Return whether ``password`` is right for ``user``.

        Called only with non-empty, NUL-free, UTF-8 encodable strings of at
        most :data:`MAX_INPUT_LENGTH` characters. MAY raise
        :class:`AuthenticationFailed` to give the reason for a refusal
        ("unknown user"); returning False means "wrong password".
        """


def load(kind: str, **options: Any) -> PasswordBackend:
    """Create the password backend ``kind`` with ``options``.

    Raises :class:`LoadError` naming the backend and the cause.
    """
    cls = _find_class(kind)
    try:
        return cls(**options)
    except (TypeError, ValueError, OSError) as e:
        raise LoadError(f"auth backend {kind!r}: {e}") from e


def _find_class(kind: str) -> type[PasswordBackend]:
    try:
        found = _lookup(kind)
    except (ImportError, AttributeError) as e:
        raise LoadError(f"auth backend {kind!r} cannot be loaded: {e}") from e
    if not (isinstance(found, type) and issubclass(found, PasswordBackend)):
        raise LoadError(f"auth backend {kind!r} is not a PasswordBackend")
    return found


def _lookup(kind: str) -> object:
    """The object named by ``kind``: built-in, entry point or dotted path."""
    if kind in BUILTIN_BACKENDS:
        return _import(BUILTIN_BACKENDS[kind])
    for entry_point in entry_points(group=ENTRY_POINT_GROUP, name=kind):
        return entry_point.load()
    if "." in kind or ":" in kind:
        return _import(kind)
    known = ", ".join(sorted(BUILTIN_BACKENDS))
    raise LoadError(f"unknown auth backend {kind!r} (built-in: {known})")


def _import(target: str) -> object:
    """Import "package.module:name" or "package.module.name"."""
    module, _, name = target.rpartition(":") if ":" in target else target.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _input_problem(user: object, password: object) -> str | None:
    """Why these credentials are refused before any lookup, or None."""
    if not isinstance(user, str) or not isinstance(password, str):
        return "credentials are not text"
    if not user or not password:
        return "empty user name" if not user else "empty password"
    if len(user) > MAX_INPUT_LENGTH or len(password) > MAX_INPUT_LENGTH:
        return "user name or password too long"
    if "\0" in user or "\0" in password:
        return "NUL character in credentials"
    try:
        user.encode("utf-8"), password.encode("utf-8")
    except UnicodeEncodeError:
        return "credentials are not valid Unicode"
    return None


def _refuse(user: object, reason: str, level: int = logging.WARNING) -> bool:
    logger.log(level, "authentication failed for user %s (%s)", _printable(user), reason)
    return False


def _printable(user: object) -> str:
    """The user name for a log line: quoted, escaped, and cut to 64 chars."""
    text = user if isinstance(user, str) else f"<{type(user).__name__}>"
    return repr(text[:64] + ("…" if len(text) > 64 else ""))
