"""Live properties that real clients need beyond RFC 4918.

``{http://owncloud.org/ns}permissions`` — NextCloud's WebDAV storage (and
ownCloud's) reads what a user may do from these letters: ``R`` shareable,
``G`` readable, ``D`` deletable, ``NV`` renameable and movable, ``W`` a
writable file, ``CK`` a folder that files and folders may be created in. A
read-only mount, a user without write access (access rules, token scopes,
anonymous readers) gets ``RG``; a mount's root cannot be deleted or moved.
The property is sent when asked for by name, not with ``allprop``.

Setting the modification time by PROPPATCH — NextCloud sends
``{DAV:}lastmodified`` with Unix seconds after every upload, and marks the
whole storage unavailable if any property of the answer fails;
``{DAV:}getlastmodified`` and Windows' ``Win32LastModifiedTime`` (HTTP
dates) are taken too. Where the mount can set a file's time (local, sftp),
it does. Where it cannot (S3 keeps its own LastModified), the time is
recorded in the state store beside the resource's ETag and reported as
``getlastmodified`` until the content changes: that is what the client
asked for, the recorded time follows COPY and MOVE like a dead property,
and a new upload (a new ETag) shows the storage's own time again.
"""

from __future__ import annotations

import email.utils
from typing import Any

from lxml import etree
from wsgidav.dav_error import HTTP_CONFLICT, HTTP_FORBIDDEN, DAVError

# A file or folder resource of davgate.providers.resources: a WsgiDAV resource
# (untyped) with the mount, rel and check_writable() of MountedResource.
MountedResource = Any
OC_PERMISSIONS = "{http://owncloud.org/ns}permissions"
TIME_PROPERTIES = frozenset(
    {"{DAV:}lastmodified", "{DAV:}getlastmodified", "{urn:schemas-microsoft-com:}Win32LastModifiedTime"}
)
RECORDED_TIME = "{urn:x-davgate:}lastmodified"  # where a mount that cannot set times keeps them
READ_ONLY_LETTERS = "RG"
# WsgiDAV answers these with an empty value when the size is unknown; NextCloud reads "" as 0 bytes free.
QUOTA_PROPERTIES = frozenset({"{DAV:}quota-available-bytes", "{DAV:}quota-used-bytes"})


# --- oc:permissions ----------------------------------------------------------------


def property_names(names: list[str], *, is_allprop: bool) -> list[str]:
    """WsgiDAV's names for a resource, with ours added and the recorded time hidden."""
    names = [name for name in names if name != RECORDED_TIME]
    return names if is_allprop else [*names, OC_PERMISSIONS]


def permissions(resource: MountedResource) -> str:
    """The ownCloud permission letters of ``resource`` for the requesting user."""
    from davgate.access import Need

    letters = READ_ONLY_LETTERS
    if may(resource, resource.path, Need.MODIFY):
        letters += "DNV" if resource.rel else ""
        letters += "" if resource.is_collection else "W"
    if resource.is_collection and may(resource, resource.path.rstrip("/") + "/new", Need.CREATE):
        letters += "CK"
    return letters


def may(resource: MountedResource, path: str, need: Any) -> bool:
    """Whether this request's user may ``need`` (create, modify) ``path``."""
    from davgate.access import Scopes
    from davgate.auth.bearer import TOKEN_SCOPES

    if resource.mount.readonly:
        return False
    environ = resource.environ
    config = environ.get("wsgidav.config", {})
    user = environ.get("wsgidav.auth.user_name") or ""
    setup = config.get("davgate.auth")
    if not user and getattr(setup, "anonymous", "none") != "write":
        return False
    access = config.get("davgate.access")
    if access is not None and not access.policy.allows(user, resource.mount.path, need):
        return False
    scopes = Scopes.parse(environ.get(TOKEN_SCOPES))
    return scopes is None or scopes.allows(path, need)


# --- the modification time ------------------------------------------------------------


def parse_time(text: str | None) -> float:
    """Unix seconds (``1700000000``, NextCloud) or an HTTP date (Windows); ValueError otherwise."""
    text = (text or "").strip()
    try:
        return float(int(text)) if text.lstrip("-").isdigit() else email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        raise ValueError(f"not a time: {text!r}") from None


def set_time(resource: MountedResource, value: Any, *, dry_run: bool) -> None:
    """PROPPATCH of a time property: set the file's time, or record it; removal forgets a record."""
    resource.check_writable()
    if value is None:
        if not dry_run:
            record(resource, None)
        return
    try:
        stamp = parse_time(value.text)
    except ValueError as error:
        raise DAVError(HTTP_CONFLICT, context_info=str(error)) from None
    if not resource.set_last_modified(resource.path, stamp, dry_run=dry_run) and not dry_run:
        record(resource, stamp)


def record(resource: MountedResource, stamp: float | None) -> None:
    """Keep (or with None, forget) a time for the resource's current content."""
    manager = resource.provider.prop_manager
    if manager is None:
        if stamp is None:
            return
        raise DAVError(HTTP_FORBIDDEN, context_info="modification times cannot be kept on this mount")
    url = resource.get_ref_url()
    if stamp is None:
        manager.remove_property(url, RECORDED_TIME, False, resource.environ)
        return
    element = etree.Element(RECORDED_TIME, etag=resource.get_etag())
    element.text = repr(stamp)
    manager.write_property(url, RECORDED_TIME, etree.tostring(element), False, resource.environ)


def recorded_time(resource: MountedResource) -> float | None:
    """The time a client set for the resource's current content, if any."""
    manager = resource.provider.prop_manager
    if manager is None:
        return None
    return recorded_in(
        manager.get_property(resource.get_ref_url(), RECORDED_TIME, resource.environ), resource.get_etag()
    )


def recorded_in(value: bytes | str | None, etag: str) -> float | None:
    """The time in a stored RECORDED_TIME value, if it was recorded for the content with ``etag``."""
    if value is None:
        return None
    element = etree.fromstring(value)
    if element.get("etag") != etag:
        return None
    return float(element.text or 0)
