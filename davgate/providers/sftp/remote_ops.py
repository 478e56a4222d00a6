"""Small SFTP operations the mount and its streams share, and OpenSSH's extensions.

SFTP version 3 (what OpenSSH speaks) reports most failures as a bare
SSH_FX_FAILURE, and its timestamps have whole seconds. So a failure is
explained by looking (``lstat``: is something in the way?) rather than by
reading its message; a full disk is recognised by ``statvfs@openssh.com``;
and a folder's or file's mtime, which makes its ETag, is moved forward by a
second when a change would otherwise leave it where it was.
"""

from __future__ import annotations

import contextlib
import errno
import stat
from collections.abc import Iterator

from paramiko.sftp import (
    CMD_EXTENDED,
    CMD_EXTENDED_REPLY,
    CMD_STATUS,
    SFTP_OK,
    SFTP_OP_UNSUPPORTED,
    int64,
)

from davgate import errors
from davgate.providers import Entry
from davgate.providers.sftp.remote import paramiko

NO_SUCH_FILE = errno.ENOENT
DEFAULT_BLOCK = 32 * 1024  # what every SFTP server accepts
MAX_BLOCK = 255 * 1024  # OpenSSH takes up to 256 KiB less its header
WRITE_BLOCK = 64 * 1024  # larger writes are slower through paramiko (measured)
LOW_SPACE = 1024 * 1024  # less free space than this after a failed write: the disk is full


def entry_of(name: str, attrs: paramiko.SFTPAttributes) -> Entry:
    is_folder = stat.S_ISDIR(attrs.st_mode or 0)
    mtime = int(attrs.st_mtime or 0)
    size = 0 if is_folder else int(attrs.st_size or 0)
    etag = f"d{mtime:x}" if is_folder else f"{mtime:x}-{size:x}"
    return Entry(name=name, is_folder=is_folder, size=size, modified=float(mtime), etag=etag)


def lstat_or_none(sftp: paramiko.SFTPClient, path: str) -> paramiko.SFTPAttributes | None:
    try:
        return sftp.lstat(path)
    except OSError as error:
        if error.errno == NO_SUCH_FILE:
            return None
        raise


def extended(sftp: paramiko.SFTPClient, name: str, *args: object) -> paramiko.Message | None:
    """The reply to an OpenSSH extension request, or None if the server refuses it."""
    try:
        t, msg = sftp._request(CMD_EXTENDED, name, *args)
    except OSError as error:
        if error.errno is None:  # SSH_FX_OP_UNSUPPORTED (or FAILURE): not available
            return None
        raise
    return msg if t == CMD_EXTENDED_REPLY else None


def block_sizes(sftp: paramiko.SFTPClient) -> tuple[int, int]:
    """(read, write) request sizes: what ``limits@openssh.com`` allows, else 32 KiB."""
    msg = extended(sftp, "limits@openssh.com")
    if msg is None:
        return DEFAULT_BLOCK, DEFAULT_BLOCK
    _packet, read, write = msg.get_int64(), msg.get_int64(), msg.get_int64()
    return clamp(read), min(clamp(write), WRITE_BLOCK)


def clamp(size: int) -> int:
    return DEFAULT_BLOCK if size <= 0 else max(DEFAULT_BLOCK // 8, min(size, MAX_BLOCK))


class _Reply:
    """Catches one answer whole, status code included (paramiko keeps only two as errno)."""

    def __init__(self) -> None:
        self.answer: tuple[int, paramiko.Message] | None = None

    def _async_response(self, t: int, msg: paramiko.Message, num: int) -> None:
        self.answer = (t, msg)


def copy_data(sftp: paramiko.SFTPClient, source: bytes, target: bytes) -> bool:
    """Copy one open file into another on the server (``copy-data``); False if it cannot."""
    reply = _Reply()
    sftp._async_request(reply, CMD_EXTENDED, "copy-data", source, int64(0), int64(0), target, int64(0))
    while reply.answer is None:
        sftp._read_response()
    t, msg = reply.answer
    code = msg.get_int() if t == CMD_STATUS else SFTP_OP_UNSUPPORTED
    if code == SFTP_OK:
        return True
    if code == SFTP_OP_UNSUPPORTED:
        return False
    raise OSError(f"copy-data failed with SFTP status {code}")


def statvfs(sftp: paramiko.SFTPClient, path: str) -> tuple[int, int] | None:
    """(used, available) bytes of the filesystem holding ``path``, if the server says."""
    msg = extended(sftp, "statvfs@openssh.com", path)
    if msg is None:
        return None
    _bsize, frsize, blocks, free, available = (msg.get_int64() for _ in range(5))
    return (blocks - free) * frsize, available * frsize


@contextlib.contextmanager
def no_space(sftp: paramiko.SFTPClient, path: str, rel: str) -> Iterator[None]:
    """A write that failed on a (nearly) full filesystem is :class:`errors.NoSpace`."""
    try:
        yield
    except OSError as error:
        if error.errno is None and is_full(sftp, path):
            raise errors.NoSpace(rel) from error
        raise


def is_full(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        space = statvfs(sftp, path.rsplit("/", 1)[0] or "/")
    except Exception:  # noqa: BLE001 - the original error is what matters
        return False
    return space is not None and space[1] < LOW_SPACE


@contextlib.contextmanager
def advance_folders(
    sftp: paramiko.SFTPClient, folders: list[str], seen: dict[str, int] | None = None
) -> Iterator[None]:
    """Make sure each folder's mtime has moved forward once the block has changed it.

    A change within the second of the previous one leaves a folder's mtime
    (whole seconds in SFTP) where it was; then it is set one second past the
    last value seen (``seen``, or read now), so the folder's ETag changes
    with every member change and never returns to an old value. Best
    effort: a folder we may not touch keeps the server's mtime.
    """
    before = dict(seen or {})
    for folder in dict.fromkeys(folders):
        with contextlib.suppress(OSError):
            before[folder] = max(before.get(folder, 0), sftp.lstat(folder).st_mtime or 0)
    yield
    for folder, old in before.items():
        with contextlib.suppress(OSError):
            now = sftp.lstat(folder)
            if (now.st_mtime or 0) <= old:
                sftp.utime(folder, (now.st_atime or 0, old + 1))


def restore_folder(sftp: paramiko.SFTPClient, folder: str, seen: int) -> None:
    """After an aborted upload: put back a folder mtime that its temporary file moved backwards."""
    with contextlib.suppress(OSError):
        now = sftp.lstat(folder)
        if (now.st_mtime or 0) < seen:
            sftp.utime(folder, (now.st_atime or 0, seen))
