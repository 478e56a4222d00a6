"""The multistatus answer written as text, one ``<response>`` at a time.

Property names are Clark notation (``{namespace}local``). ``DAV:`` names
use the ``D:`` prefix declared on the root; every other name declares its
namespace as the default on its own element, so no prefix bookkeeping is
needed. Dead property values are stored as whole XML elements
(``etree.tostring``) and go out as they are.
"""

from __future__ import annotations

import re
from functools import lru_cache

HEAD = b"<?xml version='1.0' encoding='UTF-8'?>\n<D:multistatus xmlns:D=\"DAV:\">"
TAIL = b"</D:multistatus>"
OK = "HTTP/1.1 200 OK"
NOT_FOUND = "HTTP/1.1 404 Not Found"
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")  # characters XML 1.0 cannot carry
NOT_PLAIN = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def text(value: str) -> str:
    """``value`` as element content."""
    if NOT_PLAIN.search(value) is None:
        return value
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return NOT_XML.sub("\ufffd", value)


def stored(value: bytes | str) -> str:
    """A stored XML element (a dead property, a lock's owner) as content, without its XML declaration."""
    if isinstance(value, bytes):
        value = value.decode()
    if value.startswith("<?xml"):
        value = value[value.index("?>") + 2 :].lstrip()
    return value


@lru_cache(maxsize=1024)
def tags(name: str) -> tuple[str, str]:
    """The opening and closing tag of the property ``name``."""
    namespace, _, local = name[1:].partition("}") if name.startswith("{") else ("", "", name)
    if namespace == "DAV:":
        return f"<D:{local}>", f"</D:{local}>"
    declared = namespace.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return f'<{local} xmlns="{declared}">', f"</{local}>"


def element(name: str, content: str = "") -> str:
    """A property element around ``content`` (already XML)."""
    opening, closing = tags(name)
    return opening + content + closing


def response(href: str, found: list[str], missing: list[str]) -> str:
    """One ``<response>``: the properties found (XML each), then the names not found, as empty elements."""
    parts = [f"<D:response><D:href>{href}</D:href>"]
    if found:
        parts.append(propstat("".join(found), OK))
    if missing:
        parts.append(propstat("".join(element(name) for name in missing), NOT_FOUND))
    parts.append("</D:response>")
    return "".join(parts)


def propstat(props: str, status: str) -> str:
    return f"<D:propstat><D:prop>{props}</D:prop><D:status>{status}</D:status></D:propstat>"
