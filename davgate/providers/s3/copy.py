"""Server-side copies: the bytes never pass through davgate.

An object up to 5 GiB is copied with one ``copy_object``; a larger one with
a multipart upload whose parts are ``upload_part_copy`` ranges of the source.
A folder is copied key by key, several at a time.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from davgate import errors
from davgate.providers.s3.client import translated
from davgate.providers.s3.listing import Page, pages

log = logging.getLogger("davgate.providers.s3")

GiB = 1024 * 1024 * 1024
MAX_SINGLE_COPY = 5 * GiB  # S3's limit for copy_object
COPY_PART_SIZE = 512 * 1024 * 1024
PARALLEL_COPIES = 8


class Copier:
    """Copies keys inside one bucket, server-side."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        self.single_limit = MAX_SINGLE_COPY
        self.part_size = COPY_PART_SIZE

    def copy(self, source: str, target: str, head: Page, rel: str) -> None:
        """Copy the object ``source`` (whose HEAD is ``head``) to ``target``."""
        size = int(head.get("ContentLength") or head.get("Size") or 0)
        if size <= self.single_limit:
            with translated(rel):
                self.client.copy_object(
                    Bucket=self.bucket,
                    Key=target,
                    CopySource={"Bucket": self.bucket, "Key": source},
                    CopySourceIfMatch=head["ETag"],
                    MetadataDirective="COPY",
                )
        else:
            self.copy_in_parts(source, target, head, size, rel)

    def copy_in_parts(self, source: str, target: str, head: Page, size: int, rel: str) -> None:
        part_size = max(self.part_size, -(-size // 10_000))
        ranges = [(start, min(start + part_size, size) - 1) for start in range(0, size, part_size)]
        with translated(rel):
            if "ContentType" not in head:  # a listed object: its type is not listed
                head = {**head, **self.client.head_object(Bucket=self.bucket, Key=source, IfMatch=head["ETag"])}
            upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=target, ContentType=head["ContentType"]
            )["UploadId"]

        def copy_part(numbered: tuple[int, tuple[int, int]]) -> dict[str, Any]:
            number, (first, last) = numbered
            with translated(rel):
                done = self.client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=target,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": self.bucket, "Key": source},
                    CopySourceRange=f"bytes={first}-{last}",
                    CopySourceIfMatch=head["ETag"],
                )
            return {"PartNumber": number, "ETag": done["CopyPartResult"]["ETag"]}

        try:
            with ThreadPoolExecutor(min(PARALLEL_COPIES, len(ranges)), thread_name_prefix="davgate-s3-copy") as pool:
                parts = list(pool.map(copy_part, enumerate(ranges, start=1)))
            with translated(rel):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=target, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
        except BaseException:
            self.abort(target, upload_id)
            raise

    def abort(self, key: str, upload_id: str) -> None:
        try:
            with translated(key):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except errors.StorageError as error:
            log.warning("could not abort the multipart copy to %s (%s): %s", key, upload_id, error)

    def copy_tree(self, source: str, target: str, page_size: int, rel: str) -> int:
        """Copy every key below the prefix ``source`` to below ``target``; the number copied."""
        copied = 0
        listing = pages(self.client, self.bucket, source, page_size, members_only=False)
        with ThreadPoolExecutor(PARALLEL_COPIES, thread_name_prefix="davgate-s3-copy") as pool:
            while True:
                with translated(rel):
                    page = next(listing, None)
                if page is None:
                    break
                items = page.get("Contents", ())
                moves = [(item["Key"], target + item["Key"][len(source) :], item) for item in items]
                for _ in pool.map(lambda m: self.copy(m[0], m[1], m[2], rel), moves):
                    copied += 1
        return copied
