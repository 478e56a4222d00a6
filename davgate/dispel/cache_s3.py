"""The S3 cache backend: result blobs as objects in a bucket (Ceph RGW in production).

A result is made in a local staging file (the pipeline process writes a
file), then :meth:`S3Backend.commit` uploads it with the s3 provider's
upload: one PUT for a small blob, a multipart upload for a large one, which
S3 shows only once it is completed. A reader therefore never sees a partial
object; a failed upload is aborted. Reads are the s3 provider's seekable,
ranged GETs, so Range requests fetch only what they serve.

The client, its timeouts and retries, and the mapping of S3 failures to
davgate's errors are the s3 provider's (:mod:`davgate.providers.s3.client`).
Objects are named ``<prefix><key>``.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from typing import Any, BinaryIO

from davgate import errors
from davgate.dispel.cache import BlobInfo, CacheBackend, Staging, check_key
from davgate.providers.s3.bucket import check_bucket, check_client_options, clean_prefix
from davgate.providers.s3.client import LazyClient, translated
from davgate.providers.s3.download import ObjectReader
from davgate.providers.s3.upload import S3Upload

log = logging.getLogger("davgate.dispel.cache")

STALE_UPLOAD = 3600.0  # seconds after which an unfinished multipart upload is a dead process's litter
SECTION = "cache"


def check_options(options: Any) -> None:
    """Values S3 or boto3 would refuse later, refused when the configuration is read."""
    check_client_options(SECTION, options)


def default_staging() -> str:
    return os.path.join(tempfile.gettempdir(), "davgate-dispel-staging")


class S3Backend(CacheBackend):
    """Blobs as objects ``<prefix><key>`` of ``options.bucket``; staged in ``options.staging``."""

    def __init__(self, options: Any) -> None:
        check_options(options)
        self.options = options
        self.bucket = options.bucket
        self.prefix = clean_prefix(options.prefix)
        self.staging = Staging(options.staging or default_staging())
        self.clients = LazyClient(options)

    @property
    def client(self) -> Any:
        """The boto3 client, made on first use (so never shared across a fork)."""
        return self.clients.get()

    def object_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def stage(self) -> str:
        return self.staging.new()

    def commit(self, key: str, staged: str) -> BlobInfo:
        options = self.options
        object_key = self.object_key(key)
        upload = S3Upload(
            self.client, self.bucket, object_key, where(key), options.part_size, options.upload_concurrency
        )
        try:
            with open(staged, "rb") as source:
                while chunk := source.read(options.part_size):
                    upload.write(chunk)
            upload.commit()
        except BaseException:
            upload.abort()
            raise
        finally:
            self.staging.discard(staged)
        info = self.stat(key)
        if info is None:
            raise errors.BadGateway(where(key), "S3 does not show an object it has just stored")
        return info

    def discard(self, staged: str) -> None:
        self.staging.discard(staged)

    def stat(self, key: str) -> BlobInfo | None:
        try:
            with translated(where(key)):
                head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except errors.NotFound:
            return None
        size = int(head["ContentLength"])
        return BlobInfo(size, f"{str(head.get('ETag', '')).strip(chr(34))}-{size:x}")

    def open(self, key: str) -> BinaryIO:
        try:
            return ObjectReader(self.client, self.bucket, self.object_key(key), where(key))  # type: ignore[return-value]
        except errors.NotFound:
            raise FileNotFoundError(where(key)) from None

    def delete(self, key: str) -> None:
        with translated(where(key)):
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def start(self) -> None:
        """Check the bucket (creating it with ``create_bucket``); clean up what dead processes left."""
        check_bucket(self.client, SECTION, self.options, key=SECTION)
        self.staging.clean()
        try:
            self.abort_stale_uploads()
        except errors.StorageError as error:
            log.warning("cache: could not list unfinished uploads in %s: %s", self.bucket, error)

    def abort_stale_uploads(self) -> None:
        """Abort multipart uploads under the prefix that no live process can still be sending."""
        cutoff = time.time() - STALE_UPLOAD
        paginator = self.client.get_paginator("list_multipart_uploads")
        with translated(self.prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for upload in page.get("Uploads", ()):
                    if upload["Initiated"].timestamp() < cutoff:
                        log.info("cache: aborting the unfinished upload of %s (%s)", upload["Key"], upload["Initiated"])
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )

    def close(self) -> None:
        self.clients.close()


def where(key: str) -> str:
    """How a blob is named in errors and logs."""
    return f"DISPEL cache blob {key}"
