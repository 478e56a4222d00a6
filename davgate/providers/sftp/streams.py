"""Pipelined reads and atomic, pipelined uploads on an SFTP channel of their own.

paramiko's own file objects fall short for a gateway: their prefetch reads
the whole file from the start (a Range GET of the last bytes of a large file
would buffer all of it), and their pipelined writes drop server errors that
arrive while another request is waited for (a full disk could commit a
truncated file). So both are done here with paramiko's request primitives:
at most ``depth`` requests of ``block`` bytes in flight, every status checked.
"""

from __future__ import annotations

import logging
import posixpath
import stat
import uuid
from collections import deque
from collections.abc import Callable

from paramiko.sftp import CMD_DATA, CMD_READ, CMD_STATUS, CMD_WRITE, SFTPError, int64

from davgate import errors
from davgate.providers import Entry, SizedReader, Upload
from davgate.providers.sftp.remote import paramiko, translated
from davgate.providers.sftp.remote_ops import (
    advance_folders,
    entry_of,
    lstat_or_none,
    no_space,
    restore_folder,
)

log = logging.getLogger("davgate.sftp")

TEMP_PREFIX = ".davgate-upload-"
READ_AHEAD = 8 * 1024 * 1024  # bytes requested ahead of the reader
WRITE_AHEAD = 16 * 1024 * 1024  # bytes sent ahead of the server's acknowledgements


def status_error(sftp: paramiko.SFTPClient, msg: paramiko.Message) -> BaseException | None:
    """The exception a status message stands for: None for OK, EOFError at the end of a file."""
    try:
        sftp._convert_status(msg)
    except (EOFError, OSError) as error:
        return error
    return None


class SftpReader(SizedReader):
    """A seekable stream of one remote file that reads ahead from wherever it is read."""

    def __init__(self, sftp: paramiko.SFTPClient, release: Callable[[], None], path: str, rel: str, block: int) -> None:
        super().__init__()
        self.sftp, self.release, self.rel, self.block = sftp, release, rel, block
        self.file = sftp.open(path, "rb")
        attrs = self.file.stat()
        if stat.S_ISDIR(attrs.st_mode or 0):
            self.file.close()
            raise errors.Conflict(rel, "a folder has no content")
        self.size = attrs.st_size or 0
        self.etag = entry_of("", attrs).etag  # of the version this stream reads
        self.position = 0
        self.depth = max(2, READ_AHEAD // block)
        self.pending: deque[tuple[int, int]] = deque()  # (request number, offset), in file order
        self.arrived: dict[int, bytes | BaseException] = {}
        self.buffer, self.buffer_at = b"", 0
        self.next_offset = 0

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(self.block), b""))
        if size == 0 or self.position >= self.size:
            return b""
        start = self.position - self.buffer_at
        if not 0 <= start < len(self.buffer):
            with translated(self.rel, self.sftp):
                self.buffer, self.buffer_at, start = self.next_block(), self.position, 0
        data = self.buffer[start : start + size]
        self.position += len(data)
        return data

    def next_block(self) -> bytes:
        """The block that starts at ``pos``; restarts the read-ahead there if it is elsewhere."""
        if not self.pending or self.pending[0][1] != self.position:
            self.pending.clear()
            self.arrived.clear()
            self.next_offset = self.position
        while len(self.pending) < self.depth and self.next_offset < self.size:
            length = min(self.block, self.size - self.next_offset)
            num = self.sftp._async_request(self, CMD_READ, self.file.handle, int64(self.next_offset), length)
            self.pending.append((num, self.next_offset))
            self.next_offset += length
        num, _ = self.pending[0]
        while num not in self.arrived:
            self.sftp._read_response()
        self.pending.popleft()
        result = self.arrived.pop(num)
        if isinstance(result, BaseException):
            raise result
        return result

    def _async_response(self, t: int, msg: paramiko.Message, num: int) -> None:
        """paramiko calls this with the answer to one of our read requests."""
        if not any(num == wanted for wanted, _ in self.pending):
            return  # asked for before a seek
        if t == CMD_DATA:
            self.arrived[num] = msg.get_string()
        elif t == CMD_STATUS:
            error = status_error(self.sftp, msg)
            self.arrived[num] = b"" if error is None or isinstance(error, EOFError) else error
        else:
            self.arrived[num] = SFTPError("expected data")

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        try:
            self.pending.clear()
            self.file.close()
        except Exception:
            log.debug("%s: closing the remote file failed", self.rel, exc_info=True)
        finally:
            self.release()


class SftpUpload(Upload):
    """Writes to a temporary name beside the target; a server-side rename commits."""

    def __init__(
        self, sftp: paramiko.SFTPClient, release: Callable[[], None], target: str, rel: str, block: int
    ) -> None:
        self.sftp, self.release, self.target, self.rel, self.block = sftp, release, target, rel, block
        self.folder = posixpath.dirname(target)
        self.temp = posixpath.join(self.folder, f"{TEMP_PREFIX}{uuid.uuid4().hex}")
        self.depth = max(2, WRITE_AHEAD // block)
        self.outstanding: set[int] = set()
        self.failure: BaseException | None = None
        self.offset = 0
        self.done = False
        try:
            with translated(rel):
                self.folder_mtime = sftp.lstat(self.folder).st_mtime or 0  # before our temp file moves it
                self.file = sftp.open(self.temp, "wbx")
        except BaseException:
            release()
            raise

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        with translated(self.rel, self.sftp), no_space(self.sftp, self.target, self.rel):
            for start in range(0, len(view), self.block):
                chunk = view[start : start + self.block]
                num = self.sftp._async_request(self, CMD_WRITE, self.file.handle, int64(self.offset), chunk)
                self.outstanding.add(num)
                self.offset += len(chunk)
                while len(self.outstanding) > self.depth:
                    self.sftp._read_response()
                self.check()
        return len(data)

    def _async_response(self, t: int, msg: paramiko.Message, num: int) -> None:
        self.outstanding.discard(num)
        error = status_error(self.sftp, msg) if t == CMD_STATUS else SFTPError("expected status")
        self.failure = self.failure or error

    def check(self) -> None:
        if self.failure is not None:
            raise self.failure

    def commit(self) -> Entry:
        with translated(self.rel, self.sftp):
            with no_space(self.sftp, self.target, self.rel):
                while self.outstanding:
                    self.sftp._read_response()
                self.check()
                written = self.file.stat()
                self.file.close()
            if written.st_size != self.offset:
                raise errors.BadGateway(self.rel, f"the server kept {written.st_size} of {self.offset} bytes")
            self.replace(written)
        self.finish()
        return entry_of(posixpath.basename(self.rel), written)

    def replace(self, written: paramiko.SFTPAttributes) -> None:
        """Rename over the target; its mtime (our ETag) moves forward even within one second.

        ``written`` ends as the attributes the file has after the rename.
        """
        with advance_folders(self.sftp, [self.folder], {self.folder: self.folder_mtime}):
            previous = lstat_or_none(self.sftp, self.target)
            if previous is not None and stat.S_ISDIR(previous.st_mode or 0):
                raise errors.Conflict(self.rel, "a folder is in the way")
            if previous is not None and (previous.st_mtime or 0) >= (written.st_mtime or 0):
                written.st_mtime = (previous.st_mtime or 0) + 1
                self.sftp.utime(self.temp, (written.st_atime or 0, written.st_mtime))
            self.sftp.posix_rename(self.temp, self.target)

    def abort(self) -> None:
        if self.done:
            return
        steps = (self.file.close, lambda: self.sftp.remove(self.temp), self.restore_folder)
        for step in steps:
            try:
                step()
            except Exception:
                log.debug("%s: could not clean up the upload's temporary file", self.rel, exc_info=True)
        self.finish()

    def restore_folder(self) -> None:
        restore_folder(self.sftp, self.folder, self.folder_mtime)

    def finish(self) -> None:
        self.done = True
        self.release()
