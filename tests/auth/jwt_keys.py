"""Test keys, users files and tokens for the JWT tests (real keys, real signatures)."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from davgate.auth.tokens import algorithm_for, public_pem, users_entry

ALICE = "alice@example.org"
BOB = "bob@example.org"

#: Key kinds and the algorithm davgate pins each to by default.
KINDS = {
    "rsa": "RS256",
    "ec-p256": "ES256",
    "ec-p384": "ES384",
    "ec-p521": "ES512",
    "ed25519": "EdDSA",
}


@functools.cache
def key(kind: str, number: int = 0) -> Any:
    """A private key of ``kind``, the same one for the same (kind, number) in a run."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind.startswith("ec-"):
        curve = {"ec-p256": ec.SECP256R1, "ec-p384": ec.SECP384R1, "ec-p521": ec.SECP521R1}[kind]
        return ec.generate_private_key(curve())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


def write_users(path: Path, users: dict[str, Any], *, raw_pem: bool = False) -> Path:
    """A users file giving each e-mail the public half of its private key."""
    document: dict[str, Any] = {}
    for email, private in users.items():
        entry = users_entry(email, email.split("@")[0], public_pem(private))
        if raw_pem:
            entry[email]["publicKey"] = public_pem(private).decode()
        document.update(entry)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def claims(email: str = ALICE, *, ttl: int = 300, now: float | None = None, **extra: Any) -> dict[str, Any]:
    issued = int(time.time() if now is None else now)
    return {"email": email, "iat": issued, "exp": issued + ttl, **extra}


def token(private: Any, payload: dict[str, Any] | None = None, *, algorithm: str | None = None, **headers: Any) -> str:
    """``payload`` (default: claims()) signed with ``private``."""
    return jwt.encode(
        claims() if payload is None else payload,
        private,
        algorithm=algorithm or algorithm_for(private),
        headers=headers or None,
    )
