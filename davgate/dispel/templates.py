"""DISPEL templates: YAML files that say how a path becomes a file.

A template ``<name>.yaml`` in the templates folder declares:

- ``parameters``: ordered, typed (see :mod:`davgate.dispel.params`);
- ``input``: ``path``, a pattern such as ``tiffstore/{subject}/{date}.tif``,
  relative to the dispel mount's ``source`` (or to ``input.mount``);
- ``pipeline``: steps ``{element: name, <arg>: <value>, ...}``; a text
  value ``"{layer}"`` is the parameter's value, ``"{grid.x0}"`` one field
  of it, and any other text has ``{name}`` replaced by the parameter's text;
- ``outputs``: by extension, each with a ``media_type``, the steps that
  encode it (``pipeline``) and whether to gzip it for clients that accept
  it (``gzip``; by default only text-like types: JSON, CSV, ``text/*``,
  ``+json``, ``+xml``. TIFF, PNG and NPY go as they are);
  ``default_output`` serves paths without an extension, ``listed_outputs``
  are the files the browsable tree shows;
- optional ``filename`` (a pattern, for Content-Disposition), ``browse``
  (how the tree lists parameters that are not in the input path:
  ``{list: pages}`` or ``{list: windows, page: <param>, size: [w, h]}``),
  ``time_limit`` (seconds) and ``description``;
- optional ``options``: typed like parameters, each with a ``default``
  (none: not set), given in a result's query and used in steps like
  parameters (``"{colormap}"``).

The template's definition digest is part of every cache key, so editing the
file makes new results; :class:`TemplateSet` notices edits by ``stat``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from davgate.dispel.elements import Registry
from davgate.dispel.errors import TemplateInvalid, UnknownTemplate
from davgate.dispel.params import (
    GridParam,
    Option,
    Param,
    Selection,
    TemplateError,
    option_from_spec,
    param_from_spec,
    parse_options,
    parse_segments,
)

log = logging.getLogger("davgate.dispel.templates")

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
REF = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\}")
SUFFIXES = (".yaml", ".yml")
TOP_KEYS = {
    "description", "parameters", "input", "pipeline", "outputs", "default_output",
    "listed_outputs", "filename", "browse", "time_limit", "options",
}  # fmt: skip
TEXT_LIKE = frozenset(
    {"application/json", "application/xml", "application/csv", "application/x-ndjson", "application/yaml"}
)
Step = tuple[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Output:
    name: str
    media_type: str
    steps: tuple[Step, ...]
    gzip: bool

    @functools.cached_property
    def uses(self) -> frozenset[str]:
        """The names this output's steps refer to (its options among them)."""
        return references(self.steps)


def references(steps: tuple[Step, ...]) -> frozenset[str]:
    found: set[str] = set()

    def visit(value: Any) -> None:
        if isinstance(value, str):
            found.update(match.group(1) for match in REF.finditer(value))
        elif isinstance(value, list):
            for item in value:
                visit(item)
        elif isinstance(value, Mapping):
            for item in value.values():
                visit(item)

    for _, args in steps:
        visit(args)
    return frozenset(found)


@dataclass(frozen=True)
class BrowseHint:
    """How the tree lists a parameter from the input's header: TIFF pages, windows, or a tile pyramid's levels."""

    kind: str  # "pages" | "windows" | "zooms" | "columns" | "rows"
    page: str | None = None  # the parameter holding the page index
    size: tuple[int, int] | None = None  # windows: tile width and height; a pyramid's: its tile size twice
    zoom: str | None = None  # columns and rows: the parameter holding the zoom level


PYRAMID_KINDS = ("zooms", "columns", "rows")


@dataclass(frozen=True)
class Template:
    name: str
    params: tuple[Param, ...]
    input_path: str
    input_mount: str | None
    steps: tuple[Step, ...]
    outputs: Mapping[str, Output]
    default_output: str
    listed_outputs: tuple[str, ...]
    digest: str
    modified: float
    description: str = ""
    filename: str | None = None
    browse: Mapping[str, BrowseHint] = field(default_factory=dict)
    time_limit: float | None = None
    options: tuple[Option, ...] = ()

    @functools.cached_property
    def usage(self) -> str:
        parts = "/".join(p.placeholder for p in self.params)
        return f"/dispel/{self.name}/{parts}[{'|'.join('.' + o for o in self.outputs)}]"

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    def index(self, name: str) -> int:
        return next(i for i, p in enumerate(self.params) if p.name == name)

    def parse(self, segments: list[str], query: str = "") -> Selection:
        """The selection of a path; a result's options come from ``query`` (a folder's query is not read)."""
        selection = parse_segments(self.params, tuple(self.outputs), self.default_output, segments, self.usage)
        if selection.output is None:
            return selection
        return self.result(selection, selection.output, query)

    def result(self, selection: Selection, output: str, query: str = "") -> Selection:
        """The result ``output`` of a full selection, with the options of ``query`` (or their defaults)."""
        used = self.outputs[output].uses | self.uses
        chosen = [option for option in self.options if option.name in used]
        return replace(selection, output=output, options=parse_options(chosen, query, output))

    @functools.cached_property
    def uses(self) -> frozenset[str]:
        """The names the main pipeline refers to."""
        return references(self.steps)

    def texts(self, selection: Selection) -> dict[str, str]:
        return {p.name: t for p, t in zip(self.params, selection.texts)} | selection.option_texts()

    def input_rel(self, selection: Selection) -> str:
        return fill(self.input_path, self.texts(selection), {})

    def job_steps(self, selection: Selection) -> tuple[tuple[str, dict[str, Any]], ...]:
        """The pipeline and the chosen output's steps, with parameters filled in."""
        assert selection.output is not None
        values, texts = selection.named(self.params), self.texts(selection)
        steps = (*self.steps, *self.outputs[selection.output].steps)
        return tuple((name, resolve(args, texts, values)) for name, args in steps)

    def file_name(self, selection: Selection) -> str | None:
        if self.filename is None or selection.output is None:
            return None
        return f"{fill(self.filename, self.texts(selection), {})}.{selection.output}"


def fill(pattern: str, texts: Mapping[str, str], values: Mapping[str, Any]) -> str:
    def one(match: re.Match[str]) -> str:
        name, part = match.group(1), match.group(2)
        return str(values[name][part]) if part else texts[name]

    return REF.sub(one, pattern)


def resolve(value: Any, texts: Mapping[str, str], values: Mapping[str, Any]) -> Any:
    """A step argument with its parameter references filled in."""
    if isinstance(value, str):
        match = REF.fullmatch(value)
        if match:
            found = values[match.group(1)]
            return found[match.group(2)] if match.group(2) else found
        return fill(value, texts, values)
    if isinstance(value, list):
        return [resolve(v, texts, values) for v in value]
    if isinstance(value, Mapping):
        return {k: resolve(v, texts, values) for k, v in value.items()}
    return value


# --- loading -----------------------------------------------------------------------


def load_template(path: Path, registry: Registry) -> Template:
    """Read and check one template file; raises TemplateError naming the key."""
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise TemplateError("", f"not valid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(data, Mapping):
        raise TemplateError("", "a template is a mapping")
    unknown = sorted(set(map(str, data)) - TOP_KEYS)
    if unknown:
        raise TemplateError(unknown[0], f"unknown key (allowed: {', '.join(sorted(TOP_KEYS))})")
    params = load_params(data.get("parameters"))
    options = load_options(data.get("options", []), {p.name for p in params})
    names = {p.name: p for p in params}
    input_path, input_mount = load_input(data.get("input"), names)
    names |= {o.name: o.param for o in options}  # steps and outputs may use options too
    steps = load_steps(data.get("pipeline", []), "pipeline", names, registry)
    outputs = load_outputs(data.get("outputs"), names, registry)
    default = data.get("default_output", next(iter(outputs)))
    if default not in outputs:
        raise TemplateError("default_output", f"expected one of {', '.join(outputs)}, got {default!r}")
    listed = data.get("listed_outputs", [default] + (["png"] if "png" in outputs and default != "png" else []))
    if not isinstance(listed, list) or any(o not in outputs for o in listed):
        raise TemplateError("listed_outputs", f"expected a list of outputs among {', '.join(outputs)}")
    filename = data.get("filename")
    if filename is not None:
        check_refs(filename, names, "filename")
    return Template(
        name=template_name(path),
        params=params,
        input_path=input_path,
        input_mount=input_mount,
        steps=steps,
        outputs=outputs,
        default_output=default,
        listed_outputs=tuple(listed),
        digest=hashlib.sha256(raw).hexdigest(),
        modified=path.stat().st_mtime,
        description=str(data.get("description", "")),
        filename=filename,
        browse=load_browse(data.get("browse", {}), names),
        time_limit=load_time_limit(data.get("time_limit")),
        options=options,
    )


def template_name(path: Path) -> str:
    return path.name[: -len(path.suffix)]


def load_params(specs: Any) -> tuple[Param, ...]:
    if not isinstance(specs, list) or not specs:
        raise TemplateError("parameters", "expected a non-empty list of parameters")
    params = tuple(param_from_spec(spec, f"parameters[{i}]") for i, spec in enumerate(specs))
    seen: set[str] = set()
    for i, param in enumerate(params):
        if param.name in seen:
            raise TemplateError(f"parameters[{i}].name", f"{param.name!r} is declared twice")
        seen.add(param.name)
    return params


def load_options(specs: Any, taken: set[str]) -> tuple[Option, ...]:
    if not isinstance(specs, list):
        raise TemplateError("options", "expected a list of options")
    options = tuple(option_from_spec(spec, f"options[{i}]") for i, spec in enumerate(specs))
    for i, option in enumerate(options):
        if option.name in taken:
            raise TemplateError(f"options[{i}].name", f"{option.name!r} is declared twice")
        taken = taken | {option.name}
    return options


def load_input(spec: Any, names: Mapping[str, Param]) -> tuple[str, str | None]:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("path"), str):
        raise TemplateError("input", "expected a mapping with path (and optionally mount)")
    if set(spec) - {"path", "mount"}:
        raise TemplateError("input", "allowed keys: path, mount")
    path = spec["path"].strip("/")
    check_refs(path, names, "input.path", fields=False)
    if any(s in ("", ".", "..") for s in path.split("/")):
        raise TemplateError("input.path", "a relative path without empty, '.' or '..' segments")
    mount = spec.get("mount")
    if mount is not None and (not isinstance(mount, str) or not mount.startswith("/")):
        raise TemplateError("input.mount", f"expected a mount path such as /data, got {mount!r}")
    return path, mount


def check_refs(text: str, names: Mapping[str, Param], key: str, *, fields: bool = True) -> None:
    for match in REF.finditer(text):
        name, part = match.group(1), match.group(2)
        if name not in names:
            raise TemplateError(key, f"{{{name}}} is not a parameter (known: {', '.join(names)})")
        if part and (not fields or not isinstance(names[name], GridParam) or part not in names[name].fields):  # type: ignore[attr-defined]
            raise TemplateError(key, f"{{{name}.{part}}} is not a field of parameter {name}")


def check_arg_refs(value: Any, names: Mapping[str, Param], key: str) -> None:
    if isinstance(value, str):
        check_refs(value, names, key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_arg_refs(item, names, f"{key}[{i}]")
    elif isinstance(value, Mapping):
        for k, item in value.items():
            check_arg_refs(item, names, f"{key}.{k}")


def load_steps(specs: Any, key: str, names: Mapping[str, Param], registry: Registry) -> tuple[Step, ...]:
    if not isinstance(specs, list):
        raise TemplateError(key, "expected a list of steps {element: name, ...}")
    steps = []
    for i, spec in enumerate(specs):
        where = f"{key}[{i}]"
        if not isinstance(spec, Mapping) or not isinstance(spec.get("element"), str):
            raise TemplateError(where, "expected a mapping with element: <name>")
        name = spec["element"]
        args = {str(k): v for k, v in spec.items() if k != "element"}
        check_arg_refs(args, names, where)
        try:
            registry.check_args(name, args)
        except LookupError as error:
            raise TemplateError(f"{where}.element", str(error)) from None
        except TypeError as error:
            raise TemplateError(where, f"element {name}: {error}") from None
        steps.append((name, args))
    return tuple(steps)


def load_outputs(specs: Any, names: Mapping[str, Param], registry: Registry) -> dict[str, Output]:
    if not isinstance(specs, Mapping) or not specs:
        raise TemplateError(
            "outputs", "expected a mapping of outputs by extension, e.g. tif: {media_type: image/tiff, ...}"
        )
    outputs = {}
    for name, spec in specs.items():
        key = f"outputs.{name}"
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]+", name):
            raise TemplateError(key, "an output is named by its extension: lower-case letters and digits")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("media_type"), str):
            raise TemplateError(key, "expected a mapping with media_type")
        if set(spec) - {"media_type", "pipeline", "gzip"}:
            raise TemplateError(key, "allowed keys: media_type, pipeline, gzip")
        gzip = spec.get("gzip", text_like(spec["media_type"]))
        if not isinstance(gzip, bool):
            raise TemplateError(f"{key}.gzip", "expected true or false")
        steps = load_steps(spec.get("pipeline", []), f"{key}.pipeline", names, registry)
        outputs[name] = Output(name, spec["media_type"], steps, gzip)
    return outputs


def text_like(media_type: str) -> bool:
    """True for media types that gzip shrinks well: text, JSON, CSV, XML."""
    base = media_type.split(";", 1)[0].strip().lower()
    return base.startswith("text/") or base in TEXT_LIKE or base.endswith(("+json", "+xml"))


def load_browse(spec: Any, names: Mapping[str, Param]) -> dict[str, BrowseHint]:
    if not isinstance(spec, Mapping):
        raise TemplateError("browse", "expected a mapping of parameter: {list: pages | windows}")
    hints = {}
    for name, hint in spec.items():
        key = f"browse.{name}"
        if name not in names:
            raise TemplateError(key, f"{name!r} is not a parameter")
        if not isinstance(hint, Mapping) or hint.get("list") not in ("pages", "windows", *PYRAMID_KINDS):
            raise TemplateError(f"{key}.list", "expected pages, windows, zooms, columns or rows")
        if hint["list"] == "windows":
            hints[name] = load_windows_hint(hint, names, key)
        elif hint["list"] in PYRAMID_KINDS:
            hints[name] = load_pyramid_hint(hint, names, key)
        else:
            hints[name] = BrowseHint("pages")
    return hints


def load_pyramid_hint(hint: Mapping[str, Any], names: Mapping[str, Param], key: str) -> BrowseHint:
    """A pyramid's zoom levels, or the columns or rows of tiles at a zoom: {list, page, size[, zoom]}."""
    kind, page, zoom, size = hint["list"], hint.get("page"), hint.get("zoom"), hint.get("size")
    if page is not None and page not in names:
        raise TemplateError(f"{key}.page", f"{page!r} is not a parameter")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise TemplateError(f"{key}.size", "expected the pyramid's tile size in pixels, e.g. 256")
    if kind != "zooms" and zoom not in names:
        raise TemplateError(f"{key}.zoom", "expected the parameter that holds the zoom level")
    return BrowseHint(kind, page, (size, size), zoom)


def load_windows_hint(hint: Mapping[str, Any], names: Mapping[str, Param], key: str) -> BrowseHint:
    param = names[key.split(".", 1)[1]]
    if not isinstance(param, GridParam) or not {"x0", "x1", "y0", "y1"} <= set(param.fields):
        raise TemplateError(key, "windows are listed for a grid parameter with x0, x1, y0 and y1")
    page = hint.get("page")
    if page is not None and page not in names:
        raise TemplateError(f"{key}.page", f"{page!r} is not a parameter")
    size = hint.get("size")
    if size is not None:
        if isinstance(size, int) and not isinstance(size, bool):
            size = [size, size]
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
            raise TemplateError(f"{key}.size", "expected a tile size in pixels: 1024 or [width, height]")
        size = (size[0], size[1])
    return BrowseHint("windows", page, size)


def load_time_limit(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise TemplateError("time_limit", f"expected seconds (a positive number), got {value!r}")
    return float(value)


class TemplateSet:
    """The templates of one folder, reloaded when their files change."""

    def __init__(self, folder: Path, registry: Registry, on_change: Callable[[Template], object] | None = None) -> None:
        self.folder = Path(folder)
        self.registry = registry
        self.on_change = on_change
        self._loaded: dict[str, tuple[tuple[int, int, int], Template | TemplateError]] = {}

    def names(self) -> list[str]:
        """Names of the templates that load (broken ones are logged, not listed)."""
        found = []
        for entry in sorted(os.scandir(self.folder), key=lambda e: e.name):
            stem, suffix = os.path.splitext(entry.name)
            usable = suffix in SUFFIXES and NAME.fullmatch(stem) and entry.is_file()
            if usable and isinstance(self._load(stem, Path(entry.path)), Template):
                found.append(stem)
        return found

    def get(self, name: str) -> Template:
        """The template called ``name``: UnknownTemplate (404) or TemplateInvalid (500) if unusable."""
        found = self.stat(name) if NAME.fullmatch(name) else None
        if found is None:
            raise UnknownTemplate(f"unknown template '{name}'")
        result = self._load(name, *found)
        if isinstance(result, TemplateError):
            raise TemplateInvalid(f"template '{name}' is invalid: {result}")
        return result

    def stat(self, name: str) -> tuple[Path, os.stat_result] | None:
        """The template file of ``name`` and its stat (one system call when it exists)."""
        for suffix in SUFFIXES:
            path = self.folder / f"{name}{suffix}"
            try:
                st = path.stat()
            except (FileNotFoundError, NotADirectoryError):
                continue
            if stat.S_ISREG(st.st_mode):
                return path, st
        return None

    def _load(self, name: str, path: Path, st: os.stat_result | None = None) -> Template | TemplateError:
        try:
            st = st or path.stat()
        except FileNotFoundError:
            return TemplateError("", "the file is gone")
        signature = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._loaded.get(name)
        if cached is not None and cached[0] == signature:
            return cached[1]
        try:
            result: Template | TemplateError = load_template(path, self.registry)
        except TemplateError as error:
            result = TemplateError(error.key, f"{error.problem} ({path})")
            log.error("template %s: %s", name, result)
        except OSError as error:
            result = TemplateError("", f"cannot read {path}: {error.strerror}")
        self._loaded[name] = (signature, result)
        old = cached[1] if cached else None
        changed = not isinstance(old, Template) or (isinstance(result, Template) and old.digest != result.digest)
        if isinstance(result, Template) and self.on_change is not None and changed:
            self.on_change(result)
        return result
