"""Password hash formats found in htpasswd files: verify them, create them.

Supported: bcrypt (``$2y$``, ``$2b$``, ``$2a$``), Apache MD5 (``$apr1$``),
unsalted SHA-1 (``{SHA}``) and SHA-crypt (``$5$``, ``$6$``, as written by
``htpasswd -2``/``-5`` and glibc). apr1 and SHA-crypt are written here from
their public descriptions with :mod:`hashlib`, so neither passlib nor the
deprecated :mod:`crypt` module is needed. Plain text, DES crypt and anything
else are refused with :class:`UnsupportedHash`, whose message names the scheme
but never repeats the stored string (for plain text it *is* the password).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable

import bcrypt

__all__ = [
    "BCRYPT_MAX_BYTES",
    "UnsupportedHash",
    "describe_scheme",
    "hash_password",
    "is_supported",
    "verify_hash",
]

#: bcrypt only looks at this many bytes of a password.
BCRYPT_MAX_BYTES = 72
#: SHA-crypt rounds above this are refused: each pure-Python round costs ~1 µs.
SHA_CRYPT_MAX_ROUNDS = 1_000_000
_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class UnsupportedHash(ValueError):
    """The stored hash has a scheme we cannot (or will not) verify."""

    def __init__(self, scheme: str) -> None:
        super().__init__(f"unsupported password hash scheme: {scheme}")
        self.scheme = scheme


def verify_hash(stored: str, password: str) -> bool:
    """Return whether ``password`` matches ``stored``, in constant time.

    Raises :class:`UnsupportedHash` when ``stored`` is of an unknown scheme or
    malformed.
    """
    for prefix, verify in _VERIFIERS:
        if stored.startswith(prefix):
            return verify(stored, password.encode("utf-8"))
    raise UnsupportedHash(describe_scheme(stored))


def is_supported(stored: str) -> bool:
    """Whether ``stored`` is of a scheme :func:`verify_hash` knows."""
    return any(stored.startswith(prefix) for prefix, _ in _VERIFIERS)


def describe_scheme(stored: str) -> str:
    """Name the scheme of ``stored`` without repeating any of its content."""
    for prefix, _ in _VERIFIERS:
        if stored.startswith(prefix):
            return prefix
    for prefix, name in _KNOWN_UNSUPPORTED:
        if stored.startswith(prefix):
            return name
    return "unknown or plain text"


def hash_password(password: str, scheme: str = "bcrypt") -> str:
    """Hash ``password`` for an htpasswd file with ``scheme``.

    ``scheme`` is "bcrypt" (default, cost 12), "apr1" or "sha" (the last two
    only for interoperability and tests). Raises :class:`ValueError` for an
    unknown scheme, a NUL character, or a bcrypt password over 72 bytes
    (refused rather than silently truncated).
    """
    if "\0" in password:
        raise ValueError("password must not contain NUL characters")
    raw = password.encode("utf-8")
    if scheme == "bcrypt":
        return _hash_bcrypt(raw)
    if scheme == "apr1":
        salt = "".join(secrets.choice(_ITOA64) for _ in range(8))
        return f"$apr1${salt}${_md5_crypt(raw, salt.encode('ascii'), b'$apr1$')}"
    if scheme == "sha":
        return "{SHA}" + base64.b64encode(hashlib.sha1(raw).digest()).decode("ascii")
    raise ValueError(f"unknown hash scheme {scheme!r} (use bcrypt, apr1 or sha)")


# --- bcrypt -----------------------------------------------------------------


def _hash_bcrypt(raw: bytes) -> str:
    if len(raw) > BCRYPT_MAX_BYTES:
        raise ValueError(f"bcrypt uses at most {BCRYPT_MAX_BYTES} bytes of a password")
    return bcrypt.hashpw(raw, bcrypt.gensalt(12, prefix=b"2b")).decode("ascii")


def _verify_bcrypt(stored: str, raw: bytes) -> bool:
    # Truncate like Apache's htpasswd and every other bcrypt implementation
    # does; bcrypt>=5 raises instead of truncating.
    try:
        return bcrypt.checkpw(raw[:BCRYPT_MAX_BYTES], stored.encode("ascii"))
    except ValueError as e:  # bad salt or cost, non-ASCII hash
        raise UnsupportedHash(f"malformed {stored[:4]} hash") from e


# --- {SHA} ------------------------------------------------------------------


def _verify_sha1(stored: str, raw: bytes) -> bool:
    try:
        expected = base64.b64decode(stored[len("{SHA}") :], validate=True)
    except ValueError as e:
        raise UnsupportedHash("malformed {SHA} hash") from e
    return hmac.compare_digest(hashlib.sha1(raw).digest(), expected)


# --- Apache apr1 (MD5-crypt with the "$apr1$" magic) ------------------------

_APR1 = re.compile(r"\$apr1\$([^$]{0,8})\$([./0-9A-Za-z]{22})")
_MD5_ORDER = ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5))


def _verify_apr1(stored: str, raw: bytes) -> bool:
    match = _APR1.fullmatch(stored)
    if match is None:
        raise UnsupportedHash("malformed $apr1$ hash")
    salt, checksum = match.group(1).encode("ascii"), match.group(2)
    return _compare(_md5_crypt(raw, salt, b"$apr1$"), checksum)


def _md5_crypt(pw: bytes, salt: bytes, magic: bytes) -> str:
    """Return the 22-character checksum of Poul-Henning Kamp's MD5-crypt."""
    alternate = hashlib.md5(pw + salt + pw).digest()
    ctx = pw + magic + salt + _repeat(alternate, len(pw))
    bits = len(pw)
    while bits:
        ctx += b"\0" if bits & 1 else pw[:1]
        bits >>= 1
    digest = hashlib.md5(ctx).digest()
    for i in range(1000):
        digest = hashlib.md5(_mix(i, digest, pw, salt)).digest()
    groups = [(digest[a], digest[b], digest[c]) for a, b, c in _MD5_ORDER]
    return _encode([*groups, (0, 0, digest[11])], 22)


# --- SHA-crypt ($5$ SHA-256, $6$ SHA-512; Ulrich Drepper's specification) ---

_SHA_CRYPT = re.compile(r"\$([56])\$(?:rounds=([1-9][0-9]{0,9})\$)?([^$]{0,16})\$([./0-9A-Za-z]+)")
_SHA256_ORDER = (
    (0, 10, 20), (21, 1, 11), (12, 22, 2), (3, 13, 23), (24, 4, 14),
    (15, 25, 5), (6, 16, 26), (27, 7, 17), (18, 28, 8), (9, 19, 29),
)  # fmt: skip
_SHA512_ORDER = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
    (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10),
    (53, 11, 32), (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57),
    (37, 58, 16), (59, 17, 38), (18, 39, 60), (40, 61, 19), (62, 20, 41),
)  # fmt: skip


def _verify_sha_crypt(stored: str, raw: bytes) -> bool:
    match = _SHA_CRYPT.fullmatch(stored)
    if match is None:
        raise UnsupportedHash(f"malformed {stored[:3]} hash")
    kind, rounds_text, salt, checksum = match.groups()
    rounds = int(rounds_text or 5000)
    if not 1000 <= rounds <= SHA_CRYPT_MAX_ROUNDS:
        raise UnsupportedHash(f"${kind}$ with rounds={rounds}")
    digest = _sha256 if kind == "5" else _sha512
    return _compare(_sha_crypt(digest, raw, salt.encode("ascii"), rounds), checksum)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _sha512(data: bytes) -> bytes:
    return hashlib.sha512(data).digest()


def _sha_crypt(digest: Callable[[bytes], bytes], pw: bytes, salt: bytes, rounds: int) -> str:
    alternate = digest(pw + salt + pw)
    ctx = pw + salt + _repeat(alternate, len(pw))
    bits = len(pw)
    while bits:
        ctx += alternate if bits & 1 else pw
        bits >>= 1
    current = digest(ctx)
    p_bytes = _repeat(digest(pw * len(pw)), len(pw))
    s_bytes = _repeat(digest(salt * (16 + current[0])), len(salt))
    for i in range(rounds):
        current = digest(_mix(i, current, p_bytes, s_bytes))
    if len(current) == 32:
        groups = [(current[a], current[b], current[c]) for a, b, c in _SHA256_ORDER]
        return _encode([*groups, (0, current[31], current[30])], 43)
    groups = [(current[a], current[b], current[c]) for a, b, c in _SHA512_ORDER]
    return _encode([*groups, (0, 0, current[63])], 86)


# --- helpers shared by MD5-crypt and SHA-crypt ------------------------------


def _mix(i: int, digest: bytes, pw: bytes, salt: bytes) -> bytes:
    """One round of the MD5-crypt/SHA-crypt stretching loop."""
    data = pw if i & 1 else digest
    if i % 3:
        data += salt
    if i % 7:
        data += pw
    return data + (digest if i & 1 else pw)


def _repeat(block: bytes, length: int) -> bytes:
    """``block`` repeated and cut to exactly ``length`` bytes."""
    return (block * (length // len(block) + 1))[:length]


def _encode(groups: list[tuple[int, int, int]], length: int) -> str:
    """crypt(3)'s base64: each 3-byte group, high byte first, 6 bits at a time
    least significant first; the result is cut to ``length`` characters."""
    chars = []
    for high, mid, low in groups:
        value = (high << 16) | (mid << 8) | low
        chars += [_ITOA64[(value >> shift) & 0x3F] for shift in (0, 6, 12, 18)]
    tail = len(groups) * 4 - length  # the last group is only partly used
    return "".join(chars[: len(chars) - tail])


def _compare(computed: str, checksum: str) -> bool:
    return hmac.compare_digest(computed.encode("ascii"), checksum.encode("ascii"))


_VERIFIERS: tuple[tuple[str, Callable[[str, bytes], bool]], ...] = (
    ("$2y$", _verify_bcrypt),
    ("$2b$", _verify_bcrypt),
    ("$2a$", _verify_bcrypt),
    ("$apr1$", _verify_apr1),
    ("{SHA}", _verify_sha1),
    ("$5$", _verify_sha_crypt),
    ("$6$", _verify_sha_crypt),
)
_KNOWN_UNSUPPORTED: tuple[tuple[str, str], ...] = (
    ("$2x$", "$2x$ (bcrypt with the 2011 sign-extension bug)"),
    ("$2$", "$2$ (obsolete bcrypt)"),
    ("$1$", "$1$ (MD5-crypt)"),
    ("{SSHA}", "{SSHA} (salted SHA-1)"),
    ("$argon2", "argon2"),
    ("$y$", "$y$ (yescrypt)"),
    ("$7$", "$7$ (scrypt)"),
    ("$sha1$", "$sha1$ (SHA1-crypt)"),
    ("$md5", "Sun MD5-crypt"),
)
