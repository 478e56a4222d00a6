"""Issuer keys from a JWKS (JSON Web Key Set), a local file or an http(s) URL.

Keys are chosen by ``kid``. The set is fetched again every ``refresh``
seconds, and when a token names a ``kid`` the set does not have, at most
once per ``min_interval`` seconds (so a stream of made-up kids cannot make
davgate hammer the issuer), or once per ``refresh`` if that is shorter: a
refresh the operator asked for is never held back by the rate limit. A failed fetch is logged and keeps the keys
that were last fetched.

Only signature keys of the asymmetric families in :mod:`davgate.auth.keys`
are taken: ``oct`` (symmetric) keys, private keys, keys without a ``kid``
and keys whose ``use`` is not ``sig`` are skipped. A key's ``alg`` member,
when present, narrows it to that one algorithm.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from jwt.exceptions import InvalidKeyError

from davgate.auth.keys import PublicKey, VerificationKey, algorithms_for

__all__ = ["JwksKeys", "parse_jwks"]

logger = logging.getLogger(__name__)

MAX_JWKS_BYTES = 1024 * 1024
KEY_READERS = {"RSA": RSAAlgorithm.from_jwk, "EC": ECAlgorithm.from_jwk, "OKP": OKPAlgorithm.from_jwk}
Clock = Callable[[], float]


def parse_jwks(data: bytes, source: str) -> tuple[dict[str, VerificationKey], list[str]]:
    """Keys by kid, and one problem per key that was skipped.

    Raises ValueError if ``data`` is not a JWKS at all.
    """
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"not valid JSON: {e}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('expected a JSON object {"keys": [...]}')
    keys: dict[str, VerificationKey] = {}
    problems: list[str] = []
    for number, jwk in enumerate(document["keys"]):
        try:
            kid, key = _read_jwk(jwk, source)
        except ValueError as e:
            problems.append(f"key {number}: {e}")
            continue
        if kid in keys:
            problems.append(f"key {number}: duplicate kid {kid!r}")
            continue
        keys[kid] = key
    return keys, problems


def _read_jwk(jwk: Any, source: str) -> tuple[str, VerificationKey]:
    if not isinstance(jwk, dict):
        raise ValueError("not a JSON object")
    kid, use, alg = jwk.get("kid"), jwk.get("use", "sig"), jwk.get("alg")
    if not isinstance(kid, str) or not kid:
        raise ValueError("no kid")
    if use != "sig":
        raise ValueError(f"kid {kid!r} is not a signature key (use {use!r})")
    reader = KEY_READERS.get(str(jwk.get("kty")))
    if reader is None or "d" in jwk:
        raise ValueError(f"kid {kid!r}: only public RSA, EC and OKP keys are accepted")
    try:
        key: PublicKey = reader(jwk)  # type: ignore[assignment]  # "d" absent: a public key
    except (InvalidKeyError, ValueError, TypeError, KeyError):
        raise ValueError(f"kid {kid!r}: not a valid key") from None
    algorithms = algorithms_for(key)
    if alg is not None:
        if alg not in algorithms:
            raise ValueError(f"kid {kid!r}: alg {alg!r} does not fit the key")
        algorithms = frozenset({alg})
    return kid, VerificationKey(key, algorithms, f"JWKS {source} kid {kid!r}")


def fetch(source: str, timeout: float) -> bytes:
    """The bytes of a JWKS file or URL (at most MAX_JWKS_BYTES)."""
    if source.startswith(("http://", "https://")):
        request = urllib.request.Request(source, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(MAX_JWKS_BYTES + 1)
    else:
        with open(source, "rb") as f:
            data = f.read(MAX_JWKS_BYTES + 1)
    if len(data) > MAX_JWKS_BYTES:
        raise ValueError(f"larger than {MAX_JWKS_BYTES} bytes")
    return data


class JwksKeys:
    """The issuer's keys, fetched lazily and refreshed as described above."""

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        refresh: float = 300.0,
        min_interval: float = 10.0,
        timeout: float = 5.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.source = os.fspath(source) if isinstance(source, Path) else str(source)
        self._refresh, self._min_interval, self._timeout = refresh, min(min_interval, refresh), timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, VerificationKey] = {}
        self._fetched: float | None = None  # last successful fetch
        self._attempted: float | None = None  # last attempt, successful or not
        self.fetches = 0  # attempts so far, for tests and metrics

    def get(self, kid: str) -> VerificationKey | None:
        """The key ``kid``, fetching the set first if it is stale or lacks it."""
        with self._lock:
            if self._stale() or (kid not in self._keys and self._may_fetch()):
                self._fetch()
            return self._keys.get(kid)

    def _stale(self) -> bool:
        now = self._clock()
        due = self._fetched is None or now - self._fetched >= self._refresh
        return due and self._may_fetch()

    def _may_fetch(self) -> bool:
        return self._attempted is None or self._clock() - self._attempted >= self._min_interval

    def _fetch(self) -> None:
        self._attempted = self._clock()
        self.fetches += 1
        try:
            keys, problems = parse_jwks(fetch(self.source, self._timeout), self.source)
        except (OSError, ValueError, urllib.error.URLError) as e:
            logger.error(
                "JWKS %s cannot be fetched, keeping %d known keys: %s", self.source, len(self._keys), _reason(e)
            )
            return
        for problem in problems:
            logger.warning("JWKS %s: %s; key skipped", self.source, problem)
        self._keys, self._fetched = keys, self._attempted
        logger.info("fetched %d keys from JWKS %s", len(keys), self.source)


def _reason(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    return str(error)
