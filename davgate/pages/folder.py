"""The page of one folder: breadcrumbs, the listing, the actions its user may take, how to connect."""

from __future__ import annotations

from urllib.parse import quote, unquote

from davgate.pages import assets, dispel
from davgate.pages.html import Markup, join, render, tag, template
from davgate.pages.listing import Row, human_size, human_time, iso_time, may_create, rows_of

PAGE = template("folder.html")
CONNECT = template("connect.html")


def page(folder, environ: dict) -> bytes:
    """The HTML page of ``folder`` (a WsgiDAV collection) for this request's user."""
    path = url_of(folder.path)
    writable = may_create(folder)
    rows = rows_of(folder)
    thumbnail = dispel.thumbnail_output(folder)
    user = environ.get("wsgidav.auth.user_name") or ""
    name = folder.get_display_name() if path != "/" else "davgate"
    return render(
        PAGE,
        title=name,
        css=assets.url("davgate.css"),
        js=assets.url("davgate.js"),
        icon=assets.url("icon.svg"),
        path=path,
        writable="true" if writable else "false",
        user=tag("span", join([Markup("Signed in as "), tag("strong", user)]), class_="user") if user else "",
        crumbs=breadcrumbs(path),
        heading=name,
        access=access_badge(writable),
        toolbar=toolbar() if writable else "",
        dispel=dispel.panel(folder, rows),
        rows=join([row_html(row, thumbnail) for row in rows]),
        count=count_text(rows),
        empty="" if rows else tag("p", "This folder is empty.", class_="empty"),
        connect=connect(environ, path, user),
    ).encode()


def url_of(path: str) -> str:
    """``/a/b%20c/``: the path's segments, each quoted, one '/' after each (never ``//host``)."""
    return "/" + "".join(quote(segment, safe="") + "/" for segment in path.split("/") if segment)


def breadcrumbs(path: str) -> Markup:
    """One link per folder from the top down to this one (the last is the current page); ``path`` is quoted."""
    segments = [s for s in path.split("/") if s]
    items = [crumb("davgate", "/", current=not segments)]
    for index, segment in enumerate(segments):
        href = "/" + "".join(s + "/" for s in segments[: index + 1])
        items.append(crumb(unquote(segment), href, current=index == len(segments) - 1))
    return join(items)


def crumb(label: str, href: str, *, current: bool) -> Markup:
    link = tag("a", label, href=href, aria_current="page" if current else None)
    return tag("li", link)


def access_badge(writable: bool) -> Markup:
    if writable:
        return tag("span", "read and write", class_="badge badge-write", title="you may upload, rename and delete here")
    return tag("span", "read-only", class_="badge badge-read", title="this folder takes no changes from you")


def toolbar() -> Markup:
    return Markup(
        '<div class="toolbar" role="toolbar" aria-label="Folder actions">'
        '<button type="button" id="upload-button" class="primary">Upload files</button>'
        '<input type="file" id="upload-input" multiple hidden>'
        '<button type="button" id="new-folder">New folder</button>'
        '<label class="replace"><input type="checkbox" id="replace"> Replace existing files</label>'
        '<span class="hint">or drop files anywhere on this page</span>'
        "</div>"
    )


def row_html(row: Row, thumbnail: str | None = None) -> Markup:
    kind = "folder" if row.is_folder else "file"
    link = tag("a", row.name, href=row.href, class_=f"entry entry-{kind}")
    if thumbnail and not row.is_folder:
        src = "./" + quote(row.name.rpartition(".")[0], safe="") + thumbnail
        image = tag("img", src=src, alt="", class_="thumb", loading="lazy", decoding="async", width="40", height="40")
        link = join([image, link])
    cells = [
        tag("td", link, class_="name"),
        tag("td", "" if row.is_folder else human_size(row.size), class_="size"),
        tag("td", tag("time", human_time(row.modified), datetime=iso_time(row.modified) or None), class_="modified"),
        tag("td", actions(row), class_="actions"),
    ]
    return tag(
        "tr",
        join(cells),
        data_name=row.name,
        data_kind=kind,
        data_size="" if row.size is None else str(row.size),
        data_modified="" if row.modified is None else f"{row.modified:.0f}",
    )


def actions(row: Row) -> Markup:
    if not row.may_change:
        return Markup("")
    label = f" {row.name}"
    return join(
        [
            tag("button", "Rename", type="button", data_action="rename", aria_label="Rename" + label),
            tag("button", "Delete", type="button", data_action="delete", class_="danger", aria_label="Delete" + label),
        ]
    )


def count_text(rows: list[Row]) -> str:
    folders = sum(row.is_folder for row in rows)
    files = len(rows) - folders
    return f"{folders} folder{'' if folders == 1 else 's'}, {files} file{'' if files == 1 else 's'}"


def connect(environ: dict, path: str, user: str) -> Markup:
    """The folder's WebDAV URL and how to mount it with common clients."""
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    url = f"{environ.get('wsgi.url_scheme', 'http')}://{host}{path}"
    return render(CONNECT, url=url, user=user or "USER")
