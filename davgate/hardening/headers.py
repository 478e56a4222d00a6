"""Strict readers of the WebDAV request headers that WsgiDAV reads loosely.

Each function takes the header's value and either returns (a normalised
value, or nothing) or raises :class:`Refused` with the status and a one-line
reason. The grammar is RFC 4918's (Depth, Overwrite, If, Timeout,
Destination) and RFC 9110's (Range). Where WsgiDAV would silently ignore a
malformed header (an ``If`` it cannot parse is treated as no condition, so
the write goes ahead), these refuse it before anything is done.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes, urlsplit

from davgate.hardening.errors import Refused

DEPTHS = frozenset({"0", "1", "infinity"})
MAX_DESTINATION = 8 * 1024
MAX_RANGES = 64
MAX_TIMEOUT = 2**32 - 1  # RFC 4918 10.7: a Second- value MUST NOT be greater
MAX_DIGITS = 18  # whole numbers longer than this are not lengths or offsets

RANGE_SPEC = re.compile(rf"(\d{{1,{MAX_DIGITS}}})-(\d{{0,{MAX_DIGITS}}})|-(\d{{1,{MAX_DIGITS}}})")
TIME_TYPE = re.compile(r"second-(\d{1,10})|infinite", re.IGNORECASE)
# One token of an If header: a Coded-URL or Resource-Tag, an entity tag, a parenthesis or Not.
ENCODED_SEPARATOR = re.compile(r"%(2f|5c)", re.IGNORECASE)
IF_TOKEN = re.compile(r"\s*(?:(<[^<>\s]+>)|(\[[^\[\]]+\])|(\()|(\))|(not)(?=[\s<\[]))", re.IGNORECASE)


def depth(value: str) -> str:
    """``0``, ``1`` or ``infinity`` (any case); anything else is a 400."""
    text = value.strip().lower()
    if text not in DEPTHS:
        raise Refused(400, f"Depth must be 0, 1 or infinity, not {shown(value)}")
    return text


def overwrite(value: str) -> str:
    """``T`` or ``F``."""
    text = value.strip().upper()
    if text not in ("T", "F"):
        raise Refused(400, f"Overwrite must be T or F, not {shown(value)}")
    return text


def timeout(value: str) -> None:
    """``Timeout: 1#(Second-n | Infinite)`` with n at most 2^32-1."""
    items = [item.strip() for item in value.split(",")]
    if not any(items):
        raise Refused(400, "Timeout is empty")
    for item in filter(None, items):
        match = TIME_TYPE.fullmatch(item)
        if match is None or (match.group(1) and int(match.group(1)) > MAX_TIMEOUT):
            raise Refused(400, f"Timeout must be Second-<seconds up to 2^32-1> or Infinite, not {shown(item)}")


def byte_ranges(value: str) -> bool:
    """True if the Range header is to be honoured, False if it is to be ignored.

    A unit other than ``bytes`` is ignored (RFC 9110 14.2); a malformed
    ``bytes`` set, or too many ranges, is refused with 416.
    """
    unit, equals, ranges = value.partition("=")
    if unit.strip().lower() != "bytes" or not equals:
        return False
    specs = [spec.strip() for spec in ranges.split(",")]
    specs = [spec for spec in specs if spec]
    if not specs:
        raise Refused(416, "Range has no byte ranges")
    if len(specs) > MAX_RANGES:
        raise Refused(416, f"Range asks for {len(specs)} ranges; at most {MAX_RANGES} are served")
    for spec in specs:
        match = RANGE_SPEC.fullmatch(spec)
        if match is None:
            raise Refused(416, f"Range has a malformed byte range {shown(spec)}")
        first, last = match.group(1), match.group(2)
        if first and last and int(last) < int(first):
            raise Refused(416, f"Range has a byte range that ends before it starts: {shown(spec)}")
    return True


def if_header(value: str) -> str:
    """RFC 4918 10.4: ``1*No-tag-list | 1*Tagged-list``; each list ``( 1*Condition )``.

    Entity tags are taken as they come between brackets (quoted or not, as
    clients copy them from ``getetag``); the structure is strict. Returns the
    header with each resource tag written as WsgiDAV compares it (see
    :func:`resource_tag`).
    """
    tokens = if_tokens(value)
    tagged = bool(tokens) and tokens[0].startswith("<")
    position, lists = 0, 0
    while position < len(tokens):
        token = tokens[position]
        if token.startswith("<"):
            if not tagged:
                raise Refused(400, "If header mixes untagged and tagged lists")
            if position + 1 >= len(tokens) or tokens[position + 1] != "(":
                raise Refused(400, "If header has a resource tag without a list")
            tokens[position] = f"<{resource_tag(token[1:-1])}>"
            position += 1
            continue
        if token != "(":
            raise Refused(400, f"If header: expected '(' but found {shown(token)}")
        position = if_list(tokens, position + 1)
        lists += 1
    if lists == 0:
        raise Refused(400, "If header has no condition list")
    return " ".join(tokens)


def resource_tag(tag: str) -> str:
    """A tagged list's resource, as the quoted path WsgiDAV matches it with (its ``get_ref_url()``).

    WsgiDAV applies a tagged list only to the resource whose quoted path is
    the tag, character for character. A tag written as a full URL (the form
    of RFC 4918's own examples) or quoted another way would match nothing,
    and its conditions would be skipped: the write would go ahead whatever
    the ETag. As with Destination, the URL's path is what counts; a tag of
    another scheme (``urn:``) names nothing here and is kept as it is.
    """
    try:
        parts = urlsplit(tag)
    except ValueError:
        raise Refused(400, f"If header: the resource tag is not a URL: {shown(tag)}") from None
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        path = parts.path or "/"
    elif not parts.scheme and tag.startswith("/"):
        path = parts.path
    else:
        return tag
    return quote(request_path(path, "If header resource tag"))


def if_tokens(value: str) -> list[str]:
    tokens, position, text = [], 0, value.rstrip()
    while position < len(text):
        match = IF_TOKEN.match(text, position)
        if match is None:
            raise Refused(400, f"If header is malformed near {shown(text[position:])}")
        tokens.append(match.group(match.lastindex or 0))
        position = match.end()
    return tokens


def if_list(tokens: list[str], position: int) -> int:
    """Read ``1*Condition )`` from ``position``; return the position after the ')'."""
    conditions = 0
    while position < len(tokens) and tokens[position] != ")":
        if tokens[position].lower() == "not":
            position += 1
        if position >= len(tokens) or not tokens[position].startswith(("<", "[")):
            raise Refused(400, "If header: a condition must be a <state-token> or an [entity-tag]")
        conditions, position = conditions + 1, position + 1
    if position >= len(tokens):
        raise Refused(400, "If header has an unclosed '('")
    if conditions == 0:
        raise Refused(400, "If header has an empty list '()'")
    return position + 1


@dataclass(frozen=True)
class Origins:
    """The schemes and hosts (``host[:port]``, lower case) a request came by."""

    schemes: frozenset[str]
    hosts: frozenset[str]


def destination(value: str, origins: Origins | None = None) -> str:
    """The decoded path of a Destination header: an absolute path, or an http(s) URL of this server.

    With ``origins``, a URL must name one of its schemes and hosts (as
    WsgiDAV compares them), since a resource elsewhere cannot be written
    from here. A ``#`` (a fragment) or ``?`` (a query) is refused: neither
    belongs to a resource's name unencoded.
    """
    if not value.strip():
        raise Refused(400, "Destination is empty")
    if len(value) > MAX_DESTINATION:
        raise Refused(400, f"Destination is longer than {MAX_DESTINATION} characters")
    try:
        parts = urlsplit(value.strip())
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        raise Refused(400, f"Destination is not a URL: {shown(value)}") from None
    if "#" in value or "?" in value:
        raise Refused(400, "Destination has a fragment or a query ('#' or '?'); write them in a name as %23 and %3F")
    if parts.scheme and parts.scheme.lower() not in ("http", "https"):
        raise Refused(400, f"Destination must be an http(s) URL, not {shown(parts.scheme)}")
    if parts.scheme and not parts.netloc:
        raise Refused(400, "Destination URL has no host")
    if not parts.path.startswith("/"):
        raise Refused(400, f"Destination must be an absolute URL or path, not {shown(value)}")
    if parts.scheme and origins is not None:
        check_origin(parts.scheme.lower(), parts.netloc.lower(), origins)
    return request_path(parts.path, "Destination")


def check_origin(scheme: str, netloc: str, origins: Origins) -> None:
    if "@" in netloc:
        raise Refused(400, "Destination URL carries credentials")
    if netloc not in origins.hosts:
        raise Refused(400, f"Destination names another host ({shown(netloc)}); COPY and MOVE stay on this server")
    if scheme not in origins.schemes:
        raise Refused(400, f"Destination names another scheme ({scheme}) than the request's")


def request_path(raw: str, what: str) -> str:
    """Percent-decode ``raw`` strictly: UTF-8, no encoded '/' or '\\', no control characters."""
    if raw.isascii() and "%" not in raw:  # nothing encoded: the path is the text as it came
        check_segments(raw, what)
        return raw
    if ENCODED_SEPARATOR.search(raw):
        raise Refused(400, f"{what} has an encoded '/' or '\\' (%2F, %5C)")
    try:
        path = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, f"{what} is not valid UTF-8 once decoded (overlong or broken sequence)") from None
    check_segments(path, what)
    return path


def check_segments(path: str, what: str) -> None:
    """No control characters, backslashes, or '.' and '..' segments."""
    if not path.isprintable() and any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in path):
        raise Refused(400, f"{what} has a control character")
    if "\\" in path:
        raise Refused(400, f"{what} has a backslash")
    if "." in path and any(segment in (".", "..") for segment in path.split("/")):
        raise Refused(400, f"{what} has a '.' or '..' segment")


def shown(text: str, limit: int = 40) -> str:
    """A header value quoted for a reason: short, and without control characters."""
    text = "".join(c if c.isprintable() else "?" for c in text)
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
