"""One pipeline run: the job a pipeline process receives, and how it runs it.

The server resolves a template and a path into a :class:`Job` (element
names with their arguments already filled in from the parameters, where the
input is, where to write the result). A pipeline process runs the elements
in order, each getting the previous one's result; the last writes the
output file (or returns its bytes).
"""

from __future__ import annotations

import io
import resource
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from davgate.dispel.cache import file_digest
from davgate.dispel.errors import DispelError, ExecutionFailed, OverLimit

if TYPE_CHECKING:
    import tifffile

    from davgate.dispel.elements import Registry

OPEN_TIFFS = 4  # local TIFF files a pipeline process keeps open between jobs
MiB = 1024 * 1024


@dataclass(frozen=True)
class Job:
    key: str
    template: str
    params: dict[str, Any]
    steps: tuple[tuple[str, dict[str, Any]], ...]
    input_rel: str
    input_etag: str
    input_size: int
    input_path: str | None  # the real file, when the source mount is a local folder
    output_path: str
    elements: tuple[tuple[str, str], ...] = ()  # extra elements: (name, "module:attr")


@dataclass(frozen=True)
class Outcome:
    size: int
    digest: str
    seconds: float


class InputFile:
    """The template's input as elements see it.

    ``open()`` gives a seekable binary stream (the caller closes it);
    ``tiff()`` a ``tifffile.TiffFile`` kept for the whole job. ``path`` is
    the real file when there is one (a local source), else None.
    """

    def __init__(
        self,
        rel: str,
        etag: str,
        *,
        path: str | None = None,
        opener: Callable[[], BinaryIO] | None = None,
        tiffs: TiffCache | None = None,
    ) -> None:
        self.rel = rel
        self.etag = etag
        self.path = path
        self.opener = opener
        self.tiffs = tiffs
        self._tiff: tifffile.TiffFile | None = None
        self._owned: list[Any] = []

    def open(self) -> BinaryIO:
        if self.path is not None:
            return open(self.path, "rb")
        if self.opener is None:
            raise ExecutionFailed(f"input {self.rel} cannot be opened")
        return self.opener()

    def tiff(self) -> tifffile.TiffFile:
        if self._tiff is None:
            self._tiff = self._open_tiff()
        return self._tiff

    def _open_tiff(self) -> tifffile.TiffFile:
        import tifffile

        if self.path is not None and self.tiffs is not None:
            return self.tiffs.get(self.path, self.etag)
        stream = self.open()
        self._owned.append(stream)
        tif = tifffile.TiffFile(stream, name=self.rel.rsplit("/", 1)[-1])
        self._owned.append(tif)
        return tif

    def close(self) -> None:
        for thing in reversed(self._owned):
            thing.close()
        self._owned.clear()
        self._tiff = None


class TiffCache:
    """Local TIFF files kept open between jobs of one pipeline process (by path and ETag)."""

    def __init__(self, size: int = OPEN_TIFFS) -> None:
        self.size = size
        self._open: OrderedDict[tuple[str, str], tifffile.TiffFile] = OrderedDict()

    def get(self, path: str, etag: str) -> tifffile.TiffFile:
        import tifffile

        key = (path, etag)
        if key not in self._open:
            self._open[key] = tifffile.TiffFile(path)
            while len(self._open) > self.size:
                self._open.popitem(last=False)[1].close()
        self._open.move_to_end(key)
        return self._open[key]

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()


@dataclass
class Context:
    """What every element gets besides the data: the run's parameters, input and output."""

    template: str
    params: Mapping[str, Any]
    input: InputFile
    output: BinaryIO
    extra: dict[str, Any] = field(default_factory=dict)  # for elements to share state within a run


def run(job: Job, registry: Registry, source: InputFile) -> Outcome:
    """Run the job's elements; the result lands in ``job.output_path``."""
    started = time.monotonic()
    with open(job.output_path, "wb") as out:
        context = Context(job.template, job.params, source, out)
        data: Any = None
        for name, args in job.steps:
            data = call(registry, name, data, context, args)
        if isinstance(data, (bytes, bytearray, memoryview)):
            out.write(data)
        elif data is not None:
            raise ExecutionFailed(
                f"the pipeline of {job.template} ends with {type(data).__name__}, not an encoded file; "
                "end it with an encode_* element"
            )
    with open(job.output_path, "rb") as written:
        digest = file_digest(written)
        size = written.tell()
    return Outcome(size, digest, time.monotonic() - started)


def call(registry: Registry, name: str, data: Any, context: Context, args: Mapping[str, Any]) -> Any:
    element = registry.get(name)
    try:
        return element(data, context, **args)
    except DispelError:
        raise
    except MemoryError:
        raise out_of_memory(f"element {name}") from None
    except Exception as error:
        raise ExecutionFailed(f"element {name} failed: {type(error).__name__}: {error}") from error


def out_of_memory(what: str) -> OverLimit:
    """The 507 of a run that needed more memory than its process may have (``memory_limit``)."""
    limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    if limit == resource.RLIM_INFINITY:
        return OverLimit(f"{what} ran out of memory")
    return OverLimit(
        f"{what} needs more memory than a pipeline process may use ({limit // MiB} MiB, the dispel mount's memory_limit)"
    )


class RemoteReader(io.RawIOBase):
    """A seekable stream whose reads are answered by another process (see executor).

    An answer may be shorter than asked for (the server sends a large read in
    parts); ``io.BufferedReader`` asks again for the rest.
    """

    def __init__(self, fetch: Callable[[int, int], bytes], size: int) -> None:
        self.fetch = fetch
        self.size = size
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), max(0, self.size - self.position))
        if want == 0:
            return 0
        data = self.fetch(self.position, want)
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)
