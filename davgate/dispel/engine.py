"""The DISPEL engine: from a template and parameters to a cached result.

It finds a template's input on the source mount, checks the parameters
against what exists (folders, files, TIFF headers), computes the cache key
(template definition + parameters + the input's ETag + the output), and
returns the cached blob, running the pipeline once if there is none. It
also answers the browsable tree's questions (which values exist at each
level) from listings and headers only.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from davgate import errors
from davgate.dispel import pyramid, sizes
from davgate.dispel.cache import Blob, DispelCache, file_digest
from davgate.dispel.counting import EXECUTIONS, counter_name
from davgate.dispel.errors import (
    DispelError,
    ExecutionFailed,
    InputNotFound,
    OutOfBounds,
)
from davgate.dispel.executor import STARTUP_TIMEOUT, Executor
from davgate.dispel.flight import SingleFlight
from davgate.dispel.params import GridParam, IntegerParam, Param, Selection
from davgate.dispel.pipeline import Job
from davgate.dispel.templates import PYRAMID_KINDS, REF, BrowseHint, Template, TemplateSet
from davgate.dispel.tiff import NotATiff, TiffHeader, read_header
from davgate.providers import Entry, Mount
from davgate.state import CacheEntry, StateStore

if TYPE_CHECKING:
    from collections.abc import Mapping

KEY_VERSION = 1  # bump when built-in elements change what they make
HEADERS_KEPT = 512
MAX_LISTED_INTEGERS = 1000


@dataclass(frozen=True)
class Located:
    """Where a selection points on the source: the input file once it is determined."""

    mount: Mount
    rel: str  # the input path, or the deepest determined folder of it
    entry: Entry | None  # the input file's (or that folder's) entry
    complete: bool  # True when rel is the input file itself


class Engine:
    def __init__(
        self,
        *,
        templates: TemplateSet,
        lookup: Callable[[str], Mount | None],
        source: str,
        store: StateStore,
        cache: DispelCache,
        executor: Executor,
        time_limit: float,
        tile_size: int,
        elements: Mapping[str, str] | None = None,
    ) -> None:
        self.templates = templates
        self.lookup = lookup
        self.source = source
        self.store = store
        self.cache = cache
        self.executor = executor
        self.flight = SingleFlight(store)
        self.default_time_limit = time_limit
        self.tile_size = tile_size
        self.elements = tuple(sorted((elements or {}).items()))
        self._headers: OrderedDict[tuple[str, str, str], TiffHeader] = OrderedDict()
        self._lock = threading.Lock()

    # --- where things are -------------------------------------------------------------

    def source_mount(self, template: Template) -> Mount:
        path = template.input_mount or self.source
        mount = self.lookup(path)
        if mount is None:
            raise ExecutionFailed(f"template {template.name} reads from {path}, which is not a mount")
        return mount

    def locate(self, template: Template, selection: Selection) -> Located:
        """Check that the input (or the folder leading to it) exists; 404 if not."""
        mount = self.source_mount(template)
        rel, complete = determined_path(template, len(selection.values), selection.texts)
        entry = mount.stat(rel) if rel else None
        if rel and (entry is None or entry.is_folder == complete):
            raise InputNotFound(f"input not found: {rel}")
        located = Located(mount, rel, entry, complete)
        self.check_bounds(template, selection, located)
        return located

    def header(self, located: Located) -> TiffHeader:
        assert located.entry is not None
        key = (located.mount.path, located.rel, located.entry.etag)
        with self._lock:
            header = self._headers.get(key)
            if header is not None:
                self._headers.move_to_end(key)
                return header
        try:
            with located.mount.open_read(located.rel) as stream:
                header = read_header(stream)
        except NotATiff as error:
            raise ExecutionFailed(f"input {located.rel} is not a TIFF davgate can read: {error}") from None
        except errors.NotFound:
            raise InputNotFound(f"input not found: {located.rel}") from None
        with self._lock:
            self._headers[key] = header
            while len(self._headers) > HEADERS_KEPT:
                self._headers.popitem(last=False)
        return header

    def check_bounds(self, template: Template, selection: Selection, located: Located) -> None:
        """Parameters listed from the header (pages, windows) must lie inside it: 400 if not."""
        named = selection.named(template.params)
        for name, hint in template.browse.items():
            if name not in named or not located.complete:
                continue
            pages = self.header(located).pages
            if hint.kind == "pages":
                if not 0 <= named[name] < len(pages):
                    raise OutOfBounds(
                        f"parameter '{name}': {named[name]} is out of bounds; the input has {len(pages)} pages (0-{len(pages) - 1})"
                    )
                continue
            page_index = named.get(hint.page, 0) if hint.page else 0
            if not 0 <= page_index < len(pages) or hint.kind in PYRAMID_KINDS:
                continue  # a pyramid's tiles are checked where they are made (read_tile): 404 outside
            page, window = pages[page_index], named[name]
            if window["x1"] > page.width or window["y1"] > page.height:
                text = template.param(name).text(window)
                raise OutOfBounds(
                    f"parameter '{name}': window {text} exceeds the {page.width} x {page.height} pixels of page {page_index}"
                )

    # --- what the tree lists ----------------------------------------------------------

    def values(self, template: Template, selection: Selection, located: Located) -> list[tuple[str, Entry | None]]:
        """The values that exist for the next parameter after ``selection``.

        Each is a canonical text and, for a parameter of the input path, the
        source entry it was found as.
        """
        index = len(selection.values)
        param = template.params[index]
        segment = segment_of(template, param.name)
        found: dict[str, Entry | None]
        if segment is not None:
            found = dict(self._listed_values(template, selection, located, index, segment))
        elif param.name in template.browse:
            found = dict.fromkeys(self._header_values(template, selection, located, param))
        else:
            found = dict.fromkeys(enumerate_param(param))
        return sorted(found.items(), key=lambda item: sort_key(param, item[0]))

    def _listed_values(
        self, template: Template, selection: Selection, located: Located, index: int, segment: int
    ) -> list[tuple[str, Entry]]:
        segments = template.input_path.split("/")
        done = determined_segments(template, index, selection.texts)
        if len(done) != segment:
            return []  # an earlier segment of the path still depends on a later parameter
        folder = "/".join(done)
        pattern = segment_regex(template, segments[segment], index, selection.texts)
        last = segment == len(segments) - 1
        param = template.params[index]
        found = []
        for entry in located.mount.list(folder):
            match = pattern.fullmatch(entry.name)
            if match and entry.is_folder != last:
                try:
                    found.append((param.text(param.parse(match.group("value"))), entry))
                except DispelError:
                    continue  # a name that is not a valid value is not listed
        return found

    def _header_values(self, template: Template, selection: Selection, located: Located, param: Param) -> list[str]:
        if not located.complete:
            return []
        hint = template.browse[param.name]
        pages = self.header(located).pages
        if hint.kind == "pages":
            return [param.text(i) for i in range(len(pages))]
        named = selection.named(template.params)
        page_index = named.get(hint.page, 0) if hint.page else 0
        if not 0 <= page_index < len(pages):
            return []
        page = pages[page_index]
        if hint.kind in PYRAMID_KINDS:
            return [param.text(v) for v in pyramid_values(hint, page.width, page.height, named)]
        width, height = hint.size or (self.tile_size, self.tile_size)
        return [
            param.text({"x0": x, "x1": min(x + width, page.width), "y0": y, "y1": min(y + height, page.height)})
            for y in range(0, page.height, height)
            for x in range(0, page.width, width)
        ]

    # --- results ----------------------------------------------------------------------

    def time_limit(self, template: Template) -> float:
        return template.time_limit or self.default_time_limit

    def key(self, template: Template, selection: Selection, located: Located) -> str:
        assert located.entry is not None
        material = [
            KEY_VERSION, template.name, template.digest, list(selection.texts), selection.output,
            [text for _, _, text in selection.options],
            located.mount.path, located.rel, located.entry.etag, self.elements,
        ]  # fmt: skip
        return hashlib.sha256(json.dumps(material).encode()).hexdigest()

    def cached_size(self, key: str) -> int | None:
        """The size of a cached result, from the index (no backend call: listings ask for many)."""
        entry = self.store.cache_get(key)
        return entry.size if entry else None

    def predicted_size(self, template: Template, selection: Selection, located: Located) -> int | None:
        """A result's size before it is made, where its output allows it (:mod:`davgate.dispel.sizes`)."""
        if not located.complete or located.entry is None:
            return None
        return sizes.predicted(template.job_steps(selection), self.header(located))

    def result(self, template: Template, selection: Selection, located: Located) -> Blob:
        """The result's blob, open: from the cache (a hit), or made once (single-flight; a miss)."""
        key = self.key(template, selection, located)
        blob = self.cache.open(key)
        if blob is not None:
            self.cache.record_hit(key, template.name)
            return blob
        self.cache.record_miss(template.name)
        limit = self.time_limit(template)
        return self.flight.run(
            key,
            ready=lambda: self.cache.open(key),  # made by the run this request joined
            produce=lambda: self._execute(template, selection, located, key, limit),
            wait=2 * limit + STARTUP_TIMEOUT + 5,
            lease=2 * limit + STARTUP_TIMEOUT,
        )

    def _cached(self, key: str) -> Blob | None:
        blob = self.cache.open(key)
        if blob is not None:
            self.cache.record_hit(key)
        return blob

    def _execute(self, template: Template, selection: Selection, located: Located, key: str, limit: float) -> Blob:
        assert located.entry is not None
        staged = self.cache.backend.stage()
        job = Job(
            key=key,
            template=template.name,
            params=selection.named(template.params),
            steps=template.job_steps(selection),
            input_rel=located.rel,
            input_etag=located.entry.etag,
            input_size=located.entry.size,
            input_path=local_path(located.mount, located.rel),
            output_path=staged,
            elements=self.elements,
        )
        try:
            outcome = self.executor.run(
                job,
                time_limit=limit,
                reader=lambda: located.mount.open_read(located.rel),
                started=lambda: self.store.add_counter(counter_name(template.name, EXECUTIONS)),
            )
        except BaseException:
            self.cache.backend.discard(staged)
            raise
        now = time.time()
        entry = CacheEntry(
            key, template.name, template.digest, params_text(selection), outcome.size, outcome.digest, now, 0, now
        )
        try:
            return self.cache.put(entry, staged)
        except OSError as error:
            raise ExecutionFailed(
                f"the result of {template.name} cannot be stored in the cache: {error.strerror}"
            ) from error

    def gzipped(self, template: Template, selection: Selection, blob: Blob) -> Blob:
        """The gzip encoding of a result, made once and cached beside it."""
        key = blob.key + ".gz"

        def produce() -> Blob:
            staged = self.cache.backend.stage()
            try:
                blob.file.seek(0)
                with (
                    open(staged, "wb") as raw,
                    gzip.GzipFile("", "wb", 6, raw, mtime=0) as out,
                ):  # no name, no time: stable
                    while chunk := blob.file.read(1024 * 1024):
                        out.write(chunk)
                with open(staged, "rb") as written:
                    digest = file_digest(written)
                    size = written.tell()
            except BaseException:
                self.cache.backend.discard(staged)
                raise
            now = time.time()
            entry = CacheEntry(
                key, template.name, template.digest, params_text(selection) + ".gz", size, digest, now, 0, now
            )
            return self.cache.put(entry, staged)

        return self.flight.run(key, ready=lambda: self._cached(key), produce=produce, wait=60.0, lease=60.0)

    def close(self) -> None:
        self.executor.close()
        self.cache.close()


def params_text(selection: Selection) -> str:
    given = "&".join(f"{name}={text}" for name, _, text in selection.options if text)
    return "/".join(selection.texts) + f".{selection.output}" + (f"?{given}" if given else "")


def determined_path(template: Template, fixed: int, texts: tuple[str, ...]) -> tuple[str, bool]:
    """The input path as far as the first ``fixed`` parameters determine it, and whether that is all of it."""
    done = determined_segments(template, fixed, texts)
    return "/".join(done), len(done) == template.input_path.count("/") + 1


def determined_segments(template: Template, fixed: int, texts: tuple[str, ...]) -> list[str]:
    """The leading input path segments that the first ``fixed`` parameters fill in."""
    names = {p.name: t for p, t in zip(template.params[:fixed], texts)}
    done = []
    for segment in template.input_path.split("/"):
        if any(m.group(1) not in names for m in REF.finditer(segment)):
            break
        done.append(REF.sub(lambda m: names[m.group(1)], segment))
    return done


def segment_of(template: Template, name: str) -> int | None:
    for i, segment in enumerate(template.input_path.split("/")):
        if any(m.group(1) == name for m in REF.finditer(segment)):
            return i
    return None


def segment_regex(template: Template, segment: str, index: int, texts: tuple[str, ...]) -> re.Pattern[str]:
    """A pattern for names of one input path segment; group ``value`` is parameter ``index``."""
    fixed = {p.name: t for p, t in zip(template.params[:index], texts)}
    wanted = template.params[index].name
    parts, pos, seen = [], 0, False
    for match in REF.finditer(segment):
        parts.append(re.escape(segment[pos : match.start()]))
        name = match.group(1)
        if name in fixed:
            parts.append(re.escape(fixed[name]))
        elif name == wanted and not seen:
            parts.append(f"(?P<value>{template.param(name).regex})")
            seen = True
        else:
            parts.append(f"(?:{template.param(name).regex})")
        pos = match.end()
    parts.append(re.escape(segment[pos:]))
    return re.compile("".join(parts))


def enumerate_param(param: Param) -> list[str]:
    values = getattr(param, "values", None)
    if values is not None:
        return list(values)
    if isinstance(param, IntegerParam):
        low, high = param.minimum, param.maximum
        if low is not None and high is not None and high - low < MAX_LISTED_INTEGERS:
            return [str(i) for i in range(low, high + 1)]
    return []


def sort_key(param: Param, text: str) -> tuple[Any, ...]:
    if isinstance(param, IntegerParam):
        return (int(text),)
    if isinstance(param, GridParam):
        value = param.parse(text)
        return tuple(value[f] for f in sorted(param.fields, key=lambda f: (f[0] != "y", f)))
    return (len(text), text) if text.isdigit() else (0, text)


def local_path(mount: Mount, rel: str) -> str | None:
    """The real file behind ``rel`` when the mount is a local folder (a fast path)."""
    from davgate.providers.local import LocalMount

    if not isinstance(mount, LocalMount):
        return None
    try:
        return mount.resolve(rel)
    except errors.StorageError:
        return None


def pyramid_values(hint: BrowseHint, width: int, height: int, named: Mapping[str, Any]) -> range:
    """The zoom levels of a page's pyramid, or its columns or rows of tiles at the chosen zoom."""
    assert hint.size is not None
    size = hint.size[0]
    top = pyramid.deepest(width, height, size)
    if hint.kind == "zooms":
        return range(top + 1)
    z = named.get(hint.zoom or "", 0)
    if not 0 <= z <= top:
        return range(0)
    columns, rows = pyramid.grid(width, height, size, z)
    return range(columns if hint.kind == "columns" else rows)
