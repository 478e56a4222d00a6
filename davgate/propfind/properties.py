"""The properties of the resources of one PROPFIND answer, with what they share fetched once.

A :class:`Listing` is made per request for a mounted resource and, with
``Depth: 1``, its members. It reads the dead properties of exactly those
(a few batched queries) and the locks at and below the target (one query)
where WsgiDAV asks the state store twice per member; it asks the mount for its free space once, and formats dates once
per distinct second. The values themselves come from the resources'
getters, as WsgiDAV's own ``get_property_value`` takes them, so a property
reads the same on either path.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from wsgidav import util
from wsgidav.lock_man.lock_manager import normalize_lock_root

from davgate.errors import StorageError
from davgate.propfind import xml
from davgate.providers import liveprops
from davgate.providers.resources import MountedResource, supports

Resource = Any  # a FileResource or FolderResource (MountedResource + WsgiDAV's resource)
Dead = dict[str, bytes | str]
Live = Callable[["Listing", Resource, str], "str | None"]  # (listing, resource, its ref URL) -> XML or None

DATE_FORMATS = {"{DAV:}getlastmodified": util.get_rfc1123_time, "{DAV:}creationdate": util.get_rfc3339_time}
COLLECTION = "<D:resourcetype><D:collection/></D:resourcetype>"
NOT_COLLECTION = "<D:resourcetype/>"
SUPPORTED_LOCK = (
    "<D:supportedlock>"
    "<D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>"
    "<D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>"
    "</D:supportedlock>"
)


class Listing:
    """Property values for ``target`` and its members listed with it; ``urls``: the ref URLs of all, target first."""

    def __init__(self, target: Resource, urls: list[str], *, with_members: bool) -> None:
        provider = target.provider
        self.properties = provider.prop_manager
        self.locks_by_root: dict[str, list[dict]] | None = None
        self.dead_by_url: dict[str, Dead] | None = None
        self.spaces: dict[int, tuple[int, int] | None] = {}
        self.dates: dict[tuple[str, int], str] = {}
        if provider.lock_manager is not None:
            locks = provider.lock_manager.storage.get_lock_list(
                normalize_lock_root(urls[0]), include_root=True, include_children=with_members, token_only=False
            )
            self.locks_by_root = {}
            for lock in locks:
                self.locks_by_root.setdefault(lock["root"], []).append(lock)
        properties_of = getattr(self.properties, "properties_of", None)  # davgate's manager, not WsgiDAV's own
        if properties_of is not None:
            self.dead_by_url = properties_of(urls)

    # --- what a resource has ---------------------------------------------------------

    def dead(self, resource: Resource, url: str) -> Dead:
        """The dead properties of ``resource`` (whose ref URL is ``url``), the recorded time included."""
        if self.properties is None:
            return {}
        if self.dead_by_url is not None:
            return self.dead_by_url.get(url, {})
        names = self.properties.get_properties(url, resource.environ)
        return {name: self.properties.get_property(url, name, resource.environ) for name in names}

    def prepare(self, resource: Resource, dead: Dead) -> None:
        """Give the resource its recorded time from ``dead``, so it does not query the store itself."""
        if not supports(resource.mount, "set_modified"):
            resource.recorded = liveprops.recorded_in(dead.get(liveprops.RECORDED_TIME), resource.get_etag())

    def space(self, resource: Resource) -> tuple[int, int] | None:
        key = id(resource.mount)
        if key not in self.spaces:
            try:
                self.spaces[key] = resource.mount.space()
            except StorageError:
                self.spaces[key] = None
        return self.spaces[key]

    # --- values, as XML ------------------------------------------------------------------

    def value(self, resource: Resource, url: str, name: str, dead: Dead) -> str | None:
        """The property ``name`` of ``resource`` (ref URL ``url``) as an XML element, or None if it has none."""
        live = LIVE.get(name)
        if live is not None:
            return live(self, resource, url)
        if name == liveprops.OC_PERMISSIONS:
            return xml.element(name, liveprops.permissions(resource))
        if name.startswith("{DAV:}") or name == liveprops.RECORDED_TIME:
            return None
        stored = dead.get(name)
        if stored is None:
            return None
        return xml.stored(stored)

    def lockdiscovery(self, resource: Resource, url: str) -> str | None:
        if self.locks_by_root is None or resource.prevent_locking():
            return None
        locks = self.locks_by_root.get(normalize_lock_root(url), ())
        return (
            "<D:lockdiscovery>"
            + "".join(active_lock(lock, href(resource, url)) for lock in locks)
            + "</D:lockdiscovery>"
        )

    def supportedlock(self, resource: Resource, _url: str) -> str | None:
        if self.locks_by_root is None or resource.prevent_locking():
            return None
        return SUPPORTED_LOCK

    def date(self, name: str, seconds: float | None) -> str | None:
        """The date property ``name`` for ``seconds``, in its format; formatted once per distinct second."""
        if seconds is None:
            return None
        key = (name, math.floor(seconds))
        if key not in self.dates:
            self.dates[key] = xml.element(name, DATE_FORMATS[name](key[1]))
        return self.dates[key]


def active_lock(lock: dict, root_href: str) -> str:
    """One ``<activelock>`` of ``lockdiscovery``, as WsgiDAV writes it."""
    timeout = "Infinite" if lock["timeout"] < 0 else f"Second-{int(lock['expire'] - time.time())}"
    owner = xml.stored(lock["owner"]) if lock["owner"] else ""
    return (
        f"<D:activelock><D:locktype><D:{lock['type']}/></D:locktype>"
        f"<D:lockscope><D:{lock['scope']}/></D:lockscope>"
        f"<D:depth>{xml.text(lock['depth'])}</D:depth>{owner}"
        f"<D:timeout>{timeout}</D:timeout>"
        f"<D:locktoken><D:href>{xml.text(lock['token'])}</D:href></D:locktoken>"
        f"<D:lockroot><D:href>{root_href}</D:href></D:lockroot></D:activelock>"
    )


def href(resource: Resource, url: str) -> str:
    """The resource's href for the answer: its ref URL where that has nothing quoted that hrefs leave plain."""
    return url if "%" not in url and not resource.provider.mount_path else resource.get_href()


def text_of(name: str, getter: Callable[[Resource], Any]) -> Live:
    def value(_listing: Listing, resource: Resource, _url: str) -> str | None:
        found = getter(resource)
        return None if found is None else xml.element(name, xml.text(str(found)))

    return value


def quota(index: int) -> Live:
    name = ("{DAV:}quota-used-bytes", "{DAV:}quota-available-bytes")[index]

    def value(listing: Listing, resource: Resource, _url: str) -> str | None:
        if not resource.is_collection:
            return None
        space = listing.space(resource)
        return None if space is None else xml.element(name, str(space[index]))

    return value


# The live properties of allprop, in WsgiDAV's order; each None where the resource has none.
LIVE: dict[str, Live] = {
    "{DAV:}resourcetype": lambda _listing, resource, _url: COLLECTION if resource.is_collection else NOT_COLLECTION,
    "{DAV:}creationdate": lambda listing, resource, _url: listing.date(
        "{DAV:}creationdate", resource.get_creation_date()
    ),
    "{DAV:}getcontentlength": text_of("{DAV:}getcontentlength", lambda resource: resource.get_content_length()),
    "{DAV:}getcontenttype": text_of("{DAV:}getcontenttype", lambda resource: resource.get_content_type()),
    "{DAV:}quota-used-bytes": quota(0),
    "{DAV:}quota-available-bytes": quota(1),
    "{DAV:}getlastmodified": lambda listing, resource, _url: listing.date(
        "{DAV:}getlastmodified", resource.get_last_modified()
    ),
    "{DAV:}displayname": text_of("{DAV:}displayname", lambda resource: resource.get_display_name()),
    "{DAV:}getetag": text_of("{DAV:}getetag", lambda resource: resource.get_etag()),
    "{DAV:}lockdiscovery": Listing.lockdiscovery,
    "{DAV:}supportedlock": Listing.supportedlock,
}


def is_mounted(resource: object) -> bool:
    """A resource of a mount that uses davgate's shared resources (not a virtual folder, not DISPEL's)."""
    return isinstance(resource, MountedResource)
