"""Users and password hashes from an Apache htpasswd file.

Lines are ``user:hash``; blank lines and lines starting with ``#`` are
ignored and, as in Apache, the first line for a user wins. The file is read
again when its inode, size or modification time changes, checked at most once
per ``check_interval`` seconds, so edits take effect without a restart.
Successful verifications are cached briefly because bcrypt is slow on purpose.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import secrets
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from davgate.auth import AuthenticationFailed, PasswordBackend
from davgate.auth.hashes import (
    UnsupportedHash,
    describe_scheme,
    is_supported,
    verify_hash,
)

__all__ = [
    "HtpasswdBackend",
    "HtpasswdFile",
    "VerificationCache",
    "parse_htpasswd",
    "set_password",
    "validate_user_name",
]

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
_Signature = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns

# bcrypt cost 12 (as hash_password writes) of a random, forgotten password:
# checked for unknown users so that they take as long as known ones.
_DUMMY_HASH = "$2b$12$nH1Vol7FCm5IL7bHnZgGhu6SHpCxdZ3TFzzvF76QeMKNmfo96BLTK"


class HtpasswdFile:
    """An htpasswd file, read again after it changes.

    The first read happens here and raises :class:`OSError` if it fails. A
    later failure is logged and leaves no users until the file is back.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        check_interval: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self._interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._signature: _Signature | None
        self._signature, self._entries = self._read()
        self._checked = clock()

    def get(self, user: str) -> str | None:
        """The stored hash for ``user``, or None if there is no such user."""
        self._refresh()
        return self._entries.get(user)

    def _refresh(self) -> None:
        with self._lock:
            now = self._clock()
            if now - self._checked < self._interval:
                return
            self._checked = now
            try:
                if _signature(os.stat(self.path)) != self._signature:
                    self._signature, self._entries = self._read()
            except OSError as e:
                self._lost(e)

    def _read(self) -> tuple[_Signature, dict[str, str]]:
        with open(self.path, "rb") as f:
            signature, data = _signature(os.fstat(f.fileno())), f.read()
        entries = parse_htpasswd(data, str(self.path))
        logger.info("read %d users from htpasswd file %s", len(entries), self.path)
        return signature, entries

    def _lost(self, error: OSError) -> None:
        if self._signature is not None:
            logger.error(
                "htpasswd file %s cannot be read, no user can log in: %s",
                self.path,
                error.strerror or type(error).__name__,
            )
        self._signature, self._entries = None, {}


def parse_htpasswd(data: bytes, source: str) -> dict[str, str]:
    """Map user to stored hash; warn about bad lines by number, not content."""
    entries: dict[str, str] = {}
    for number, raw in enumerate(data.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        entry = _parse_line(line)
        if entry is None:
            logger.warning("%s:%d: malformed line skipped", source, number)
        elif entry[0] in entries:
            logger.warning("%s:%d: duplicate of user %r skipped", source, number, entry[0])
        else:
            entries[entry[0]] = entry[1]
            _warn_if_unsupported(source, number, *entry)
    return entries


def _parse_line(line: bytes) -> tuple[str, str] | None:
    try:
        user, colon, stored = line.decode("utf-8").partition(":")
    except UnicodeDecodeError:
        return None
    return (user, stored) if user and colon and stored else None


def _warn_if_unsupported(source: str, number: int, user: str, stored: str) -> None:
    if not is_supported(stored):
        logger.warning(
            "%s:%d: user %r has an unsupported password hash (%s) and cannot log in",
            source,
            number,
            user,
            describe_scheme(stored),
        )


def _signature(st: os.stat_result) -> _Signature:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class VerificationCache:
    """Recent successful verifications, so that bcrypt runs once per ``ttl``.

    Entries are keyed by HMAC-SHA256, under a random per-process key, of
    (user, password, stored hash): the password is never kept, and a changed
    hash simply misses. At most ``max_size`` entries, least recently used
    dropped first; ``ttl`` counts from the last hit, so a client in steady use
    never pays bcrypt again (a changed password still misses at once). A miss
    is single-flight: concurrent requests with the same credentials wait for
    one verification instead of each running bcrypt.
    """

    def __init__(self, ttl: float = 300.0, max_size: int = 1024, clock: Clock = time.monotonic) -> None:
        self._ttl, self._max_size, self._clock = ttl, max_size, clock
        self._key = secrets.token_bytes(32)
        self._expiry: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()
        self._flights: weakref.WeakValueDictionary[bytes, threading.Lock] = weakref.WeakValueDictionary()

    def __contains__(self, credentials: tuple[str, str, str]) -> bool:
        key, now = self._digest(credentials), self._clock()
        with self._lock:
            expiry = self._expiry.get(key)
            if expiry is not None and expiry <= now:
                del self._expiry[key]
                return False
            if expiry is not None:
                self._expiry[key] = now + self._ttl
                self._expiry.move_to_end(key)
            return expiry is not None

    def verify(self, credentials: tuple[str, str, str], check: Callable[[], bool]) -> bool:
        """True if cached, else the result of ``check()``, run once for concurrent callers."""
        if credentials in self:
            return True
        with self._lock:
            flight = self._flights.setdefault(self._digest(credentials), threading.Lock())
        with flight:
            if credentials in self:
                return True
            accepted = check()
            if accepted:
                self.add(credentials)
            return accepted

    def add(self, credentials: tuple[str, str, str]) -> None:
        """Remember that (user, password, stored hash) verified just now."""
        if self._ttl <= 0 or self._max_size <= 0:
            return
        key = self._digest(credentials)
        with self._lock:
            self._expiry[key] = self._clock() + self._ttl
            self._expiry.move_to_end(key)
            while len(self._expiry) > self._max_size:
                self._expiry.popitem(last=False)

    def _digest(self, credentials: tuple[str, str, str]) -> bytes:
        message = b"".join(  # length-prefixed: no two tuples collide
            len(raw).to_bytes(8, "big") + raw for raw in (part.encode("utf-8") for part in credentials)
        )
        return hmac.digest(self._key, message, "sha256")


class HtpasswdBackend(PasswordBackend):
    """Password backend reading an htpasswd file (option ``path``)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        cache_ttl: float = 300.0,
        cache_size: int = 1024,
        check_interval: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.file = HtpasswdFile(path, check_interval=check_interval, clock=clock)
        self._cache = VerificationCache(cache_ttl, cache_size, clock)

    def _check(self, user: str, password: str) -> bool:
        stored = self.file.get(user)
        if stored is None:
            verify_hash(_DUMMY_HASH, password)  # as slow as a known user
            raise AuthenticationFailed("unknown user")
        try:
            return self._cache.verify((user, password, stored), lambda: verify_hash(stored, password))
        except UnsupportedHash as e:
            raise AuthenticationFailed(f"unsupported hash scheme {e.scheme}") from None


def validate_user_name(user: str) -> None:
    """Raise :class:`ValueError` unless ``user`` can be an htpasswd user."""
    if not user or len(user) > 255:
        raise ValueError("user name must have 1 to 255 characters")
    if ":" in user or user.startswith("#"):
        raise ValueError("user name must not contain ':' nor start with '#'")
    if any(c.isspace() or not c.isprintable() for c in user):
        raise ValueError("user name must not contain whitespace or control characters")


def set_password(path: str | os.PathLike[str], user: str, hashed: str) -> bool:
    """Add or replace the line of ``user`` atomically; return True if replaced.

    Other lines are kept byte for byte. A new file gets mode 0600; an
    existing one keeps its mode (and owner, where permitted).
    """
    validate_user_name(user)
    if not hashed or any(c in hashed for c in "\r\n\0"):
        raise ValueError("hash must be one non-empty line")
    target = Path(os.path.realpath(path))
    try:
        old, st = target.read_bytes(), os.stat(target)
    except FileNotFoundError:
        old, st = b"", None
    lines, replaced = _with_user_line(old, user, f"{user}:{hashed}")
    _write_atomically(target, b"".join(lines), st)
    return replaced


def _with_user_line(data: bytes, user: str, new: str) -> tuple[list[bytes], bool]:
    lines, name = data.splitlines(keepends=True), user.encode("utf-8")
    for i, line in enumerate(lines):
        owner, colon, _ = line.strip().partition(b":")
        if colon and owner == name:
            ending = line[len(line.rstrip(b"\r\n")) :] or b"\n"
            lines[i] = new.encode("utf-8") + ending
            return lines, True
    if lines and not lines[-1].endswith((b"\n", b"\r")):
        lines[-1] += b"\n"
    return [*lines, new.encode("utf-8") + b"\n"], False


def _write_atomically(target: Path, data: bytes, old: os.stat_result | None) -> None:
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600 if old is None else old.st_mode & 0o7777)
            if old is not None and (old.st_uid, old.st_gid) != (
                os.geteuid(),
                os.getegid(),
            ):
                with contextlib.suppress(PermissionError):
                    os.fchown(f.fileno(), old.st_uid, old.st_gid)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
