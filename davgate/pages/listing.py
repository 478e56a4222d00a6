"""A folder's members as rows of a page: names, links, sizes, times and what the user may do.

Everything comes from the folder's WebDAV resources, as a client would see
them in a PROPFIND: one ``get_member_list()`` (one backend listing), and
the sizes and times the members already hold. Nothing is computed to be
listed: a DISPEL result not made yet has no size, and shows none.

What the user may do is each resource's ``oc:permissions``
(:func:`davgate.providers.liveprops.permissions`, which asks the access
rules and token scopes of :mod:`davgate.access`); a resource without
that property (virtual folders, DISPEL) is read-only.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import quote

from wsgidav.dav_error import DAVError

from davgate.providers.liveprops import OC_PERMISSIONS, READ_ONLY_LETTERS

UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB")
DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class Row:
    """One member of a folder, as the page shows it."""

    name: str
    is_folder: bool
    size: int | None
    modified: float | None
    letters: str  # oc:permissions

    @property
    def href(self) -> str:
        """Relative to the folder's own URL (which ends in '/')."""
        return "./" + quote(self.name, safe="") + ("/" if self.is_folder else "")

    @property
    def may_change(self) -> bool:
        """May the user rename (move) and delete it."""
        return "D" in self.letters and "NV" in self.letters


def permissions(resource) -> str:
    """The resource's ownCloud permission letters for this request's user (read-only if it has none)."""
    try:
        return resource.get_property_value(OC_PERMISSIONS) or READ_ONLY_LETTERS
    except DAVError:
        return READ_ONLY_LETTERS


def may_create(folder) -> bool:
    """May the user upload files and make folders in ``folder``."""
    return "CK" in permissions(folder)


def rows_of(folder) -> list[Row]:
    """The members of ``folder`` (a WsgiDAV collection), folders first, in natural order."""
    rows = [row_of(member) for member in folder.get_member_list()]
    return sorted(rows, key=lambda row: (not row.is_folder, natural_key(row.name)))


def row_of(member) -> Row:
    folder = bool(member.is_collection)
    size = None if folder else member.get_content_length()
    return Row(member.get_display_name(), folder, size, member.get_last_modified(), permissions(member))


def natural_key(name: str) -> tuple:
    """Sorts "2" before "10" and ignores case: "layer 2" < "Layer 10" < "layer 11"."""
    parts = DIGITS.split(name.casefold())
    return tuple((1, int(part), part) if index % 2 else (0, 0, part) for index, part in enumerate(parts))


def human_size(size: int | None) -> str:
    """``1.5 MiB``; ``—`` when unknown."""
    if size is None:
        return "—"
    value, unit = float(size), 0
    while value >= 1024 and unit < len(UNITS) - 1:
        value, unit = value / 1024, unit + 1
    if unit == 0:
        return "1 byte" if size == 1 else f"{size} bytes"
    return f"{value:.1f} {UNITS[unit]}" if value < 100 else f"{value:.0f} {UNITS[unit]}"


def iso_time(seconds: float | None) -> str:
    """``2026-12-06T05:13:14Z`` (UTC), or "" when unknown."""
    return "" if seconds is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def human_time(seconds: float | None) -> str:
    """``2026-12-06 05:13 UTC``; the page's script shows it in the reader's own time zone."""
    return "—" if seconds is None else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))
