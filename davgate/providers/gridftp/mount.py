"""The gridftp Mount: one folder of a GridFTP (``gsiftp://``) or FTP (``ftp://``) server.

Each operation is one gfal2 call on the calling thread's context (gfal2
reuses the control connection between calls). Paths are checked lexically
(the server's own ``-restrict-paths`` confines links); names with line
breaks are refused, since FTP commands are lines, and so are names beyond
ASCII, whose other bytes the Globus client (gfal2's, and globus-url-copy
too) drops. Temporary upload names are hidden from listings and refused as
names.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import posixpath
import stat
import urllib.parse
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

import gfal2

from davgate import errors
from davgate.config import ConfigError
from davgate.providers import Entry, Mount, Upload
from davgate.providers.gridftp.remote import Contexts, translated
from davgate.providers.gridftp.streams import TEMP_PREFIX, GridftpReader, GridftpUpload, temp_url_beside

T = TypeVar("T")
SCHEMES = ("gsiftp", "ftp")
FOLDER_MODE = 0o755
Check = Callable[[str, int], object]  # (host, port): raises if the outbound rule refuses it


def entry_of(name: str, info: Any) -> Entry:
    is_folder = stat.S_ISDIR(info.st_mode)
    mtime = int(info.st_mtime)
    size = 0 if is_folder else int(info.st_size)
    etag = f"d{mtime:x}" if is_folder else f"{mtime:x}-{size:x}"
    return Entry(name=name, is_folder=is_folder, size=size, modified=float(mtime), etag=etag)


def parse_url(url: str, mount: str) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname or parts.username or parts.query or parts.fragment:
        raise ConfigError(f"mounts.{mount}.url", "expected gsiftp://host:port/path or ftp://host:port/path")
    return parts


def no_check(host: str, port: int) -> None:
    """Operator-configured mounts are not subject to the outbound rule."""


class GridftpMount(Mount):
    """Serves the folder of ``options.url``, with ``options.proxy`` (GSI) or ``user``/``password`` (FTP)."""

    def __init__(self, path: str, options: Any, check: Check = no_check, owns_proxy: bool = False) -> None:
        """``check``: the outbound rule's, called before each operation (API-made mounts).

        ``owns_proxy``: the proxy file was written for this mount alone and is removed when it closes.
        """
        super().__init__(path, options)
        self.owns_proxy = owns_proxy
        parts = parse_url(options.url, path)
        self.host, self.port = parts.hostname or "", parts.port or 2811
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.root = posixpath.normpath("/" + parts.path.lstrip("/"))
        self.check = check
        self.contexts = Contexts(self.configure)

    def configure(self, context: Any) -> None:
        self.configure_login(context)
        timeout = max(1, int(round(float(self.options.timeout))))
        context.set_opt_integer("CORE", "NAMESPACE_TIMEOUT", timeout)
        context.set_opt_integer("GRIDFTP PLUGIN", "OPERATION_TIMEOUT", timeout)

    def configure_login(self, context: Any) -> None:
        """This mount's credentials, for URLs of its server only (a third-party copy holds two)."""
        options = self.options
        if options.proxy:
            context.cred_set(self.base, context.cred_new("X509_CERT", str(options.proxy)))
            context.cred_set(self.base, context.cred_new("X509_KEY", str(options.proxy)))
        if options.user:
            context.cred_set(self.base, context.cred_new("USER", options.user))
            context.cred_set(self.base, context.cred_new("PASSWD", options.password or ""))

    def close(self) -> None:
        if self.owns_proxy and self.options.proxy:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.options.proxy)

    # -- plumbing ------------------------------------------------------------

    def run(self, rel: str, operation: Callable[[Any], T]) -> T:
        """``operation`` with this thread's context; after a lost server, the next call starts afresh.

        gfal2 keeps a control connection open between calls; once the server
        went away, that context's session is dropped with it, so a server that
        comes back is used again without a restart.
        """
        try:
            with translated(rel):
                self.check(self.host, self.port)
                return operation(self.contexts.get())
        except errors.Unavailable:
            self.contexts.forget()
            raise

    def clean(self, rel: str) -> str:
        """``rel`` normalised; refuses what leaves the mount, line breaks and our temporary names."""
        if rel.startswith("/") or any(c in rel for c in "\x00\r\n"):
            raise errors.OutsideMount(rel)
        norm = posixpath.normpath(rel) if rel else "."
        if norm == ".." or norm.startswith("../"):
            raise errors.OutsideMount(rel)
        if any(part.startswith(TEMP_PREFIX) for part in norm.split("/")):
            raise errors.Forbidden(rel, "reserved file name")
        if not norm.isascii():  # Globus drops the bytes of other characters: two names, one file
            raise errors.Forbidden(rel, "names beyond ASCII are not supported on GridFTP mounts")
        return "" if norm == "." else norm

    def url(self, rel: str) -> str:
        path = posixpath.join(self.root, self.clean(rel)) if self.clean(rel) else self.root
        return self.base + urllib.parse.quote(path, safe="/")

    # -- required ------------------------------------------------------------

    def stat(self, rel: str) -> Entry | None:
        url = self.url(rel)
        try:
            info = self.run(rel, lambda context: context.stat(url))
        except (errors.NotFound, errors.Conflict):  # missing, or below a file (ENOTDIR)
            return None
        return entry_of(posixpath.basename(self.clean(rel)), info)

    def list(self, rel: str) -> list[Entry]:
        url = self.url(rel)

        def operation(context: Any) -> builtins.list[Entry]:
            folder = context.opendir(url)
            entries: builtins.list[Entry] = []
            while True:
                dirent, info = folder.readpp()
                if dirent is None:
                    return entries
                name = dirent.d_name
                if name not in (".", "..") and not name.startswith(TEMP_PREFIX):
                    entries.append(entry_of(name, info))

        entries = self.run(rel, operation)
        if not entries and self.stat(rel) is None:
            raise errors.NotFound(rel)
        return entries

    def open_read(self, rel: str) -> BinaryIO:
        url = self.url(rel)

        def operation(context: Any) -> BinaryIO:
            info = context.stat(url)
            if stat.S_ISDIR(info.st_mode):
                raise errors.Conflict(rel, "a folder has no content")
            return GridftpReader(context.open(url, "r"), int(info.st_size), rel)  # type: ignore[return-value]

        return self.run(rel, operation)

    def open_upload(self, rel: str) -> Upload:
        url = self.url(rel)
        if self.readonly:
            raise errors.ReadOnly(rel)

        def operation(context: Any) -> Upload:
            parent = self.url(posixpath.dirname(self.clean(rel)))
            if not stat.S_ISDIR(context.stat(parent).st_mode):
                raise errors.Conflict(rel, "the parent is a file")
            found = self.stat(rel)
            if found is not None and found.is_folder:
                raise errors.Conflict(rel, "a folder is in the way")
            return GridftpUpload(context, url, rel, lambda temp: int(context.stat(temp).st_size))

        return self.run(rel, operation)

    def make_folder(self, rel: str) -> None:
        url = self.url(rel)
        self.run(rel, lambda context: context.mkdir(url, FOLDER_MODE))

    def remove_file(self, rel: str) -> None:
        url = self.url(rel)

        def operation(context: Any) -> None:
            if stat.S_ISDIR(context.stat(url).st_mode):
                raise errors.Conflict(rel, "a folder, not a file")
            context.unlink(url)

        self.run(rel, operation)

    def remove_folder(self, rel: str) -> None:
        if not self.clean(rel):
            raise errors.Forbidden(rel, "the mount's root cannot be removed")
        url = self.url(rel)

        def operation(context: Any) -> None:
            if not stat.S_ISDIR(context.stat(url).st_mode):
                raise errors.Conflict(rel, "a file, not a folder")
            remove_tree(context, url)

        self.run(rel, operation)

    # -- optional fast paths -------------------------------------------------

    def move(self, src: str, dest: str) -> bool:
        source, target = self.url(src), self.url(dest)
        if not self.clean(src) or not self.clean(dest):
            raise errors.Forbidden(src, "the mount's root cannot be moved")
        parent = self.url(posixpath.dirname(self.clean(dest)))

        def operation(context: Any) -> None:
            context.stat(source)  # a missing source or target folder is NotFound, not the rename's ECOMM
            context.stat(parent)
            context.rename(source, target)

        self.run(src, operation)
        return True

    def send_to(self, rel: str, target: Mount, target_rel: str, progress: Callable[[int, int], bool]) -> str | None:
        """A third-party copy to another GridFTP mount: to a temporary name, ADLER32 compared, then renamed."""
        if not isinstance(target, GridftpMount):
            return None
        source, final = self.url(rel), target.url(target_rel)
        temp = temp_url_beside(final)

        def operation(context: Any) -> str:
            target.check(target.host, target.port)
            target.configure_login(context)
            try:
                context.filecopy(transfer_parameters(context, progress), source, temp)
                checksum = context.checksum(temp, "ADLER32")
                context.rename(temp, final)
            except BaseException:
                with contextlib.suppress(gfal2.GError):
                    context.unlink(temp)
                raise
            return f"adler32:{checksum}"

        return self.run(rel, operation)


def transfer_parameters(context: Any, progress: Callable[[int, int], bool]) -> Any:
    """Checksums compared at both ends; ``progress`` fed from the servers' performance markers."""
    params = context.transfer_parameters()
    params.set_checksum(gfal2.checksum_mode.both, "ADLER32", "")
    params.overwrite = True

    def monitor(source: str, target: str, average: int, instant: int, done: int, elapsed: int) -> None:
        if not progress(done, 0):
            context.cancel()

    params.monitor_callback = monitor
    return params


def remove_tree(context: Any, url: str) -> None:
    """Remove a folder and everything below it, one listing per folder."""
    folder = context.opendir(url)
    while True:
        dirent, info = folder.readpp()
        if dirent is None:
            break
        if dirent.d_name in (".", ".."):
            continue
        child = url + "/" + urllib.parse.quote(dirent.d_name, safe="")
        if stat.S_ISDIR(info.st_mode):
            remove_tree(context, child)
        else:
            context.unlink(child)
    context.rmdir(url)
