"""Storage providers: the backends a mount can be (local folder, SFTP, S3, GridFTP, ...).

A provider is a :class:`Mount` subclass. It implements a small required
core (stat, list, open for reading, atomic upload, make and remove folders,
remove files); everything WebDAV needs on top of that (resources, ETags,
Range, COPY/MOVE across mounts, error mapping) is shared in
:mod:`davgate.providers.resources`. Optional methods are fast paths switched
on by overriding them (server-side copy and rename, free space).

Providers are found by short name among the built-ins, or as entry points in
the ``davgate.providers`` group (``name = package.module:Class``).
"""

from __future__ import annotations

import abc
import functools
import importlib
import io
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any, BinaryIO

from davgate import errors

ENTRY_POINT_GROUP = "davgate.providers"
BUILT_IN = {
    "local": "davgate.providers.local:LocalMount",
    "s3": "davgate.providers.s3:S3Mount",
    "gridftp": "davgate.providers.gridftp:GridftpMount",
    "sftp": "davgate.providers.sftp:SftpMount",
    "dispel": "davgate.dispel.mount:DispelMount",
}


@dataclass(frozen=True)
class Entry:
    """What a backend knows about one file or folder, from one call."""

    name: str
    is_folder: bool
    size: int = 0
    modified: float = 0.0
    etag: str = ""
    created: float | None = None
    content_type: str | None = None

    def guessed_type(self) -> str:
        if self.content_type:
            return self.content_type
        dot = self.name.find(".", 1)
        return type_of_suffixes(self.name[dot:] if dot > 0 else "")


@functools.lru_cache(maxsize=4096)
def type_of_suffixes(suffixes: str) -> str:
    """The media type of a file name ending in ``suffixes`` (``.tar.gz``); only they decide it."""
    return mimetypes.guess_type("file" + suffixes)[0] or "application/octet-stream"


class SizedReader(io.RawIOBase):
    """A readable, seekable stream of ``size`` bytes: subclasses read at ``position`` and move it."""

    size: int
    position: int = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self.position = base + offset
        return self.position


class Upload(abc.ABC):
    """A file being written: invisible until :meth:`commit`, gone after :meth:`abort`."""

    @abc.abstractmethod
    def write(self, data: bytes) -> int: ...

    @abc.abstractmethod
    def commit(self) -> Entry | None:
        """Make the written bytes the file's content, atomically; return what was written.

        The entry MUST describe the bytes this upload wrote (their size and
        the ETag storage gives them), as the upload itself learnt it: never
        from a look at the target after the commit, where another request may
        already have moved, removed or replaced the file. None means the
        upload cannot tell; a PUT then answers without an ETag.
        """

    @abc.abstractmethod
    def abort(self) -> None:
        """Discard everything written; the old content (or nothing) remains."""

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        """WsgiDAV closes before it commits or aborts; nothing to do here."""


class Mount(abc.ABC):
    """A storage backend mounted at ``path`` of the namespace.

    Every ``rel`` argument is a path relative to the mount, with segments
    joined by '/' and no leading slash ("" is the mount's root). Methods
    raise :mod:`davgate.errors` exceptions, never their library's own.
    """

    readonly: bool = False

    def __init__(self, path: str, options: Any) -> None:
        self.path = path
        self.options = options
        self.readonly = bool(getattr(options, "readonly", False))

    # -- required -------------------------------------------------------
    @abc.abstractmethod
    def stat(self, rel: str) -> Entry | None:
        """The entry at ``rel``, or None if nothing is there."""

    @abc.abstractmethod
    def list(self, rel: str) -> list[Entry]:
        """All members of the folder ``rel``, from one backend call."""

    @abc.abstractmethod
    def open_read(self, rel: str) -> BinaryIO:
        """A seekable binary stream of the file's content."""

    @abc.abstractmethod
    def open_upload(self, rel: str) -> Upload:
        """Start an atomic upload that replaces the file ``rel`` on commit."""

    @abc.abstractmethod
    def make_folder(self, rel: str) -> None: ...

    @abc.abstractmethod
    def remove_file(self, rel: str) -> None: ...

    @abc.abstractmethod
    def remove_folder(self, rel: str) -> None:
        """Remove the folder ``rel`` and everything below it."""

    # -- optional fast paths ----------------------------------------------
    def create_empty(self, rel: str) -> Entry | None:
        """Create an empty file at ``rel`` only if nothing is there; raise :class:`~davgate.errors.Exists` if something is.

        A LOCK of a missing name creates its file this way, and MUST never
        replace what a PUT wrote meanwhile: backends SHOULD make the check
        and the creation one step (an exclusive create). This default looks,
        then commits an empty upload, which leaves a short window.
        """
        if self.stat(rel) is not None:
            raise errors.Exists(rel)
        upload = self.open_upload(rel)
        try:
            return upload.commit()
        except BaseException:
            upload.abort()
            raise

    def copy_file(self, src: str, dest: str) -> bool:
        """Copy inside this mount without streaming; False if not supported."""
        return False

    def move(self, src: str, dest: str) -> bool:
        """Rename a file or folder inside this mount; False if not supported."""
        return False

    def set_modified(self, rel: str, timestamp: float) -> bool:
        """Set a file's modification time; False if not supported."""
        return False

    def space(self) -> tuple[int, int] | None:
        """(used, available) bytes, or None if unknown."""
        return None

    def send_to(self, rel: str, target: Mount, target_rel: str, progress: Callable[[int, int], bool]) -> str | None:
        """Copy the file ``rel`` to ``target_rel`` of ``target`` server to server, no byte through davgate.

        MUST write the target atomically and compare checksums of both ends;
        returns the copy's checksum (``<algorithm>:<hex>``), or None when this
        pair of mounts cannot copy directly (the caller then streams).
        ``progress(done, total)`` is called as the servers report; False from
        it means the copy should stop.
        """
        return None

    def version(self, stream: BinaryIO) -> str | None:
        """The ETag of the content ``stream`` (from :meth:`open_read`) reads, if it is known without another call.

        A GET checks that the file it opened is the one its headers describe;
        None makes it ``stat`` the file again.
        """
        return None

    # -- lifecycle --------------------------------------------------------
    def use_state(self, store: Any) -> None:
        """Called with the shared state store before requests are served.

        For providers that keep records there (the sftp provider pins SSH
        host keys); others ignore it.
        """

    def start(self) -> None:
        """Called once before requests are served (recovery, connections)."""

    def close(self) -> None:
        """Release connections."""


def is_available(kind: str) -> bool:
    return kind in BUILT_IN or any(ep.name == kind for ep in entry_points())


def load(kind: str) -> type[Mount]:
    """The Mount class for a provider's short name or ``module:Class`` path."""
    target = BUILT_IN.get(kind)
    if target is None:
        found = [ep for ep in entry_points() if ep.name == kind]
        target = found[0].value if found else kind
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as error:
        raise LookupError(f"storage provider {kind!r} cannot be loaded: {error}") from error
    if not (isinstance(cls, type) and issubclass(cls, Mount)):
        raise LookupError(f"storage provider {kind!r} is not a davgate Mount")
    return cls


def entry_points() -> list[metadata.EntryPoint]:
    return [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name not in BUILT_IN]
