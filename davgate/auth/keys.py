"""Public keys for JWT verification: key parsing, algorithm pinning, the users file.

Each key accepts only the signature algorithms of its own family, decided
here from the key and never from a token: RSA keys RS256/384/512 and
PS256/384/512, EC keys the ES algorithm of their curve (P-256: ES256, P-384:
ES384, P-521: ES512), Ed25519 and Ed448 keys EdDSA. Symmetric algorithms
(HS*) and ``none`` are in no family, so no key can ever accept them.

The users file is the original system's format::

    {"user@domain.nl": {"name": "...", "publicKey": "<base64 of a PEM, or a PEM>"}}

It is read again when it changes (see :class:`WatchedFile`), so users can
be added and removed without a restart.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "PublicKey",
    "UserEntry",
    "UsersFile",
    "VerificationKey",
    "WatchedFile",
    "algorithms_for",
    "load_public_key",
    "parse_users",
]

logger = logging.getLogger(__name__)

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
Clock = Callable[[], float]
T = TypeVar("T")

RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
EDDSA_ALGORITHMS = frozenset({"EdDSA"})
#: Every algorithm any key may accept; anything else (none, HS*) never is.
ASYMMETRIC_ALGORITHMS = RSA_ALGORITHMS | frozenset(EC_ALGORITHMS.values()) | EDDSA_ALGORITHMS
MIN_RSA_BITS = 2048
MAX_FILE_BYTES = 16 * 1024 * 1024
_Signature = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns


@dataclass(frozen=True, eq=False)
class VerificationKey:
    """A public key and the algorithms it accepts; compared by identity.

    ``source`` names where it came from, for log lines ("users file",
    "JWKS kid 'k1'").
    """

    key: PublicKey
    algorithms: frozenset[str]
    source: str


@dataclass(frozen=True)
class UserEntry:
    """One user of the users file; ``key`` is None if the entry has none."""

    name: str
    key: VerificationKey | None


def algorithms_for(key: object) -> frozenset[str]:
    """The algorithms of ``key``'s family; raises ValueError for other keys."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"RSA key of {key.key_size} bits (at least {MIN_RSA_BITS} needed)")
        return RSA_ALGORITHMS
    if isinstance(key, ec.EllipticCurvePublicKey):
        algorithm = EC_ALGORITHMS.get(key.curve.name)
        if algorithm is None:
            raise ValueError(f"EC curve {key.curve.name} is not supported (P-256, P-384, P-521)")
        return frozenset({algorithm})
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return EDDSA_ALGORITHMS
    raise ValueError(f"{type(key).__name__} keys are not supported (RSA, EC, Ed25519)")


def load_public_key(text: str) -> PublicKey:
    """A public key from a PEM (key or certificate), or from base64 of one."""
    pem = text.strip().encode("ascii", "replace")
    if not pem.startswith(b"-----BEGIN"):
        try:
            pem = base64.b64decode(b"".join(pem.split()), validate=True).strip()
        except (binascii.Error, ValueError):
            raise ValueError("publicKey is neither a PEM nor base64 of one") from None
    if b"PRIVATE KEY" in pem.split(b"\n", 1)[0]:
        raise ValueError("publicKey holds a private key; give the public key only")
    key: Any
    try:
        if pem.startswith(b"-----BEGIN CERTIFICATE"):
            key = x509.load_pem_x509_certificate(pem).public_key()
        else:
            key = load_pem_public_key(pem)
    except ValueError:
        raise ValueError("publicKey is not a valid PEM public key") from None
    algorithms_for(key)  # raises unless it is a PublicKey
    return key  # type: ignore[no-any-return]


def parse_users(data: bytes, source: str) -> tuple[dict[str, UserEntry], list[str]]:
    """The users of a users file, and one problem per entry that was skipped.

    Raises ValueError if the file as a whole is not a users file.
    """
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"not valid JSON: {e}") from None
    if not isinstance(document, dict):
        raise ValueError('expected a JSON object {"user@domain": {"name": ..., "publicKey": ...}}')
    users: dict[str, UserEntry] = {}
    problems: list[str] = []
    for user, record in document.items():
        try:
            users[user] = _user_entry(user, record, source)
        except ValueError as e:
            problems.append(f"user {user!r}: {e}")
    return users, problems


def _user_entry(user: str, record: object, source: str) -> UserEntry:
    if not user or not user.isprintable() or ":" in user:
        raise ValueError("a user name is printable text without ':'")
    if not isinstance(record, dict):
        raise ValueError("expected an object with name and publicKey")
    name, text = record.get("name", user), record.get("publicKey")
    if not isinstance(name, str):
        raise ValueError("name is not text")
    if text is None:
        return UserEntry(name, None)  # may still use issuer (JWKS) tokens
    if not isinstance(text, str):
        raise ValueError("publicKey is not text")
    key = load_public_key(text)
    return UserEntry(name, VerificationKey(key, algorithms_for(key), f"users file {source}"))


class WatchedFile(Generic[T]):
    """A file parsed into a value, parsed again after it changes.

    Changes are noticed by inode, size and modification time, checked at most
    once per ``check_interval`` seconds. The first read happens here and
    raises (OSError, or ValueError from ``parse``); a later failure is logged
    and leaves ``empty`` until the file is good again: fail closed.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        parse: Callable[[bytes, str], T],
        empty: T,
        *,
        check_interval: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self._parse, self._empty = parse, empty
        self._interval, self._clock = check_interval, clock
        self._lock = threading.Lock()
        self._signature: _Signature | None
        self._signature, self._value = self._read()
        self._checked = clock()

    def get(self) -> T:
        """The value of the file as it is now (at most ``check_interval`` old)."""
        with self._lock:
            now = self._clock()
            if now - self._checked >= self._interval:
                self._checked = now
                self._refresh()
            return self._value

    def _refresh(self) -> None:
        try:
            if _signature(os.stat(self.path)) != self._signature:
                self._signature, self._value = self._read()
        except (OSError, ValueError) as e:
            if self._signature is not None:
                reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                logger.error("%s cannot be used until it is fixed: %s", self.path, reason)
            self._signature, self._value = None, self._empty

    def _read(self) -> tuple[_Signature, T]:
        with open(self.path, "rb") as f:
            signature, data = _signature(os.fstat(f.fileno())), f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
        return signature, self._parse(data, str(self.path))


class UsersFile:
    """The users file: who may present tokens, and with which public key."""

    def __init__(
        self, path: str | os.PathLike[str], *, check_interval: float = 1.0, clock: Clock = time.monotonic
    ) -> None:
        self.file: WatchedFile[dict[str, UserEntry]] = WatchedFile(
            path, _parse_and_warn, {}, check_interval=check_interval, clock=clock
        )

    def get(self, user: str) -> UserEntry | None:
        return self.file.get().get(user)


def _parse_and_warn(data: bytes, source: str) -> dict[str, UserEntry]:
    users, problems = parse_users(data, source)
    for problem in problems:
        logger.warning("%s: %s; entry skipped", source, problem)
    logger.info("read %d users from users file %s", len(users), source)
    return users


def _signature(st: os.stat_result) -> _Signature:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
