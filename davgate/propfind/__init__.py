"""PROPFIND on a mount's files and folders, answered in one pass.

WsgiDAV answers PROPFIND by asking each resource for each property in
turn — two state-store queries per member (its locks, its dead
properties), a URL quoted per property — and builds one lxml tree of the
whole answer before serialising it: tens of microseconds and kilobytes of
heap per member, hundreds of megabytes for a large folder. Here one
listing of the mount gives the members, one query each gives the locks and
dead properties of all of them (:class:`~davgate.propfind.properties.Listing`),
and each ``<response>`` is written as text as soon as it is known.

Taken here: ``Depth: 0`` or ``1`` on a file or folder of a mount that uses
davgate's shared resources, without conditional headers. ``Depth:
infinity`` on any folder (and a PROPFIND without Depth, which RFC 4918 reads
as infinity) is refused with 403 ``DAV:propfind-finite-depth``, as Apache
refuses it, unless ``server.propfind_depth_infinity`` allows it: one
request must not make the server walk a whole tree. Everything else — an
allowed ``Depth: infinity``, the virtual folders above the mounts, DISPEL's
virtual tree, ``If``/``If-Match``/… — goes to WsgiDAV as before. The properties
read the same on both paths (tests/wsgi/test_propfind.py compares them),
except where WsgiDAV falls short of RFC 4918: ``<propname/>`` is answered
(WsgiDAV answers nothing) and ``<include/>`` adds its properties to
``<allprop/>``.

The provider calls :func:`answer` from its ``custom_request_handler``,
after authentication and access control.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable

from wsgidav import util

from davgate.hardening.errors import Refused
from davgate.propfind import body, xml
from davgate.propfind.properties import LIVE, Listing, Resource, href, is_mounted
from davgate.providers import liveprops

CONDITIONAL = ("HTTP_IF", "HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_UNMODIFIED_SINCE")
BLOCK = 64 * 1024  # the answer goes out in blocks of about this size
ALLPROP_LIVE = tuple(LIVE)
Handler = Callable[[dict, Callable], Iterable[bytes]]
INFINITE = Refused(
    403,
    "PROPFIND with Depth: infinity (or without Depth) on a folder is not served here; ask Depth: 1, folder by folder",
    "propfind-finite-depth",
)


def answer(provider, environ: dict, start_response: Callable, default_handler: Handler) -> Iterable[bytes]:
    """Answer the PROPFIND in ``environ`` here if it is one this module takes, else with ``default_handler``."""
    depth = environ.get("HTTP_DEPTH", "infinity")
    if depth == "infinity" and not provider.propfind_depth_infinity:
        target = provider.get_resource_inst(environ["PATH_INFO"], environ)
        if target is not None and target.is_collection:
            return INFINITE.respond(start_response)
    if depth not in ("0", "1") or any(header in environ for header in CONDITIONAL):
        return default_handler(environ, start_response)
    query = body.parse(read_body(environ))
    resource = provider.get_resource_inst(environ["PATH_INFO"], environ) if query is not None else None
    if query is None or not is_mounted(resource):
        return default_handler(environ, start_response)
    blocks = list(multistatus(resource, query, with_members=depth == "1" and resource.is_collection))
    start_response(
        "207 Multi-Status",
        [
            ("Content-Type", "application/xml; charset=utf-8"),
            ("Date", util.get_rfc1123_time()),
            ("Content-Length", str(sum(map(len, blocks)))),
        ],
    )
    return blocks


def read_body(environ: dict) -> bytes:
    """The request body (already read and checked by the request guard), left readable for WsgiDAV."""
    length = environ.get("CONTENT_LENGTH", "").strip()
    data = environ["wsgi.input"].read(int(length)) if length.isdigit() and int(length) > 0 else b""
    environ["wsgi.input"] = io.BytesIO(data)
    return data


def multistatus(target: Resource, query: body.Query, *, with_members: bool) -> Iterable[bytes]:
    """The answer in blocks: ``target`` first, then (``with_members``) each member."""
    resources = [target, *target.get_member_list()] if with_members else [target]
    urls = [resource.get_ref_url() for resource in resources]
    listing = Listing(target, urls, with_members=with_members)
    pending, size = [xml.HEAD], len(xml.HEAD)
    for resource, url in zip(resources, urls):
        part = response(listing, resource, url, query).encode()
        pending.append(part)
        size += len(part)
        if size >= BLOCK:
            yield b"".join(pending)
            pending, size = [], 0
    pending.append(xml.TAIL)
    yield b"".join(pending)


def response(listing: Listing, resource: Resource, url: str, query: body.Query) -> str:
    """The ``<response>`` for one resource, whose ref URL is ``url``."""
    dead = listing.dead(resource, url)
    listing.prepare(resource, dead)
    where = href(resource, url)
    if query.mode == body.PROP:
        found, missing = values(listing, resource, url, query.names, dead)
        return xml.response(where, [value for _name, value in found], missing)
    everything = [*ALLPROP_LIVE, *sorted(name for name in dead if name != liveprops.RECORDED_TIME)]
    found, _none = values(listing, resource, url, everything, dead)
    if query.mode == body.PROPNAME:
        names = [*(name for name, _value in found), liveprops.OC_PERMISSIONS]
        return xml.response(where, [xml.element(name) for name in names], [])
    extra = [name for name in query.names if name not in everything]  # <include/>
    included, missing = values(listing, resource, url, extra, dead)
    return xml.response(where, [value for _name, value in found + included], missing)


def values(
    listing: Listing, resource: Resource, url: str, names: Iterable[str], dead: dict
) -> tuple[list[tuple[str, str]], list[str]]:
    """The properties of ``names`` that the resource has, as (name, XML), and the names it has not."""
    found, missing = [], []
    for name in names:
        value = listing.value(resource, url, name, dead)
        if value is None:
            missing.append(name)
        else:
            found.append((name, value))
    return found, missing
