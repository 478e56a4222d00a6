"""The ``sftp`` provider: a folder on an SSH server, through fs.sshfs.

Paths are contained twice: lexically (normalised, joined under the root,
checked with ``commonpath``) and on the server, whose ``realpath`` resolves
the folder of every operation (cached for a moment) and the file itself for
reads, so a symlink that leads out of the root is refused like ``..`` is;
listings hide such links. Each listing is one ``listdir_attr`` (plus one
call per symlink). Operations that only read are retried once on a fresh
connection when a pooled one turns out to be dead (the server restarted).
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import posixpath
import stat
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, TypeVar

from davgate import errors
from davgate.config import ConfigError
from davgate.hardening.outbound import DIRECT, Opener
from davgate.providers import Entry, Mount, Upload
from davgate.providers.sftp.hostkeys import HostKeyCheck
from davgate.providers.sftp.pool import Link, Pool, connect_sshfs
from davgate.providers.sftp.remote import (
    SSHFS,
    is_connection_error,
    paramiko,
    translated,
)
from davgate.providers.sftp.remote_ops import (
    NO_SUCH_FILE,
    advance_folders,
    block_sizes,
    copy_data,
    entry_of,
    lstat_or_none,
    no_space,
    statvfs,
)
from davgate.providers.sftp.streams import TEMP_PREFIX, SftpReader, SftpUpload
from davgate.state import StateStore

T = TypeVar("T")
log = logging.getLogger("davgate.sftp")

FOLDER_CACHE_SECONDS = 2.0  # how long a folder's server-side real path is trusted
SPACE_CACHE_SECONDS = 5.0
STALE_UPLOAD_SECONDS = 3600  # temporary files untouched this long belong to dead uploads


def load_key(path: str, mount: str) -> paramiko.PKey:
    try:
        return paramiko.PKey.from_path(path)
    except (OSError, paramiko.SSHException, ValueError) as error:
        raise ConfigError(f"mounts.{mount}.key", f"cannot load SSH private key {path}: {error}") from None


class SftpMount(Mount):
    """Serves ``options.root`` on ``options.host``, logged in as ``options.user`` with ``options.key``."""

    def __init__(self, path: str, options: Any, opener: Opener = DIRECT) -> None:
        """``opener``: how to open the SSH socket (the outbound rule's, for API-made mounts)."""
        super().__init__(path, options)
        self.opener = opener
        self.key = load_key(str(options.key), path)
        self.timeout = float(options.timeout)
        self.check = HostKeyCheck(options.host, options.port, options.known_hosts, None, f"sftp {path}")
        self.pool = Pool(self.connect, getattr(options, "connections", 4), self.timeout, path)
        self.root = ""  # the root's real path on the server, known after the first connection
        self.blocks = (0, 0)  # (read, write) request sizes
        self.folders: dict[str, tuple[float, str]] = {}
        self.space_cache: tuple[float, tuple[int, int] | None] = (0.0, None)
        self.lock = threading.Lock()

    def use_state(self, store: StateStore) -> None:
        self.check.store = store

    def connect(self) -> SSHFS:
        options = self.options
        return connect_sshfs(
            options.host, options.port, options.user, self.check, self.timeout, pkey=self.key, opener=self.opener
        )

    def close(self) -> None:
        self.pool.close()

    # -- plumbing ------------------------------------------------------------

    def run(self, rel: str, operation: Callable[[Link], T], *, retry: bool = False) -> T:
        """Run ``operation`` with a pooled link; ``retry`` once if that link was an old one found dead.

        No retry after a timeout (the server hangs: asking again would double
        the wait) or when the connection was new (the server is down).
        """
        with translated(rel):
            reused: list[bool] = []
            try:
                return self.attempt(operation, reused)
            except Exception as error:
                if not (retry and any(reused) and is_connection_error(error) and not isinstance(error, TimeoutError)):
                    raise
            return self.attempt(operation, [])

    def attempt(self, operation: Callable[[Link], T], reused: builtins.list[bool]) -> T:
        with self.pool.session() as link:
            reused.append(link.uses > 0)
            link.uses += 1
            if not self.root:
                self.discover(link)
            return operation(link)

    def discover(self, link: Link) -> None:
        root = link.sftp.normalize(self.options.root or ".")
        self.blocks = block_sizes(link.sftp)
        log.info("%s: connected to %s:%d, root %s", self.path, self.options.host, self.options.port, root)
        self.root = root

    def clean(self, rel: str) -> str:
        """``rel`` normalised; refuses what leaves the mount and our temporary names."""
        if rel.startswith("/") or "\x00" in rel:
            raise errors.OutsideMount(rel)
        norm = posixpath.normpath(rel) if rel else "."
        if norm == ".." or norm.startswith("../"):
            raise errors.OutsideMount(rel)
        if any(part.startswith(TEMP_PREFIX) for part in norm.split("/")):
            raise errors.Forbidden(rel, "reserved file name")
        return "" if norm == "." else norm

    def inside(self, path: str, rel: str) -> str:
        if posixpath.commonpath([self.root, path]) != self.root:
            raise errors.OutsideMount(rel)
        return path

    def real_folder(self, link: Link, folder: str, rel: str) -> str:
        """The server's real path of the mount's ``folder``, checked to be inside the root."""
        if not folder:
            return self.root
        now = time.monotonic()
        cached = self.folders.get(folder)
        if cached and cached[0] > now:
            return cached[1]
        real = self.inside(link.sftp.normalize(posixpath.join(self.root, folder)), rel)
        with self.lock:
            if len(self.folders) > 10000:
                self.folders.clear()
            self.folders[folder] = (now + FOLDER_CACHE_SECONDS, real)
        return real

    def locate(self, link: Link, rel: str) -> str:
        """The remote path of ``rel``: its folder resolved on the server, its name as given."""
        rel = self.clean(rel)
        if not rel:
            return self.root
        folder, name = posixpath.split(rel)
        return posixpath.join(self.real_folder(link, folder, rel), name)

    def resolve(self, link: Link, rel: str) -> str:
        """The remote path of ``rel`` with every symlink resolved, checked to be inside."""
        return self.inside(link.sftp.normalize(self.locate(link, rel)), rel)

    def forget_folders(self) -> None:
        with self.lock:
            self.folders.clear()

    # -- required ------------------------------------------------------------

    def stat(self, rel: str) -> Entry | None:
        def operation(link: Link) -> Entry | None:
            try:
                path = self.locate(link, rel)
                attrs = lstat_or_none(link.sftp, path)
                if attrs is not None and stat.S_ISLNK(attrs.st_mode or 0):
                    attrs = link.sftp.stat(self.resolve(link, rel))
            except OSError as error:
                if error.errno == NO_SUCH_FILE:
                    return None
                raise
            return None if attrs is None else entry_of(posixpath.basename(rel) if rel else "", attrs)

        return self.run(rel, operation, retry=True)

    def list(self, rel: str) -> list[Entry]:
        def operation(link: Link) -> list[Entry]:
            folder = self.real_folder(link, self.clean(rel), rel)
            entries: builtins.list[Entry] = []
            for attrs in link.sftp.listdir_attr(folder):
                name = attrs.filename
                if name.startswith(TEMP_PREFIX):
                    self.sweep(link, folder, attrs)
                elif stat.S_ISLNK(attrs.st_mode or 0):
                    entries.extend(self.follow(link, folder, name))
                else:
                    entries.append(entry_of(name, attrs))
            return entries

        return self.run(rel, operation, retry=True)

    def follow(self, link: Link, folder: str, name: str) -> builtins.list[Entry]:
        """A symlink's entry if it resolves to something inside the mount; else none."""
        try:
            real = link.sftp.normalize(posixpath.join(folder, name))
            if posixpath.commonpath([self.root, real]) != self.root:
                return []
            return [entry_of(name, link.sftp.stat(real))]
        except OSError as error:
            if is_connection_error(error):
                raise
            return []  # dangling, a loop, or refused: not listed

    def sweep(self, link: Link, folder: str, attrs: paramiko.SFTPAttributes) -> None:
        """Remove the temporary file of an upload that died long ago."""
        if time.time() - (attrs.st_mtime or 0) > STALE_UPLOAD_SECONDS:
            try:
                link.sftp.remove(posixpath.join(folder, attrs.filename))
            except OSError as error:
                if is_connection_error(error):
                    raise

    def open_read(self, rel: str) -> BinaryIO:
        def operation(link: Link) -> BinaryIO:
            path = self.resolve(link, rel)
            sftp, release = self.pool.stream(link)
            try:
                return SftpReader(sftp, release, path, rel, self.blocks[0])  # type: ignore[return-value]
            except BaseException:
                release()
                raise

        return self.run(rel, operation, retry=True)

    def open_upload(self, rel: str) -> Upload:
        def operation(link: Link) -> Upload:
            target = self.upload_target(link, rel)
            sftp, release = self.pool.stream(link)
            return SftpUpload(sftp, release, target, rel, self.blocks[1])

        return self.run(rel, operation, retry=True)

    def upload_target(self, link: Link, rel: str) -> str:
        """Where an upload to ``rel`` goes: through a symlink inside the mount, never onto a folder."""
        target = self.locate(link, rel)
        attrs = lstat_or_none(link.sftp, target)
        if attrs is not None and stat.S_ISLNK(attrs.st_mode or 0):
            target = self.resolve(link, rel)  # refuses a link that leads out
            attrs = lstat_or_none(link.sftp, target)
        if attrs is not None and stat.S_ISDIR(attrs.st_mode or 0):
            raise errors.Conflict(rel, "a folder is in the way")
        return target

    def make_folder(self, rel: str) -> None:
        def operation(link: Link) -> None:
            path = self.locate(link, rel)
            with advance_folders(link.sftp, [posixpath.dirname(path)]):
                try:
                    link.sftp.mkdir(path)
                except OSError as error:
                    if error.errno is None and lstat_or_none(link.sftp, path) is not None:
                        raise errors.Exists(rel) from error
                    if error.errno is None:  # SFTP says only "failure": something was in the way, and is gone again
                        raise errors.Conflict(rel, "another request used the name meanwhile") from error
                    raise

        self.run(rel, operation)

    def create_empty(self, rel: str) -> Entry:
        """An exclusive create (SFTP's EXCL flag): something in the way is :class:`errors.Exists`."""

        def operation(link: Link) -> Entry:
            path = self.upload_target(link, rel)
            with advance_folders(link.sftp, [posixpath.dirname(path)]):
                try:
                    with link.sftp.open(path, "wbx") as created:
                        attrs = created.stat()
                except OSError as error:
                    if error.errno is None:  # SFTP says only "failure": something was in the way (it may be gone again)
                        raise errors.Exists(rel) from error
                    raise
            return entry_of(posixpath.basename(rel), attrs)

        return self.run(rel, operation)

    def remove_file(self, rel: str) -> None:
        def operation(link: Link) -> None:
            path = self.locate(link, rel)
            with advance_folders(link.sftp, [posixpath.dirname(path)]):
                try:
                    link.sftp.remove(path)
                except OSError as error:
                    found = lstat_or_none(link.sftp, path) if error.errno is None else None
                    if found is not None and stat.S_ISDIR(found.st_mode or 0):
                        raise errors.Conflict(rel, "a folder, not a file") from error
                    raise

        self.run(rel, operation)

    def remove_folder(self, rel: str) -> None:
        if not self.clean(rel):
            raise errors.Forbidden(rel, "the mount's root cannot be removed")

        def operation(link: Link) -> None:
            path = self.locate(link, rel)
            mode = link.sftp.lstat(path).st_mode or 0
            if not (stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                raise errors.Conflict(rel, "a file, not a folder")
            with advance_folders(link.sftp, [posixpath.dirname(path)]):
                if stat.S_ISLNK(mode):
                    link.sftp.remove(path)  # a link to a folder: the link goes, its target stays
                else:
                    remove_tree(link.sftp, path, rel)
            self.forget_folders()

        self.run(rel, operation)

    # -- optional fast paths -------------------------------------------------

    def copy_file(self, src: str, dest: str) -> bool:
        """A server-side copy (OpenSSH's ``copy-data``) to a temporary name, then a rename."""

        def operation(link: Link) -> bool:
            source = self.resolve(link, src)
            upload = SftpUpload(link.sftp, lambda: None, self.upload_target(link, dest), dest, self.blocks[1])
            try:
                with link.sftp.open(source, "rb") as reader, no_space(link.sftp, upload.target, dest):
                    attrs = reader.stat()
                    if stat.S_ISDIR(attrs.st_mode or 0):
                        raise errors.Conflict(src, "a folder, not a file")
                    size = attrs.st_size or 0
                    if not copy_data(link.sftp, reader.handle, upload.file.handle):
                        while chunk := reader.read(self.blocks[0]):
                            upload.write(chunk)
                    upload.offset = size
                upload.commit()
            except BaseException:
                upload.abort()
                raise
            return True

        return self.run(src, operation)

    def move(self, src: str, dest: str) -> bool:
        def operation(link: Link) -> bool:
            source, target = self.locate(link, src), self.locate(link, dest)
            if self.root in (source, target):
                raise errors.Forbidden(src, "the mount's root cannot be moved")
            with advance_folders(link.sftp, [posixpath.dirname(source), posixpath.dirname(target)]):
                link.sftp.posix_rename(source, target)
            self.forget_folders()
            return True

        return self.run(src, operation)

    def version(self, stream: BinaryIO) -> str | None:
        return getattr(stream, "etag", None)

    def set_modified(self, rel: str, timestamp: float) -> bool:
        def operation(link: Link) -> bool:
            link.sftp.utime(self.resolve(link, rel), (timestamp, timestamp))
            return True

        return self.run(rel, operation)

    def space(self) -> tuple[int, int] | None:
        expires, value = self.space_cache
        if expires > time.monotonic():
            return value
        try:
            value = self.run("", lambda link: statvfs(link.sftp, self.root), retry=True)
        except errors.StorageError:
            value = None
        self.space_cache = (time.monotonic() + SPACE_CACHE_SECONDS, value)
        return value


def remove_tree(sftp: paramiko.SFTPClient, path: str, rel: str) -> None:
    """Remove a folder and everything below it; symlinks are removed, never followed.

    Members another request removes meanwhile are simply gone; one it adds
    meanwhile stops the removal with a Conflict (SFTP says only "failure").
    """
    with gone_is_done():
        for attrs in sftp.listdir_attr(path):
            child = posixpath.join(path, attrs.filename)
            if stat.S_ISDIR(attrs.st_mode or 0):
                remove_tree(sftp, child, rel)
            else:
                with gone_is_done():
                    sftp.remove(child)
        try:
            sftp.rmdir(path)
        except OSError as error:
            if error.errno is not None:
                raise
            if lstat_or_none(sftp, path) is None:  # removed meanwhile by another request
                return
            raise errors.Conflict(rel, "a member was added while the folder was being removed") from error


@contextlib.contextmanager
def gone_is_done() -> Iterator[None]:
    """Inside a removal: something already removed by another request is not an error."""
    try:
        yield
    except OSError as error:
        if error.errno != NO_SUCH_FILE:
            raise
