"""HTML that escapes by default: every value put into a page is text unless it is :class:`Markup`.

Templates are ``string.Template`` files in ``templates/`` (``$name``
placeholders). :func:`render` escapes every value, quotes included (so a
value is safe in an attribute too), except :class:`Markup`, which only
:func:`tag` and :func:`render` make, from escaped parts.
"""

from __future__ import annotations

import html
from importlib import resources
from string import Template

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = (
    ("Content-Type", "text/html; charset=utf-8"),
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),  # a page shows one user's view
)


class Markup(str):
    """Text that is already HTML (made only from escaped parts)."""


def escape(value: object) -> Markup:
    """``value`` as HTML text; Markup stays as it is."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def join(parts: list[Markup]) -> Markup:
    return Markup("".join(escape(part) for part in parts))


def tag(name: str, content: object = "", /, **attributes: object) -> Markup:
    """``<name attr="value">content</name>``; ``class_`` for class, ``data_x`` for data-x; None omits."""
    attrs = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{escape(value)}"'
        for key, value in attributes.items()
        if value is not None
    )
    return Markup(f"<{name}{attrs}>{escape(content)}</{name}>")


def template(name: str) -> Template:
    return Template(resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8"))


def render(page: Template, **values: object) -> Markup:
    """The template with every value escaped (Markup as it is)."""
    return Markup(page.substitute({key: escape(value) for key, value in values.items()}))
