"""Listing an S3 prefix as a folder: pages of ``list_objects_v2``, entries, folder ETags.

Folders are key prefixes ending in '/'. A folder exists if its marker (the
zero-byte object ``prefix/``) exists or any key lies below it; the marker
lets empty folders exist and is never listed as a member.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

from davgate import errors
from davgate.providers import Entry

Page = dict[str, Any]


def pages(client: Any, bucket: str, prefix: str, page_size: int, *, members_only: bool = True) -> Iterator[Page]:
    """Every page of keys under ``prefix``: direct members only (with '/' as delimiter), or all keys."""
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": page_size}
    if members_only:
        request["Delimiter"] = "/"
    while True:
        page = client.list_objects_v2(**request)
        yield page
        if not page.get("IsTruncated"):
            return
        request["ContinuationToken"] = page["NextContinuationToken"]


def unquoted(etag: str | None) -> str:
    """S3 sends ETags in quotes; davgate's are bare."""
    return (etag or "").strip('"')


def file_entry(name: str, item: Page) -> Entry:
    """An Entry from a listed object or a HEAD response (their field names differ)."""
    return Entry(
        name=name,
        is_folder=False,
        size=int(item.get("Size") or item.get("ContentLength") or 0),
        modified=item["LastModified"].timestamp(),
        etag=unquoted(item.get("ETag")),
        content_type=item.get("ContentType"),
    )


def page_entries(
    page: Page, prefix: str, summarize: Callable[[str], tuple[str, float]]
) -> tuple[list[Entry], list[Entry]]:
    """The files and folders a page lists under ``prefix`` (the folder's marker left out)."""
    files = [file_entry(item["Key"][len(prefix) :], item) for item in page.get("Contents", ()) if item["Key"] != prefix]
    folders: list[Entry] = []
    for common in page.get("CommonPrefixes", ()):
        name = common["Prefix"][len(prefix) : -1]
        if name:
            folders.append(FolderEntry(name, functools.partial(summarize, common["Prefix"])))
    return files, folders


def members(
    pages_of_folder: Iterator[Page], prefix: str, summarize: Callable[[str], tuple[str, float]]
) -> tuple[list[Entry], bool]:
    """All members of a folder, and whether it exists at all (marker or keys).

    A name that is both a file and a folder (only other S3 tools make those)
    is shown as the file, as ``stat`` does.
    """
    files: dict[str, Entry] = {}
    folders: dict[str, Entry] = {}
    exists = False
    for page in pages_of_folder:
        exists = exists or bool(page.get("Contents") or page.get("CommonPrefixes"))
        page_files, page_folders = page_entries(page, prefix, summarize)
        files.update((entry.name, entry) for entry in page_files if entry.name)
        folders.update((entry.name, entry) for entry in page_folders)
    return [*files.values(), *(entry for name, entry in folders.items() if name not in files)], exists


def summary(pages_of_folder: Iterator[Page], prefix: str) -> tuple[str, float]:
    """A folder's ETag and modification time, from one listing of it.

    The ETag digests every member's name, ETag, size and time, so it changes
    when a member is added, replaced or removed. The time is the newest of
    the members' and the marker's.
    """
    digest = hashlib.blake2b(digest_size=16)
    newest = 0.0
    for page in pages_of_folder:
        for item in page.get("Contents", ()):
            modified = item["LastModified"].timestamp()
            newest = max(newest, modified)
            if item["Key"] != prefix:
                digest.update(f"f\0{item['Key']}\0{item.get('ETag')}\0{item.get('Size')}\0{modified}\0".encode())
        for common in page.get("CommonPrefixes", ()):
            digest.update(f"d\0{common['Prefix']}\0".encode())
    return "d-" + digest.hexdigest(), newest


class Summarized:
    """An Entry field that a :class:`FolderEntry` reads from its summary."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __get__(self, entry: FolderEntry | None, owner: type | None = None) -> Any:
        if entry is None:
            return self
        return entry.summary()[self.index]

    def __set__(self, entry: FolderEntry, value: Any) -> None:
        """Entry's constructor sets defaults here; the summary decides."""


class FolderEntry(Entry):
    """A folder whose ETag and time are computed by one listing of it, when first read.

    S3 keeps nothing per prefix that changes with its members, so a folder's
    ETag is a digest of its listing. Making that listing for every folder a
    stat or a listing names would cost one request per folder; this way only
    a caller that reads ``etag`` or ``modified`` pays for it, and a listed
    folder and a stat of it agree. The listing is made once per entry.
    """

    etag = Summarized(0)
    modified = Summarized(1)
    _summarize: Callable[[], tuple[str, float]]

    def __init__(self, name: str, summarize: Callable[[], tuple[str, float]]) -> None:
        object.__setattr__(self, "_summarize", summarize)
        super().__init__(name=name, is_folder=True)

    def summary(self) -> tuple[str, float]:
        cached = self.__dict__.get("_summary")
        if cached is None:
            try:
                cached = self._summarize()
            except errors.StorageError as error:
                # Read by WsgiDAV itself (getetag, If-Match): the HTTP boundary is here.
                raise errors.to_dav_error(error) from error
            object.__setattr__(self, "_summary", cached)
        return cached
