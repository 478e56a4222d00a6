"""The ``s3`` provider: a bucket (or a prefix of one) on Ceph RADOS Gateway or any S3.

Folders are key prefixes: ``a/b.txt`` is the file b.txt in the folder a.
Empty folders exist through markers, zero-byte objects named ``a/``. A
listing is one ``list_objects_v2`` with '/' as delimiter per page of
members. Reads are ranged GETs (:mod:`.download`), writes streamed
multipart uploads (:mod:`.upload`), copies and moves server-side
(:mod:`.copy`). Everything raises davgate errors, mapped in :mod:`.client`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

from davgate import errors
from davgate.hardening.outbound import Opener
from davgate.providers import Entry, Mount, Upload
from davgate.providers.s3.bucket import check_bucket, check_options, clean_prefix
from davgate.providers.s3.client import LazyClient, translated
from davgate.providers.s3.copy import Copier
from davgate.providers.s3.download import ObjectReader
from davgate.providers.s3.listing import (
    FolderEntry,
    Page,
    file_entry,
    members,
    pages,
    summary,
    unquoted,
)
from davgate.providers.s3.stale import abort_stale_uploads
from davgate.providers.s3.upload import S3Upload, content_type

log = logging.getLogger("davgate.providers.s3")
DELETE_BATCH = 1000  # S3's limit for delete_objects


class S3Mount(Mount):
    """Serves the keys of ``options.bucket`` below ``options.prefix``."""

    def __init__(self, path: str, options: Any, opener: Opener | None = None) -> None:
        """``opener``: how to open connections (the outbound rule's, for API-made mounts); None: botocore's way."""
        super().__init__(path, options)
        self.bucket = options.bucket
        check_options(path, options)
        self.root = clean_prefix(options.prefix)
        self.page_size = options.page_size
        self.clients = LazyClient(options, opener)
        self._copier: Copier | None = None

    @property
    def client(self) -> Any:
        """The mount's boto3 client, made on first use (so never shared across a fork)."""
        return self.clients.get()

    @property
    def copier(self) -> Copier:
        if self._copier is None:
            self._copier = Copier(self.client, self.bucket)
        return self._copier

    # -- keys ------------------------------------------------------------------------

    def key(self, rel: str) -> str:
        """The object key of ``rel``; refuses paths that are not plain relative paths."""
        if rel and any(s in ("", ".", "..") for s in rel.split("/")):
            raise errors.OutsideMount(rel)
        return self.root + rel

    def folder_key(self, rel: str) -> str:
        key = self.key(rel)
        return f"{key}/" if rel else key

    def head(self, rel: str) -> Page | None:
        """The HEAD of the object ``rel``, or None if there is none (the root is a folder)."""
        if rel == "":
            return None
        try:
            with translated(rel):
                return self.client.head_object(Bucket=self.bucket, Key=self.key(rel))
        except errors.NotFound:
            return None

    def folder_exists(self, rel: str) -> bool:
        """A marker or any key below ``rel/``: one request for one key."""
        if rel == "":
            return True
        with translated(rel):
            page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.folder_key(rel), MaxKeys=1)
        return bool(page.get("Contents"))

    def require_parent(self, rel: str) -> None:
        parent = rel.rpartition("/")[0]
        if not self.folder_exists(parent):
            raise errors.NotFound(rel, "parent folder does not exist")

    def keep_parent(self, rel: str) -> None:
        """A folder made only of keys below it would vanish with its last member: mark it."""
        parent = rel.rpartition("/")[0]
        if parent:
            with translated(parent):
                self.client.put_object(Bucket=self.bucket, Key=self.folder_key(parent), Body=b"")

    def folder_entry(self, name: str, rel: str) -> FolderEntry:
        return FolderEntry(name, lambda: self.summarize(self.folder_key(rel)))

    def summarize(self, prefix: str) -> tuple[str, float]:
        with translated(prefix):
            return summary(pages(self.client, self.bucket, prefix, self.page_size), prefix)

    # -- required --------------------------------------------------------------------

    def stat(self, rel: str) -> Entry | None:
        name = rel.rpartition("/")[2]
        if rel == "":
            return self.folder_entry("", "")
        head = self.head(rel)
        if head is not None:
            return file_entry(name, head)
        return self.folder_entry(name, rel) if self.folder_exists(rel) else None

    def list(self, rel: str) -> list[Entry]:
        prefix = self.folder_key(rel)
        with translated(rel):
            found, exists = members(pages(self.client, self.bucket, prefix, self.page_size), prefix, self.summarize)
        if not exists and rel != "":
            raise errors.NotFound(rel)
        return found

    def open_read(self, rel: str) -> BinaryIO:
        if rel == "":
            raise errors.Conflict(rel, "is a folder")
        return ObjectReader(self.client, self.bucket, self.key(rel), rel)  # type: ignore[return-value]

    def open_upload(self, rel: str) -> Upload:
        if rel == "" or self.folder_exists(rel):
            raise errors.Conflict(rel, "a folder is in the way")
        self.require_parent(rel)
        options = self.options
        return S3Upload(self.client, self.bucket, self.key(rel), rel, options.part_size, options.upload_concurrency)

    def make_folder(self, rel: str) -> None:
        if rel == "" or self.stat(rel) is not None:
            raise errors.Exists(rel)
        self.require_parent(rel)
        with translated(rel):
            self.client.put_object(Bucket=self.bucket, Key=self.folder_key(rel), Body=b"")

    def create_empty(self, rel: str) -> Entry:
        """A conditional PUT (``If-None-Match: *``): an object already there is :class:`errors.Exists`."""
        self.check_target(rel)
        try:
            with translated(rel):
                answer = self.client.put_object(
                    Bucket=self.bucket, Key=self.key(rel), Body=b"", ContentType=content_type(rel), IfNoneMatch="*"
                )
        except errors.PreconditionFailed as error:
            raise errors.Exists(rel) from error
        return Entry(rel.rpartition("/")[2], is_folder=False, modified=time.time(), etag=unquoted(answer.get("ETag")))

    def remove_file(self, rel: str) -> None:
        if self.head(rel) is None:
            if self.folder_exists(rel):
                raise errors.Conflict(rel, "is a folder")
            raise errors.NotFound(rel)
        with translated(rel):
            self.client.delete_object(Bucket=self.bucket, Key=self.key(rel))
        self.keep_parent(rel)

    def remove_folder(self, rel: str) -> None:
        if rel == "":
            raise errors.Forbidden(rel, "the mount's root cannot be removed")
        if self.head(rel) is not None:
            raise errors.Conflict(rel, "is a file")
        if not self.delete_below(self.folder_key(rel), rel):
            raise errors.NotFound(rel)
        self.keep_parent(rel)

    def delete_below(self, prefix: str, rel: str) -> int:
        """Delete every key below ``prefix``, 1000 per request; the number deleted."""
        deleted = 0
        listing = pages(self.client, self.bucket, prefix, DELETE_BATCH, members_only=False)
        while True:
            with translated(rel):
                page = next(listing, None)
            if page is None:
                return deleted
            keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
            if keys:
                self.delete_keys(keys, rel)
                deleted += len(keys)

    def delete_keys(self, keys: Sequence[Mapping[str, str]], rel: str) -> None:
        """Delete ``keys`` in one request; those it could not delete, one by one.

        Ceph refuses a key of the batch that another request is writing at
        that moment (with "UnknownError"); a single delete then succeeds, or
        raises the error that tells what is wrong.
        """
        with translated(rel):
            answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
        for failed in answer.get("Errors") or []:
            with translated(rel):
                self.client.delete_object(Bucket=self.bucket, Key=failed["Key"])

    # -- optional fast paths -----------------------------------------------------------

    def copy_file(self, src: str, dest: str) -> bool:
        head = self.head(src)
        if head is None:
            raise errors.NotFound(src)
        self.check_target(dest)
        self.copier.copy(self.key(src), self.key(dest), head, dest)
        return True

    def check_target(self, dest: str) -> None:
        """A file may be written at ``dest``: its folder exists and no folder is there."""
        if dest == "" or self.folder_exists(dest):
            raise errors.Conflict(dest, "a folder is in the way")
        self.require_parent(dest)

    def move(self, src: str, dest: str) -> bool:
        """Copy server-side, then delete the source: a file, or a folder key by key."""
        if src == "":
            raise errors.Forbidden(src, "the mount's root cannot be moved")
        head = self.head(src)
        if head is not None:
            self.check_target(dest)
            self.copier.copy(self.key(src), self.key(dest), head, dest)
            with translated(src):
                self.client.delete_object(Bucket=self.bucket, Key=self.key(src))
        else:
            self.move_folder(src, dest)
        self.keep_parent(src)
        return True

    def move_folder(self, src: str, dest: str) -> None:
        if not self.folder_exists(src):
            raise errors.NotFound(src)
        if dest == src or dest.startswith(f"{src}/"):
            raise errors.Conflict(dest, "a folder cannot move into itself")
        if dest == "" or self.stat(dest) is not None:
            raise errors.Exists(dest)
        self.require_parent(dest)
        self.copier.copy_tree(self.folder_key(src), self.folder_key(dest), self.page_size, src)
        self.delete_below(self.folder_key(src), src)

    def version(self, stream: BinaryIO) -> str | None:
        """The ETag the GET that opened the object answered with."""
        return unquoted(getattr(stream, "etag", "")) or None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Check the bucket (creating it if configured), then abort uploads abandoned by dead processes."""
        check_bucket(self.client, self.path, self.options)
        try:
            abort_stale_uploads(self.client, self.bucket, self.root)
        except errors.StorageError as error:  # not allowed to list or abort uploads, or down: serve anyway
            log.warning("%s: cannot look for abandoned multipart uploads: %s", self.path, error)

    def close(self) -> None:
        self.clients.close()
        self._copier = None
