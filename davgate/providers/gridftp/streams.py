"""Ranged reads and atomic uploads over gfal2 file handles.

A read is a ``pread`` at the reader's position, so a Range GET asks the
server for just its bytes. An upload writes a temporary name beside the
target (hidden from listings, refused as a name) and renames it over the
target on commit; gfal2 closes a handle only when the object goes, so the
temporary file's size is checked after closing: a short write is never
committed.
"""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Callable
from typing import Any

from davgate import errors
from davgate.providers import SizedReader, Upload
from davgate.providers.gridftp.remote import translated

TEMP_PREFIX = ".davgate-upload-"


class GridftpReader(SizedReader):
    """A seekable stream of one remote file of known ``size``."""

    def __init__(self, handle: Any, size: int, rel: str) -> None:
        super().__init__()
        self.handle, self.size, self.rel, self.position = handle, size, rel, 0

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self.size - self.position)
        if wanted <= 0:
            return 0
        with translated(self.rel):
            data = self.handle.pread_bytes(self.position, wanted)
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)

    def close(self) -> None:
        self.handle = None
        super().close()


def temp_url_beside(url: str) -> str:
    return posixpath.join(posixpath.dirname(url), f"{TEMP_PREFIX}{uuid.uuid4().hex}")


class GridftpUpload(Upload):
    """Writes ``temp`` and renames it to ``target`` on commit; ``context`` is the creating thread's."""

    def __init__(self, context: Any, target: str, rel: str, size_of: Callable[[str], int]) -> None:
        self.context, self.target, self.rel, self.size_of = context, target, rel, size_of
        self.temp = temp_url_beside(target)
        self.written = 0
        with translated(rel):
            self.handle: Any = context.open(self.temp, "w")

    def write(self, data: bytes) -> int:
        if self.handle is None:
            raise ValueError("write to a finished upload")
        with translated(self.rel):
            self.handle.write(bytes(data))
        self.written += len(data)
        return len(data)

    def commit(self) -> None:
        self.handle = None  # closes the remote file
        with translated(self.rel):
            if self.size_of(self.temp) != self.written:
                raise errors.BadGateway(self.rel, "the upload arrived incomplete")
            self.context.rename(self.temp, self.target)
        self.temp = ""

    def abort(self) -> None:
        self.handle = None
        if self.temp:
            try:
                self.context.unlink(self.temp)
            except Exception:  # noqa: BLE001 - the server may be gone; a later listing sweeps the name
                pass
            self.temp = ""
