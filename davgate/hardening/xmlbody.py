"""Request bodies that WsgiDAV reads whole and parses as XML: bounded, then checked safely.

WsgiDAV reads the body of PROPFIND, PROPPATCH and LOCK (and of COPY and
MOVE, to ignore it) into memory in one ``read``, then parses it with lxml
without resolving entities. Unresolved entity references survive in
property values and lock owners, which it stores and later fails to
re-parse (a dead property that answers 500 forever; a LOCK that answers 500
but leaves the resource locked). So before WsgiDAV sees a body, it is read
here up to a limit (413 beyond it) and parsed with defusedxml, which
refuses any DTD, entity declaration or external reference (400). WsgiDAV
then reads the checked bytes again from memory. Comments and processing
instructions inside the document, which are well-formed XML but which
WsgiDAV takes for property names (a 500), are removed first.
"""

from __future__ import annotations

import io
from typing import BinaryIO
from xml.etree.ElementTree import Comment, Element, ParseError, ProcessingInstruction, TreeBuilder

from defusedxml import DefusedXmlException, DTDForbidden
from defusedxml.ElementTree import DefusedXMLParser
from lxml import etree

from davgate.hardening.errors import Refused

XML_METHODS = frozenset({"PROPFIND", "PROPPATCH", "LOCK"})
BOUNDED_METHODS = XML_METHODS | {"COPY", "MOVE"}  # bodies WsgiDAV reads whole
READ_CHUNK = 64 * 1024
DRAIN_LIMIT = 8 * 1024 * 1024  # a refused body up to this size is read and dropped, so its 413 is not lost to a reset


def content_length(environ: dict) -> int | None:
    """The Content-Length as a number; None without one; 400 if it is not a number."""
    text = environ.get("CONTENT_LENGTH", "").strip()
    if not text:
        return None
    if not text.isdigit() or not text.isascii() or len(text) > 18:
        raise Refused(400, "Content-Length must be a non-negative whole number of bytes")
    return int(text)


def chunked(environ: dict) -> bool:
    return "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()


def check_size(environ: dict, method: str, limit: int) -> None:
    """Refuse a declared body over ``limit`` without keeping any of it."""
    length = content_length(environ)
    if length is not None and length > limit:
        if length <= DRAIN_LIMIT:
            drain(environ["wsgi.input"], length)
        raise Refused(413, f"a {method} body may be at most {limit} bytes; this one has {length}")


def drain(stream: BinaryIO, most: int) -> None:
    """Read and drop up to ``most`` bytes: closing on unread bytes resets the connection, and the answer with it."""
    while most > 0:
        data = stream.read(min(READ_CHUNK, most))
        if not data:
            return
        most -= len(data)


def read_body(environ: dict, method: str, limit: int) -> bytes | None:
    """The whole body (at most ``limit`` bytes), or None if the request has none."""
    check_size(environ, method, limit)
    length = content_length(environ)
    stream: BinaryIO = environ["wsgi.input"]
    if length is None and not chunked(environ):
        return None
    wanted = limit + 1 if length is None else length
    parts, size = [], 0
    while size < wanted:
        data = stream.read(min(READ_CHUNK, wanted - size))
        if not data:
            break
        parts.append(data)
        size += len(data)
    if size > limit:
        drain(stream, DRAIN_LIMIT)
        raise Refused(413, f"a {method} body may be at most {limit} bytes")
    if length is not None and size < length:
        raise Refused(400, f"the body ended after {size} of {length} bytes")
    return b"".join(parts)


def check_xml(body: bytes, max_elements: int) -> bytes:
    """Parse ``body`` with DTDs, entities and external references forbidden; return what WsgiDAV may read."""
    if not body.strip():
        return body
    root = safe_parse(body)
    count, extras = 0, False
    for node in root.iter():
        count += 1
        extras = extras or node.tag is Comment or node.tag is ProcessingInstruction
    if count > max_elements:
        raise Refused(413, f"the XML body has {count} elements; at most {max_elements} are accepted")
    return without_comments(body) if extras else body


def safe_parse(body: bytes) -> Element:
    parser = DefusedXMLParser(
        target=TreeBuilder(insert_comments=True, insert_pis=True),
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
    try:
        parser.feed(body)
        return parser.close()
    except DTDForbidden:
        raise Refused(400, "the XML body has a DTD (<!DOCTYPE>); DTDs and entities are not accepted") from None
    except DefusedXmlException as error:
        raise Refused(400, f"the XML body declares or references entities ({type(error).__name__})") from None
    except ParseError as error:
        raise Refused(400, f"the XML body is not well-formed: {error}") from None


def without_comments(body: bytes) -> bytes:
    """The same document without comments and processing instructions (safe: no DTD is left)."""
    parser = etree.XMLParser(remove_comments=True, remove_pis=True, resolve_entities=False, no_network=True)
    try:
        return etree.tostring(etree.fromstring(body, parser), encoding="UTF-8", xml_declaration=True)
    except etree.XMLSyntaxError as error:
        raise Refused(400, f"the XML body is not well-formed: {error}") from None


def checked_body(environ: dict, method: str, limit: int, max_elements: int) -> None:
    """Read, bound and check the body of ``method``; put the checked bytes back for WsgiDAV."""
    if method not in XML_METHODS:
        check_size(environ, method, limit)
        return
    body = read_body(environ, method, limit)
    if body is None:
        return
    body = check_xml(body, max_elements)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
