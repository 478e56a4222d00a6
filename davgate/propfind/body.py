"""What a PROPFIND body asks for (RFC 4918, 9.1): all properties, their names, or some by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lxml import etree

ALLPROP, PROPNAME, PROP = "allprop", "propname", "prop"
Mode = Literal["allprop", "propname", "prop"]


@dataclass(frozen=True)
class Query:
    """``names``: the properties asked for (``prop``), or added to ``allprop`` by ``<include>``."""

    mode: Mode
    names: tuple[str, ...] = ()


def parse(body: bytes) -> Query | None:
    """The query in ``body``; None for a body this module leaves to WsgiDAV (it answers 400).

    An empty body means ``allprop``. The body was read within limits and
    checked for entity tricks by :mod:`davgate.hardening.xmlbody` already.
    """
    if not body.strip():
        return Query(ALLPROP)
    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return None
    if root.tag != "{DAV:}propfind":
        return None
    modes = [child.tag for child in root if child.tag in ("{DAV:}allprop", "{DAV:}propname", "{DAV:}prop")]
    if len(modes) != 1:
        return None
    if modes[0] == "{DAV:}propname":
        return Query(PROPNAME)
    wanted = "{DAV:}prop" if modes[0] == "{DAV:}prop" else "{DAV:}include"
    names = tuple(
        dict.fromkeys(prop.tag for child in root if child.tag == wanted for prop in child if isinstance(prop.tag, str))
    )
    return Query(PROP if wanted == "{DAV:}prop" else ALLPROP, names)
