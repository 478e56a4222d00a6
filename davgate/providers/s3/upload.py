"""Uploading to S3 as a stream: one PUT for a small file, a multipart upload for a large one."""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from davgate import errors
from davgate.providers import Entry, Upload
from davgate.providers.s3.client import translated
from davgate.providers.s3.listing import unquoted

log = logging.getLogger("davgate.providers.s3")

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000
PARTS_PER_SIZE = 1000  # the part size doubles after every 1000 parts


def part_size_for(number: int, base: int) -> int:
    """The size of part ``number`` (1-based) when parts start at ``base`` bytes.

    The size of a PUT body is not known in advance, so parts grow: 1000
    parts of 8 MiB, then 1000 of 16 MiB, ... which reaches S3's 5 TiB object
    limit before its 10,000 part limit.
    """
    return min(base << ((number - 1) // PARTS_PER_SIZE), MAX_PART_SIZE)


def content_type(key: str) -> str:
    return mimetypes.guess_type(key.rsplit("/", 1)[-1])[0] or "application/octet-stream"


class S3Upload(Upload):
    """Writes one key; nothing is visible until :meth:`commit`.

    Bytes are buffered up to one part. A body that fits in one part is sent
    with a single ``put_object`` at commit. A larger one starts a multipart
    upload when its first part is full; full parts go out on background
    threads while the client keeps sending, at most ``concurrency`` at a
    time, so memory stays at ``concurrency + 1`` parts whatever the size of
    the body. Commit sends the last part and completes the upload; abort
    (or a failed part) aborts it, so no parts are left behind. Commit
    returns the ETag S3 gave the written object, when its answer has one
    (Ceph 16 sends an empty one for a multipart completion).

    Part bodies are ``bytearray``s, filled in place and reused once sent:
    botocore sends them with one ``sendall`` and hashes them (for the
    signature) in one pass, where ``bytes`` would be wrapped in a BytesIO,
    copied again in 1 MiB and 128 KiB reads, and sent after an ``Expect:
    100-continue`` round trip.
    """

    def __init__(self, client: Any, bucket: str, key: str, rel: str, part_size: int, concurrency: int) -> None:
        self.client, self.bucket, self.key, self.rel = client, bucket, key, rel
        self.part_size = part_size
        self.concurrency = concurrency
        self.first: list[bytes] = []  # the first part, as written: a small file never takes a whole part
        self.buffer: bytearray | None = None  # a later part, filled in place
        self.buffered = 0  # bytes of the part being filled
        self.spare: list[bytearray] = []  # buffers of parts already sent
        self.upload_id: str | None = None
        self.parts: list[Future[dict[str, Any]]] = []
        self.slots = threading.Semaphore(concurrency)
        self.pool: ThreadPoolExecutor | None = None
        self.failure: BaseException | None = None  # of the first part that failed
        self.finished = False
        self.size = 0  # bytes written so far

    def write(self, data: Any) -> int:
        self.check_open()
        view = memoryview(data).cast("B")
        size = view.nbytes
        self.size += size
        while view:
            room = self.next_part_size() - self.buffered
            piece, view = view[:room], view[room:]
            self.keep(data if piece.nbytes == size and isinstance(data, bytes) else piece)
            if self.buffered == self.next_part_size():
                self.send_part()
        return size

    def next_part_size(self) -> int:
        return part_size_for(len(self.parts) + 1, self.part_size)

    def keep(self, piece: Any) -> None:
        """Add ``piece`` to the part being filled."""
        size = len(piece) if isinstance(piece, bytes) else piece.nbytes
        if not self.parts:
            self.first.append(piece if isinstance(piece, bytes) else bytes(piece))
        else:
            if self.buffer is None:
                self.buffer = self.new_buffer()
            self.buffer[self.buffered : self.buffered + size] = piece
        self.buffered += size

    def new_buffer(self) -> bytearray:
        size = self.next_part_size()
        while self.spare:
            buffer = self.spare.pop()
            if len(buffer) == size:
                return buffer
        return bytearray(size)

    def take_part(self) -> bytearray:
        """The part filled so far, as one buffer; the next part starts empty."""
        if not self.parts:
            body = bytearray().join(self.first)
            self.first = []
        else:
            assert self.buffer is not None
            body, self.buffer = self.buffer, None
            if self.buffered < len(body):
                del body[self.buffered :]  # the last part: shorter, and never reused
        self.buffered = 0
        return body

    def check_open(self) -> None:
        if self.finished:
            raise errors.StorageError(self.rel, "upload already committed or aborted")
        if self.failure is not None:
            raise self.failure

    def start_multipart(self) -> None:
        with translated(self.rel):
            created = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=content_type(self.key)
            )
        self.upload_id = created["UploadId"]
        self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="davgate-s3-part")

    def send_part(self) -> None:
        """Hand the part to a sender thread; wait first while ``concurrency`` parts are in flight."""
        if self.upload_id is None:
            self.start_multipart()
        assert self.pool is not None
        number = len(self.parts) + 1
        if number > MAX_PARTS:
            raise errors.NoSpace(self.rel, "file too large for one S3 object")
        body = self.take_part()
        self.slots.acquire()
        try:
            self.check_open()
            part = self.pool.submit(self.upload_part, number, body)
        except BaseException:
            self.slots.release()
            raise
        part.add_done_callback(self.part_done)
        self.parts.append(part)

    def part_done(self, part: Future[dict[str, Any]]) -> None:
        if not part.cancelled() and part.exception() is not None and self.failure is None:
            self.failure = part.exception()
        self.slots.release()

    def upload_part(self, number: int, body: bytearray) -> dict[str, Any]:
        with translated(self.rel):
            sent = self.client.upload_part(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=body
            )
        if not self.finished:
            self.spare.append(body)
        return {"PartNumber": number, "ETag": sent["ETag"]}

    def commit(self) -> Entry | None:
        self.check_open()
        if self.upload_id is None:
            body = self.take_part()
            with translated(self.rel):
                answer = self.client.put_object(
                    Bucket=self.bucket, Key=self.key, Body=body or b"", ContentType=content_type(self.key)
                )
        else:
            if self.buffered:
                self.send_part()
            sent = [part.result() for part in self.parts]
            with translated(self.rel):
                answer = self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": sent}
                )
        self.finish()
        etag = unquoted(answer.get("ETag"))
        if not etag and self.upload_id is not None:  # Ceph RGW 16 answers a completed multipart upload with ""
            etag = multipart_etag(sent)
        return self.written(etag)

    def written(self, etag: str) -> Entry | None:
        """The object as S3's answer to the commit describes it; None if the answer had no ETag."""
        if not etag:
            return None
        name = self.rel.rsplit("/", 1)[-1]
        return Entry(name, is_folder=False, size=self.size, modified=time.time(), etag=etag)

    def abort(self) -> None:
        if self.finished:
            return
        self.finish()
        if self.upload_id is None:
            return
        try:
            with translated(self.rel):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        except errors.StorageError as error:
            log.warning("could not abort the multipart upload of %s (%s): %s", self.key, self.upload_id, error)

    def finish(self) -> None:
        """No more writes; wait for (or cancel) the parts in flight, free the buffers."""
        self.finished = True
        self.first, self.buffer, self.buffered = [], None, 0
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        self.spare = []


def multipart_etag(parts: list[dict]) -> str:
    """S3's ETag of an object made of ``parts``: the MD5 of their MD5s, then ``-`` and their count."""
    digests = b"".join(bytes.fromhex(unquoted(part["ETag"])) for part in parts)
    return f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(parts)}"
