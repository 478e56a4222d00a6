"""Secrets that must be kept (an S3 adaptor's secret key), sealed before they reach the state store.

The sealing key is derived (HKDF-SHA256) from the API signing key, so there
is one file to protect, and a copy of the state store alone (a MongoDB
dump) does not give the secrets away.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["Sealer"]


class Sealer:
    """Seals and opens short secrets with a key derived from the signing key."""

    def __init__(self, signing_key: Ed25519PrivateKey) -> None:
        raw = signing_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        derived = HKDF(hashes.SHA256(), 32, salt=None, info=b"davgate api sealed secrets").derive(raw)
        self.fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, secret: str) -> str:
        return self.fernet.encrypt(secret.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        """The secret; ValueError if it was sealed with another key."""
        try:
            return self.fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise ValueError("a sealed secret does not open with this server's key (api.key changed?)") from None
