"""Key pairs and test tokens: ``davgate keygen`` and ``davgate token``.

``keygen`` writes a private key (PKCS#8 PEM, mode 0600) and its public key
(``PREFIX.pub``), and prints the users-file entry for it, with the public
key as base64 of its PEM as the original system stored it. ``token`` signs
a JWT with a private key, the algorithm following from the key (Ed25519:
EdDSA, RSA: RS256, EC: ES256/ES384/ES512 by curve), and prints only the
token.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from davgate.auth.keys import EC_ALGORITHMS

__all__ = ["generate_key", "keygen_command", "mint", "token_command", "users_entry"]

KEY_TYPES = ("ed25519", "rsa", "ec")
RSA_BITS = 3072
PLACEHOLDER_EMAIL = "user@example.org"


class _Refused(Exception):
    """The command cannot go on; the message says why."""


def generate_key(kind: str) -> Any:
    """A new private key of ``kind`` (ed25519, rsa or ec on P-256)."""
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key type {kind!r} (use {', '.join(KEY_TYPES)})")


def algorithm_for(private_key: Any) -> str:
    """The signature algorithm davgate expects for this private key's type."""
    if isinstance(private_key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return "EdDSA"
    if isinstance(private_key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(private_key, ec.EllipticCurvePrivateKey) and private_key.curve.name in EC_ALGORITHMS:
        return EC_ALGORITHMS[private_key.curve.name]
    raise ValueError(f"{type(private_key).__name__} keys cannot sign davgate tokens")


def public_pem(private_key: Any) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def users_entry(email: str, name: str, pem: bytes) -> dict[str, dict[str, str]]:
    """The users-file entry ``{email: {"name": ..., "publicKey": base64 of the PEM}}``."""
    return {email: {"name": name, "publicKey": base64.b64encode(pem).decode("ascii")}}


def mint(
    private_key: Any,
    email: str,
    *,
    ttl: int = 3600,
    audience: str | None = None,
    issuer: str | None = None,
    scopes: list[str] | None = None,
    kid: str | None = None,
    now: float | None = None,
) -> str:
    """A signed JWT for ``email``, valid for ``ttl`` seconds from ``now``."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"email": email, "iat": issued, "exp": issued + ttl}
    if audience:
        claims["aud"] = audience
    if issuer:
        claims["iss"] = issuer
    if scopes:
        claims["scope"] = " ".join(scopes)
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, private_key, algorithm=algorithm_for(private_key), headers=headers)


def keygen_command(out: Path, kind: str, email: str | None, name: str | None, force: bool) -> int:
    """Write ``out`` and ``out.pub``; print the users-file entry; return the exit status."""
    public = Path(f"{out}.pub")
    try:
        private_key = generate_key(kind)
        private = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write(out, private, 0o600, force)
        _write(public, public_pem(private_key), 0o644, force)
    except (_Refused, ValueError) as e:
        return _fail("keygen", str(e))
    except OSError as e:
        return _fail("keygen", f"cannot write {e.filename or out}: {e.strerror or type(e).__name__}")
    email = email or PLACEHOLDER_EMAIL
    print(json.dumps(users_entry(email, name or email, public_pem(private_key)), indent=2))
    print(f"wrote {out} (private, keep it secret) and {public}", file=sys.stderr)
    return 0


def token_command(key: Path, email: str, ttl: int, audience: str | None, **claims: Any) -> int:
    """Print a token for ``email`` signed with the private key in ``key``."""
    try:
        if ttl <= 0:
            raise _Refused("--ttl must be a positive number of seconds")
        private_key = _read_private_key(key)
        token = mint(private_key, email, ttl=ttl, audience=audience, **claims)
    except (_Refused, ValueError) as e:
        return _fail("token", str(e))
    print(token)
    return 0


def _read_private_key(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise _Refused(f"cannot read {path}: {e.strerror or type(e).__name__}") from None
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise _Refused(f"{path} is not an unencrypted PEM private key") from None


def _write(path: Path, data: bytes, mode: int, force: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise _Refused(f"{path} exists (use --force to replace it)") from None
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)
        f.write(data)


def _fail(command: str, message: str) -> int:
    print(f"davgate {command}: error: {message}", file=sys.stderr)
    return 1
