"""Instance digests as science storage offers them (RFC 3230, RFC 5843).

GET and HEAD with ``Want-Digest: sha-256`` (also ``md5``, ``adler32``,
``sha``, ``sha-512``; several with q-values) are answered with a ``Digest``
header for the whole content, whatever Range was asked. A digest is
computed once per content version: it is kept in the state store under the
resource's path and ETag, so the next request, from any davgate process,
finds it there. Only the newest version of a path is kept.

A PUT that carries ``Digest`` or ``Content-MD5`` is hashed while its body
streams to the storage, and compared before the upload is committed: a
mismatch is answered with 400 and nothing is written (the old content, or
nothing, remains). The digests of a verified PUT are kept for the new
version, so reading them back costs nothing.

Values: ``md5``, ``sha``, ``sha-256`` and ``sha-512`` are the base64 of the
binary digest; ``adler32`` is 8 hexadecimal digits. Algorithm names are
case-insensitive; answers use the client's spelling.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from wsgidav.dav_error import HTTP_BAD_REQUEST, DAVError
from wsgidav.mw.base_mw import BaseMiddleware

from davgate import sendfile
from davgate.state import StateStore

__all__ = ["ALGORITHMS", "DigestMiddleware", "Digests", "Verifier", "parse_digest", "parse_want_digest"]

logger = logging.getLogger("davgate.digest")

READ_CHUNK = 1024 * 1024
ANSWERED_STATUSES = ("200", "206")


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class Adler32:
    """zlib's Adler-32 with hashlib's interface."""

    def __init__(self) -> None:
        self.value = 1

    def update(self, data: bytes, /) -> None:
        self.value = zlib.adler32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


@dataclass(frozen=True)
class Algorithm:
    """One RFC 3230 digest algorithm: how to hash, and how its value is written."""

    name: str
    make: Callable[[], Hasher]
    size: int
    hex: bool = False

    def encode(self, raw: bytes) -> str:
        return raw.hex() if self.hex else base64.b64encode(raw).decode("ascii")

    def decode(self, text: str) -> bytes:
        """The binary digest in ``text``; ValueError if it is not one."""
        try:
            if self.hex:
                raw = int(text, 16).to_bytes(self.size, "big") if 0 < len(text) <= 2 * self.size else b""
            else:
                raw = base64.b64decode(text, validate=True)
        except (ValueError, OverflowError, binascii.Error):
            raw = b""
        if len(raw) != self.size:
            raise ValueError(f"{self.name}: {text!r} is not a {self.name} digest")
        return raw


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm("md5", hashlib.md5, 16),
        Algorithm("sha", hashlib.sha1, 20),
        Algorithm("sha-256", hashlib.sha256, 32),
        Algorithm("sha-512", hashlib.sha512, 64),
        Algorithm("adler32", Adler32, 4, hex=True),
    )
}


# --- headers ---------------------------------------------------------------------


def parse_want_digest(header: str) -> list[str]:
    """The algorithms a ``Want-Digest`` asks for that we know, as spelled, best q first."""
    wanted: list[tuple[float, str]] = []
    for item in header.split(","):
        name, *params = (part.strip() for part in item.split(";"))
        if name.lower() not in ALGORITHMS:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                with contextlib.suppress(ValueError):
                    q = float(value)
        if q > 0 and all(name.lower() != known.lower() for _, known in wanted):
            wanted.append((q, name))
    wanted.sort(key=lambda item: -item[0])
    return [name for _, name in wanted]


def parse_digest(header: str) -> dict[str, bytes]:
    """The known algorithms' binary values in a ``Digest`` header; ValueError if one is malformed.

    Unknown algorithms are ignored (we cannot check them).
    """
    found: dict[str, bytes] = {}
    for item in header.split(","):
        name, equals, value = item.strip().partition("=")
        algorithm = ALGORITHMS.get(name.strip().lower())
        if algorithm is None:
            continue
        if not equals:
            raise ValueError(f"{name}: a value is missing")
        found[algorithm.name] = algorithm.decode(value.strip())
    return found


def expected_digests(environ: Mapping[str, Any]) -> dict[str, bytes]:
    """What the body of this PUT must hash to, from ``Digest`` and ``Content-MD5``."""
    if environ.get("REQUEST_METHOD") != "PUT":
        return {}
    try:
        expected = parse_digest(environ.get("HTTP_DIGEST", ""))
        content_md5 = environ.get("HTTP_CONTENT_MD5", "").strip()
        if content_md5:
            md5 = ALGORITHMS["md5"].decode(content_md5)
            if expected.setdefault("md5", md5) != md5:
                raise ValueError("Content-MD5 and Digest md5 differ")
    except ValueError as error:
        raise DAVError(HTTP_BAD_REQUEST, context_info=f"bad checksum header: {error}") from None
    return expected


# --- hashing ---------------------------------------------------------------------


class Hashers:
    """Several algorithms fed at once."""

    def __init__(self, names: Iterable[str]) -> None:
        self.hashers = {name: ALGORITHMS[name].make() for name in names}

    def update(self, data: bytes) -> None:
        for hasher in self.hashers.values():
            hasher.update(data)

    def raw(self) -> dict[str, bytes]:
        return {name: hasher.digest() for name, hasher in self.hashers.items()}

    def values(self) -> dict[str, str]:
        return {name: ALGORITHMS[name].encode(raw) for name, raw in self.raw().items()}


class Verifier(Hashers):
    """Hashes a PUT body as it streams; :meth:`check` before the upload is committed."""

    def __init__(self, expected: Mapping[str, bytes]) -> None:
        super().__init__(expected)
        self.expected = dict(expected)

    @classmethod
    def for_request(cls, environ: Mapping[str, Any]) -> Verifier | None:
        """A verifier for this request's checksum headers; None if it has none."""
        expected = expected_digests(environ)
        return cls(expected) if expected else None

    def check(self) -> None:
        for name, raw in self.raw().items():
            if raw != self.expected[name]:
                algorithm = ALGORITHMS[name]
                got, said = algorithm.encode(raw), algorithm.encode(self.expected[name])
                raise DAVError(HTTP_BAD_REQUEST, context_info=f"{name} of the body is {got}, the request said {said}")


def compute(stream: Any, names: Iterable[str]) -> dict[str, str]:
    """The digests of everything ``stream`` yields, read in one pass."""
    hashers = Hashers(names)
    with contextlib.closing(stream):
        while chunk := stream.read(READ_CHUNK):
            hashers.update(chunk)
    return hashers.values()


# --- the cache and the middleware ------------------------------------------------------


def bare_etag(etag: str) -> str:
    """``W/"abc"`` and ``"abc"`` -> ``abc``."""
    return etag.strip().removeprefix("W/").strip('"')


class Digests:
    """Digests of content versions, kept in the state store by (path, ETag)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def remember(self, path: str, etag: str, values: Mapping[str, str]) -> None:
        if etag and values:
            self.store.put_digests(path, bare_etag(etag), values)

    def of(self, resource: Any, names: list[str], fresh: Callable[[], Any]) -> dict[str, str] | None:
        """``{name: value}`` for the resource's current content; None if it changed meanwhile.

        ``fresh()`` looks the resource up again, so a digest computed while the
        content was being replaced is neither kept nor sent.
        """
        etag = bare_etag(resource.get_etag() or "")
        if not etag:
            return None
        known = self.store.get_digests(resource.path, etag)
        missing = [name for name in names if name not in known]
        if missing:
            with sendfile.declined(resource.environ):  # read here, not handed to the server
                computed = compute(resource.get_content(), missing)
            again = fresh()
            if again is None or bare_etag(again.get_etag() or "") != etag:
                return None
            self.store.put_digests(resource.path, etag, computed)
            known.update(computed)
        return {name: known[name] for name in names}


class DigestMiddleware(BaseMiddleware):
    """WsgiDAV middleware: adds ``Digest`` to 200/206 answers of GET and HEAD that want one."""

    def __init__(self, wsgidav_app: Any, next_app: Any, config: dict) -> None:
        super().__init__(wsgidav_app, next_app, config)
        self.digests: Digests | None = config.get("davgate.digests")

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        header = environ.get("HTTP_WANT_DIGEST")
        if header and self.digests is not None and environ["REQUEST_METHOD"] in ("GET", "HEAD"):
            wanted = parse_want_digest(header)
            if wanted:
                return self.next_app(environ, self.answering(environ, wanted, start_response))
        return self.next_app(environ, start_response)

    def answering(self, environ: dict, wanted: list[str], start_response: Callable) -> Callable:
        def respond(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if exc_info is None and status[:3] in ANSWERED_STATUSES:
                etag = next((value for name, value in headers if name.lower() == "etag"), None)
                value = self.header(environ, wanted, etag) if etag else None
                if value:
                    headers.append(("Digest", value))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return respond

    def header(self, environ: dict, wanted: list[str], etag: str) -> str | None:
        """The Digest header for the resource this response sends, or None."""
        provider, path = environ.get("wsgidav.provider"), environ["PATH_INFO"]
        if provider is None:
            return None

        def lookup() -> Any:
            return provider.get_resource_inst(path, reading(environ))

        try:
            resource = lookup()
            if resource is None or resource.is_collection or bare_etag(resource.get_etag() or "") != bare_etag(etag):
                return None
            assert self.digests is not None
            values = self.digests.of(resource, [name.lower() for name in wanted], lookup)
        except Exception:  # a digest is an extra: the content is still sent without one
            logger.warning("no digest for %s", path, exc_info=True)
            return None
        if values is None:
            return None
        return ",".join(f"{name}={values[name.lower()]}" for name in wanted)


def reading(environ: Mapping[str, Any]) -> dict[str, Any]:
    """A fresh GET of the same URL by the same client: the request's own resources stay untouched.

    Only the CGI and WSGI keys are kept, so what the request has memoised
    (resources made for it, content already opened) is not shared.
    """
    fresh = {k: v for k, v in environ.items() if k.isupper() or k.startswith(("wsgi.", "wsgidav."))}
    fresh["REQUEST_METHOD"] = "GET"
    return fresh
