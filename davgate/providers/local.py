"""The ``local`` provider: a folder on this machine (or a Ceph/Rook volume mounted here)."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from typing import BinaryIO

from davgate import errors
from davgate.providers import Entry, Mount, Upload

TEMP_PREFIX = ".davgate-upload-"
HOST = socket.gethostname().replace("~", "_")
FOREIGN_UPLOAD_TTL = 24 * 3600
ODD_SEGMENTS = frozenset({"", ".", ".."})  # segments only realpath may judge

ERRNO_ERRORS: dict[int, type[errors.StorageError]] = {
    errno.ENOENT: errors.NotFound,
    errno.EEXIST: errors.Exists,
    errno.ENOTEMPTY: errors.NotEmpty,
    errno.ENOTDIR: errors.Conflict,
    errno.EISDIR: errors.Conflict,
    errno.EACCES: errors.Forbidden,
    errno.EPERM: errors.Forbidden,
    errno.EROFS: errors.ReadOnly,
    errno.ENOSPC: errors.NoSpace,
    errno.EDQUOT: errors.NoSpace,
    errno.ELOOP: errors.NotFound,
    errno.ENAMETOOLONG: errors.Forbidden,
    errno.EINVAL: errors.Conflict,
}


@contextlib.contextmanager
def translated(rel: str) -> Iterator[None]:
    """Raise davgate errors for OSErrors, by errno."""
    try:
        yield
    except OSError as error:
        cls = ERRNO_ERRORS.get(error.errno or 0, errors.StorageError)
        raise cls(rel, error.strerror) from error


def contain(root: str, rel: str) -> str:
    """The real path of ``rel`` under ``root``; refuses anything that leaves it.

    ``root`` must already be a real path. Symlinks are resolved first, so a
    link that points out of the mount is refused like ``..`` is.
    """
    return contained(root, rel)[0]


def contained(root: str, rel: str) -> tuple[str, os.stat_result | None]:
    """``contain(root, rel)``, and the path's own ``lstat`` when it exists and is no symlink.

    The fast way: ``lstat`` each component below ``root``; if none is a
    symlink, the path is already real (``root`` is resolved once, when the
    mount is made). A missing component ends the walk, since nothing below it
    can be a link. Any symlink, or a segment such as ``..``, takes the full
    ``realpath`` and ``commonpath`` check.
    """
    if not rel:
        return root, None
    segments = rel.split("/")
    if any(segment in ODD_SEGMENTS for segment in segments):
        return resolved(root, rel), None
    path = root.rstrip("/")
    for segment in segments:
        path = f"{path}/{segment}"
        try:
            st = os.lstat(path)
        except OSError:
            return f"{root.rstrip('/')}/{rel}", None
        if st.st_mode & 0o170000 == 0o120000:  # a symlink: resolve it all, then check
            return resolved(root, rel), None
    return path, st


def resolved(root: str, rel: str) -> str:
    full = os.path.realpath(os.path.join(root, rel))
    if os.path.commonpath([root, full]) != root:
        raise errors.OutsideMount(rel)
    return full


def check_name(rel: str) -> None:
    if os.path.basename(rel).startswith(TEMP_PREFIX):
        raise errors.Forbidden(rel, "reserved file name")


def entry_from_stat(name: str, st: os.stat_result) -> Entry:
    is_folder = (st.st_mode & 0o170000) == 0o040000
    return Entry(
        name=name,
        is_folder=is_folder,
        size=0 if is_folder else st.st_size,
        modified=st.st_mtime,
        etag=f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}",
    )


class UniqueSuffixes:
    """Temporary file names unique in this process and beyond: a random prefix per process, then a counter."""

    def __init__(self) -> None:
        self.restart()
        os.register_at_fork(after_in_child=self.restart)

    def restart(self) -> None:
        self.prefix = uuid.uuid4().hex[:16]
        self.counter = itertools.count()  # next() is atomic under the GIL

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


unique_suffix = UniqueSuffixes()


class LocalUpload(Upload):
    """Writes to a temporary file beside the target; ``os.replace`` commits."""

    def __init__(self, target: str, rel: str, fsync: bool = True) -> None:
        self.target = target
        self.fsync = fsync
        self.rel = rel
        folder = os.path.dirname(target)
        self.temp = os.path.join(folder, f"{TEMP_PREFIX}{os.getpid()}@{HOST}~{unique_suffix()}")
        with translated(rel):
            fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        self.file = os.fdopen(fd, "wb", buffering=0)

    def write(self, data: bytes) -> int:
        with translated(self.rel):
            view = memoryview(data)
            while view:
                view = view[self.file.write(view) :]
        return len(data)

    def commit(self) -> Entry:
        """The rename keeps the inode and the modification time, so the temporary file's stat is the ETag's."""
        with translated(self.rel):
            if self.fsync:
                os.fsync(self.file.fileno())
            written = os.fstat(self.file.fileno())
            self.file.close()
            if os.path.isdir(self.target):
                raise IsADirectoryError(errno.EISDIR, "a folder is in the way", self.target)
            os.replace(self.temp, self.target)
        return entry_from_stat(self.rel.rsplit("/", 1)[-1], written)

    def abort(self) -> None:
        self.file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp)


class LocalMount(Mount):
    """Serves the folder ``options.root``."""

    def __init__(self, path: str, options) -> None:
        super().__init__(path, options)
        self.root = os.path.realpath(options.root)

    def resolve(self, rel: str) -> str:
        """The real path behind ``rel``, symlinks followed (for reading and writing content)."""
        check_name(rel)
        return contain(self.root, rel)

    def resolve_link(self, rel: str) -> str:
        """The path of ``rel`` itself, a symlink not followed (for removing and renaming)."""
        check_name(rel)
        if not rel:
            return self.root
        parent, name = os.path.split(rel)
        if name in ("", ".", ".."):
            raise errors.OutsideMount(rel)
        full = os.path.join(contain(self.root, parent), name)
        if os.path.islink(full):
            contain(self.root, full)  # a link out of the mount is refused, like its target
        return full

    def stat(self, rel: str) -> Entry | None:
        check_name(rel)
        full, st = contained(self.root, rel)
        if st is None:  # missing, a symlink (followed here), or the root
            try:
                st = os.stat(full)
            except (FileNotFoundError, NotADirectoryError):
                return None
            except OSError as error:
                with translated(rel):
                    raise error
        return entry_from_stat(rel.rsplit("/", 1)[-1], st)

    def list(self, rel: str) -> list[Entry]:
        full = self.resolve(rel)
        entries = []
        with translated(rel), os.scandir(full) as scan:
            for item in scan:
                if item.name.startswith(TEMP_PREFIX) or not self.contains_link(item):
                    continue
                with contextlib.suppress(OSError):  # vanished, or a link loop
                    entries.append(entry_from_stat(item.name, item.stat()))
        return entries

    def contains_link(self, item: os.DirEntry) -> bool:
        """A symlink is listed only if it stays inside the mount."""
        if not item.is_symlink():
            return True
        real = os.path.realpath(item.path)
        return os.path.commonpath([self.root, real]) == self.root

    def open_read(self, rel: str) -> BinaryIO:
        with translated(rel):
            return open(self.resolve(rel), "rb")  # noqa: SIM115 - the caller closes it

    def open_upload(self, rel: str) -> Upload:
        return LocalUpload(self.resolve(rel), rel, self.options.fsync)

    def make_folder(self, rel: str) -> None:
        with translated(rel):
            os.mkdir(self.resolve(rel))

    def create_empty(self, rel: str) -> Entry:
        """An exclusive create: EEXIST (a file or a folder in the way) is :class:`errors.Exists`."""
        full = self.resolve(rel)
        with translated(rel):
            fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            try:
                created = os.fstat(fd)
            finally:
                os.close(fd)
        return entry_from_stat(rel.rsplit("/", 1)[-1], created)

    def remove_file(self, rel: str) -> None:
        full = self.resolve_link(rel)
        with translated(rel):
            if os.path.isdir(full) and not os.path.islink(full):
                raise IsADirectoryError(errno.EISDIR, "is a folder", full)
            os.unlink(full)

    def remove_folder(self, rel: str) -> None:
        full = self.resolve_link(rel)
        if full == self.root:
            raise errors.Forbidden(rel, "the mount's root cannot be removed")
        with translated(rel):
            if os.path.islink(full):
                os.unlink(full)
            else:
                remove_tree(full, rel)

    def copy_file(self, src: str, dest: str) -> bool:
        upload = LocalUpload(self.resolve(dest), dest, self.options.fsync)
        try:
            with translated(src), open(self.resolve(src), "rb") as source:
                shutil.copyfileobj(source, upload.file, 1024 * 1024)
            upload.commit()
        except BaseException:
            upload.abort()
            raise
        return True

    def move(self, src: str, dest: str) -> bool:
        with translated(src):
            os.rename(self.resolve_link(src), self.resolve_link(dest))
        return True

    def set_modified(self, rel: str, timestamp: float) -> bool:
        with translated(rel):
            os.utime(self.resolve(rel), (timestamp, timestamp))
        return True

    def space(self) -> tuple[int, int] | None:
        usage = shutil.disk_usage(self.root)
        return usage.used, usage.free

    def version(self, stream: BinaryIO) -> str | None:
        return entry_from_stat("", os.fstat(stream.fileno())).etag

    def start(self) -> None:
        """Remove temporary files of uploads whose process has died."""
        for folder, _dirs, files in os.walk(self.root):
            for name in files:
                path = os.path.join(folder, name)
                if name.startswith(TEMP_PREFIX) and not upload_in_progress(name, path):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)


def remove_tree(full: str, rel: str) -> None:
    """``shutil.rmtree``; a folder another request put in its place meanwhile is a Conflict.

    rmtree checks that the folder it opens is the one it looked at, and
    refuses with an OSError that has no errno when it is not.
    """
    try:
        shutil.rmtree(full)
    except OSError as error:
        if error.errno is None:
            raise errors.Conflict(rel, "the folder was replaced while it was being removed") from error
        raise


def upload_in_progress(name: str, path: str) -> bool:
    """Whether the upload that owns temp file ``name`` may still be running.

    Uploads of this host are alive while their process is; those of another
    host sharing the volume (a replica) are left alone for a day.
    """
    owner = name[len(TEMP_PREFIX) :].split("~", 1)[0]
    pid_text, _, host = owner.partition("@")
    if host != HOST:
        with contextlib.suppress(FileNotFoundError):
            return time.time() - os.stat(path).st_mtime < FOREIGN_UPLOAD_TTL
        return False
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
