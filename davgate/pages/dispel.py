"""What a DISPEL folder's page adds: what each level means, and at the last level a window form.

A template's folders list the values of one parameter each; the page
names them all from the template (its description, each parameter's name
and expected form) and marks the one listed here, with the values chosen
above. Where the listed level is the template's last and it is a grid of
named whole numbers (``x0-x1-y0-y1``), the page offers a preview of the
whole layer and a form to choose any window and output: the script builds
the result's path from the pattern, shows its URL to copy, and previews
it if it is an image. The listing shows a thumbnail beside each result,
loaded lazily (only the rows in view): the template's output named
``thumbnail`` if it has one, else its ``png`` output made small with the
``size`` option where that output takes it. Previews and thumbnails are ordinary result files, made by the
same DISPEL machinery and kept in its cache; the page never waits for
them (the browser loads them after the page).
"""

from __future__ import annotations

import json

from davgate.dispel.params import GridParam
from davgate.dispel.tree import Folder
from davgate.pages.html import Markup, join, render, tag, template
from davgate.pages.listing import Row

PANEL, WINDOW = template("dispel.html"), template("dispel-window.html")
BROWSER_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})  # what an <img> shows
THUMBNAIL = "thumbnail"  # a template's output the pages show beside each of its listed results
THUMBNAIL_PIXELS = 80  # the longer side of a thumbnail made with a preview's size option (shown at 40, sharp at 2x)
MAX_PREVIEW = 4096  # pixels per side: a larger layer is previewed by its first listed window


def panel(folder, rows: list[Row]) -> Markup:
    """The DISPEL panel of ``folder``, or nothing for any other folder."""
    node = getattr(folder, "node", None) if isinstance(folder, Folder) else None
    if node is None or node.template is None or node.selection is None:
        return Markup("")
    template_, level = node.template, len(node.selection.values)
    last = template_.params[-1]
    window = window_form(template_, last, rows) if level == len(template_.params) - 1 else Markup("")
    return render(
        PANEL,
        name=template_.name,
        description=template_.description or "",
        levels=levels(template_, node.selection.texts),
        window=window,
    )


def thumbnail_output(folder) -> str | None:
    """What follows a result's stem to name its thumbnail (``.thumbnail``, ``.png?size=80``), or None."""
    node = getattr(folder, "node", None) if isinstance(folder, Folder) else None
    if node is None or node.template is None or node.selection is None:
        return None
    if len(node.selection.values) != len(node.template.params) - 1:
        return None
    outputs = node.template.outputs
    if THUMBNAIL in outputs and outputs[THUMBNAIL].media_type in BROWSER_IMAGES:
        return f".{THUMBNAIL}"
    preview = outputs.get("png")
    if preview is not None and "size" in preview.uses and any(o.name == "size" for o in node.template.options):
        return f".png?size={THUMBNAIL_PIXELS}"
    return None


def levels(template_, chosen: tuple[str, ...]) -> Markup:
    """One item per parameter: its name, its form, the value chosen above, or "listed here"."""
    items = []
    for index, param in enumerate(template_.params):
        if index < len(chosen):
            state, css = f"= {chosen[index]}", "chosen"
        elif index == len(chosen):
            state, css = "the folders here" if index < len(template_.params) - 1 else "the files here", "here"
        else:
            state, css = "", "below"
        parts = [
            tag("code", param.name),
            tag("span", param.expected, class_="form"),
            tag("span", state, class_="state"),
        ]
        items.append(tag("li", join(parts), class_=css, aria_current="step" if css == "here" else None))
    return join(items)


def window_form(template_, param, rows: list[Row]) -> Markup:
    """The window form of a last level that is a grid, with the layer's extent from its listed windows."""
    if not isinstance(param, GridParam):
        return Markup("")
    windows = [param.parse(row.name.rpartition(".")[0]) for row in rows if not row.is_folder]
    if not windows:
        return Markup("")
    whole = dict(windows[0])
    for low, high in param.intervals:
        whole[low], whole[high] = min(w[low] for w in windows), max(w[high] for w in windows)
    if any(whole[high] - whole[low] > MAX_PREVIEW for low, high in param.intervals):
        whole = windows[0]
    images = [name for name, output in template_.outputs.items() if output.media_type in BROWSER_IMAGES]
    preview = f"./{param.text(whole)}.{images[0]}" if images else ""
    largest = max(max(w.values()) for w in windows)
    fields = join([field_input(field, whole[field], largest) for field in param.fields])
    formats = join(
        [tag("option", name, value=name) for name in (*images, *sorted(set(template_.outputs) - set(images)))]
    )
    return render(
        WINDOW,
        preview=preview
        and tag("img", src=preview, alt="Preview of the whole layer", class_="layer-preview", loading="lazy"),
        literals=json.dumps(param.literals),
        fields_list=json.dumps(list(param.fields)),
        images=json.dumps(images),
        inputs=fields,
        formats=formats,
    )


def field_input(field: str, value: int, largest: int) -> Markup:
    box = tag("input", type="number", name=field, min="0", max=str(largest), value=str(value), required="")
    return tag("label", join([tag("span", field), box]))
