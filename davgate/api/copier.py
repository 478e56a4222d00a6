"""One staging copy: stream a file from one adaptor to another, then prove it arrived.

The source is read once, in 1 MiB blocks, each block hashed (SHA-256) and
written to an atomic upload on the target (nothing is visible there until
the whole file is committed). Missing target folders are made first. The
target is then read back whole and its SHA-256 compared: a mismatch removes
the target and fails the copy. Progress is written to the job about twice a
second, which also extends the job's lease; a job whose lease another
process has taken stops at once.

Pairs of mounts that can copy server to server (``Mount.send_to``: two
GridFTP mounts) do so instead, with no byte through davgate; the servers
compare the checksum (ADLER32) and the job reports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from davgate import errors
from davgate.providers import Mount

__all__ = ["Copier", "LeaseLost", "Place", "Stopped"]

CHUNK = 1024 * 1024
REPORT_SECONDS = 0.5


class Stopped(Exception):
    """The process is stopping: the job goes back to the queue."""


class LeaseLost(Exception):
    """Another process runs this job now (our lease ran out)."""


@dataclass(frozen=True)
class Place:
    """A file's place: an adaptor's mount and a path relative to it."""

    mount: Mount
    rel: str


@dataclass
class Copier:
    """Copies ``source`` to ``target``; ``report(done, total)`` returns False once the lease is lost."""

    report: Callable[[int, int], bool]
    stopping: threading.Event
    rate_limit: int = 0  # bytes per second; 0: none

    def copy(self, source: Place, target: Place) -> tuple[str, str]:
        """Copy and verify; returns the target's path (relative to its mount) and ``sha256:<hex>``."""
        entry = source.mount.stat(source.rel)
        if entry is None:
            raise errors.NotFound(source.rel, "the source does not exist")
        if entry.is_folder:
            raise errors.Conflict(source.rel, "the source is a folder; a copy job copies one file")
        rel = target_file(target, posixpath.basename(source.rel))
        make_parents(target.mount, rel)
        if not self.report(0, entry.size):
            raise LeaseLost
        checksum = source.mount.send_to(source.rel, target.mount, rel, lambda done, _: self.report(done, entry.size))
        if checksum is not None:  # server to server (two GridFTP mounts), checksums compared by the servers
            self.report(entry.size, entry.size)
            return rel, checksum
        digest = self.stream(source, Place(target.mount, rel), entry.size)
        if sha256_of(target.mount, rel, self.stopping) != digest:
            target.mount.remove_file(rel)
            raise errors.BadGateway(rel, "the target's checksum differs from the source's; the copy was removed")
        return rel, f"sha256:{digest}"

    def stream(self, source: Place, target: Place, total: int) -> str:
        digest, done = hashlib.sha256(), 0
        started = last = time.monotonic()
        upload = target.mount.open_upload(target.rel)
        try:
            with source.mount.open_read(source.rel) as stream:
                while chunk := stream.read(CHUNK):
                    if self.stopping.is_set():
                        raise Stopped
                    digest.update(chunk)
                    upload.write(chunk)
                    done += len(chunk)
                    if time.monotonic() - last >= REPORT_SECONDS:
                        last = time.monotonic()
                        if not self.report(done, max(total, done)):
                            raise LeaseLost
                    self.throttle(done, started)
            upload.commit()
        except BaseException:
            upload.abort()
            raise
        self.report(done, done)
        return digest.hexdigest()

    def throttle(self, done: int, started: float) -> None:
        if self.rate_limit > 0:
            ahead = done / self.rate_limit - (time.monotonic() - started)
            if ahead > 0 and self.stopping.wait(ahead):
                raise Stopped


def target_file(target: Place, name: str) -> str:
    """The target path; into a folder (an existing one, or a path ending in '/') the source's name."""
    rel = target.rel.strip("/")
    if target.rel.endswith("/") or rel == "":
        return posixpath.join(rel, name) if rel else name
    entry = target.mount.stat(rel)
    return posixpath.join(rel, name) if entry is not None and entry.is_folder else rel


def make_parents(mount: Mount, rel: str) -> None:
    """Make the folders above ``rel`` that are missing."""
    parts = rel.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        folder = "/".join(parts[:depth])
        entry = mount.stat(folder)
        if entry is None:
            with contextlib.suppress(errors.Exists):  # made meanwhile by someone else
                mount.make_folder(folder)
        elif not entry.is_folder:
            raise errors.Conflict(folder, "a file is in the way of the target's folders")


def sha256_of(mount: Mount, rel: str, stopping: threading.Event) -> str:
    digest = hashlib.sha256()
    with mount.open_read(rel) as stream:
        while chunk := stream.read(CHUNK):
            if stopping.is_set():
                raise Stopped
            digest.update(chunk)
    return digest.hexdigest()
