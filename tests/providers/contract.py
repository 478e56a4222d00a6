"""The provider contract: what every storage backend MUST do, tested through :class:`Mount` only.

A provider's tests inherit :class:`MountContract` and write one factory::

    class TestSftpMount(MountContract):
        def make_mount(self, tmp_path: Path) -> Mount:
            return SftpMount("/data", options_for(tmp_path))

The suite never looks behind the Mount API, so it runs unchanged on local
folders, SFTP and S3. Rules it holds every provider to (RFC 2119 words):

- ``make_mount`` MUST return a mount whose root is an empty folder; the
  fixture calls ``start()`` before and ``teardown_mount()`` after each test.
- A missing parent folder is :class:`errors.NotFound`, for ``make_folder``,
  uploads, ``copy_file`` and ``move`` alike (not ``Conflict``: NotFound is the
  stricter choice, and the local provider, like ``mkdir(2)``, makes it).
  WsgiDAV itself answers 409 for MKCOL and PUT below a missing collection
  before a provider is asked.
- An Entry is named by the last segment of its path; the root's name is
  "" (resources show the mount's own name there, never a backend's).
- ``make_folder`` of an existing name MUST raise :class:`errors.Exists`;
  removing or listing something missing MUST raise :class:`errors.NotFound`;
  ``stat`` of something missing returns None and never raises.
- An upload is invisible until ``commit`` and replaces atomically: readers
  see the old content or the new one, never a mix; ``abort`` leaves the old
  content (or nothing). When two uploads race, the last commit wins.
- ETags are non-empty, unquoted strings; a file's changes with its content
  and with nothing else that readers do; a folder's changes when a member is
  added, replaced or removed (NextCloud relies on it). Changes deeper down
  are not required to reach a folder's ETag.
- Optional fast paths (``copy_file``, ``move``, ``set_modified``) are tested
  only when a provider overrides them; ``space`` is always called.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from davgate import errors
from davgate.providers import Entry, Mount
from davgate.providers.resources import supports

MiB = 1024 * 1024
CONTENT = b"0123456789abcdefghijklmnopqrstuvwxyz" * 10
NAMES = ["Grüße über.txt", "a b+c&d%.bin", "日本語 テキスト.txt", "100% #1 [x] {y}; ~'q'.txt"]


# -- helpers: the Upload protocol the way WsgiDAV drives it -----------------------


def put(mount: Mount, rel: str, data: bytes, chunk: int = 64 * 1024) -> None:
    """Upload ``data`` to ``rel`` in ``chunk``-sized writes, close, commit."""
    upload = mount.open_upload(rel)
    try:
        for start in range(0, len(data), chunk):
            assert upload.write(data[start : start + chunk]) == len(data[start : start + chunk])
        upload.close()
        upload.commit()
    except BaseException:
        upload.abort()
        raise


def put_refused(mount: Mount, rel: str, error: type[Exception] | tuple[type[Exception], ...]) -> None:
    """Upload to ``rel`` and require ``error`` at open, write or commit; then abort."""
    upload = None
    with pytest.raises(error):
        upload = mount.open_upload(rel)
        upload.write(CONTENT)
        upload.close()
        upload.commit()
    if upload is not None:
        upload.abort()


def read(mount: Mount, rel: str) -> bytes:
    with mount.open_read(rel) as stream:
        return stream.read()


def read_exactly(stream: BinaryIO, size: int) -> bytes:
    """Read up to ``size`` bytes, tolerating short reads as WsgiDAV does."""
    parts = []
    while size > 0 and (part := stream.read(size)):
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def members(mount: Mount, rel: str) -> dict[str, Entry]:
    entries = mount.list(rel)
    names = [entry.name for entry in entries]
    assert len(names) == len(set(names)), f"duplicate names in listing: {names}"
    return {entry.name: entry for entry in entries}


def etag(mount: Mount, rel: str) -> str:
    entry = mount.stat(rel)
    assert entry is not None, rel
    return entry.etag


class MountContract:
    """What every provider must do. Subclasses implement :meth:`make_mount`."""

    def make_mount(self, tmp_path: Path) -> Mount:
        raise NotImplementedError

    def teardown_mount(self, mount: Mount) -> None:
        mount.close()

    @pytest.fixture
    def mount(self, tmp_path: Path) -> Iterator[Mount]:
        mount = self.make_mount(tmp_path)
        mount.start()
        try:
            yield mount
        finally:
            self.teardown_mount(mount)

    # -- stat ------------------------------------------------------------------

    def test_root_is_an_empty_folder(self, mount: Mount) -> None:
        root = mount.stat("")
        assert root is not None and root.is_folder
        assert mount.list("") == []

    def test_root_entry_has_an_empty_name(self, mount: Mount) -> None:
        # Resources show the mount's own name for it; a backend folder name must not leak.
        root = mount.stat("")
        assert root is not None and root.name == ""

    def test_stat_of_missing_is_none(self, mount: Mount) -> None:
        put(mount, "file.txt", CONTENT)
        for rel in ("missing", "missing.txt", "no/such/file.txt", "file.txt/below"):
            assert mount.stat(rel) is None, rel

    def test_stat_describes_files_and_folders(self, mount: Mount) -> None:
        mount.make_folder("sub")
        put(mount, "sub/file.txt", CONTENT)
        folder, file = mount.stat("sub"), mount.stat("sub/file.txt")
        assert folder is not None and folder.is_folder and folder.name == "sub"
        assert file is not None and not file.is_folder and file.name == "file.txt"
        assert file.size == len(CONTENT) and file.modified > 0

    # -- upload and read -------------------------------------------------------

    def test_upload_creates_a_readable_file(self, mount: Mount) -> None:
        put(mount, "new.txt", CONTENT)
        assert read(mount, "new.txt") == CONTENT
        assert set(members(mount, "")) == {"new.txt"}

    def test_read_is_seekable(self, mount: Mount) -> None:
        put(mount, "file.txt", CONTENT)
        with mount.open_read("file.txt") as stream:
            assert stream.seekable()
            stream.seek(10)
            assert read_exactly(stream, 26) == CONTENT[10:36]
            stream.seek(len(CONTENT) - 5)
            assert read_exactly(stream, 100) == CONTENT[-5:]
            stream.seek(0)
            assert read_exactly(stream, 3) == CONTENT[:3]

    def test_read_of_missing_raises_not_found(self, mount: Mount) -> None:
        with pytest.raises(errors.NotFound):
            mount.open_read("missing.txt")

    def test_upload_replaces_content(self, mount: Mount) -> None:
        put(mount, "file.txt", CONTENT)
        put(mount, "file.txt", b"short")
        assert read(mount, "file.txt") == b"short"
        entry = mount.stat("file.txt")
        assert entry is not None and entry.size == 5
        assert set(members(mount, "")) == {"file.txt"}

    def test_replacement_is_invisible_until_commit(self, mount: Mount) -> None:
        put(mount, "file.txt", CONTENT)
        before = mount.stat("file.txt")
        upload = mount.open_upload("file.txt")
        upload.write(b"new content")
        upload.close()
        assert read(mount, "file.txt") == CONTENT
        assert mount.stat("file.txt") == before
        assert list(members(mount, "")) == ["file.txt"]
        upload.commit()
        assert read(mount, "file.txt") == b"new content"

    def test_open_reader_never_sees_a_mix(self, mount: Mount) -> None:
        old = bytes(range(256)) * 1024  # larger than any read buffer
        put(mount, "file.txt", old)
        with mount.open_read("file.txt") as stream:
            head = read_exactly(stream, 50)
            put(mount, "file.txt", b"X" * len(old))
            try:
                stream.seek(0)
                seen = read_exactly(stream, len(old) + 1)
            except errors.StorageError:
                return  # refusing to go on is fine; mixing is not
        assert head == old[:50]
        assert seen == old

    def test_new_upload_is_invisible_until_commit(self, mount: Mount) -> None:
        put(mount, "old.txt", CONTENT)
        upload = mount.open_upload("new.txt")
        upload.write(CONTENT)
        assert mount.stat("new.txt") is None
        assert set(members(mount, "")) == {"old.txt"}
        upload.close()
        upload.commit()
        assert set(members(mount, "")) == {"old.txt", "new.txt"}

    def test_abort_of_new_file_leaves_nothing(self, mount: Mount) -> None:
        upload = mount.open_upload("new.txt")
        upload.write(CONTENT)
        upload.close()
        upload.abort()
        assert mount.stat("new.txt") is None
        assert mount.list("") == []

    def test_abort_keeps_old_content(self, mount: Mount) -> None:
        put(mount, "file.txt", CONTENT)
        before = mount.stat("file.txt")
        upload = mount.open_upload("file.txt")
        upload.write(b"never")
        upload.close()
        upload.abort()
        assert read(mount, "file.txt") == CONTENT
        assert mount.stat("file.txt") == before
        assert list(members(mount, "")) == ["file.txt"]

    def test_last_commit_wins(self, mount: Mount) -> None:
        first, second = mount.open_upload("file.txt"), mount.open_upload("file.txt")
        first.write(b"first")
        second.write(b"second")
        second.close()
        second.commit()
        first.close()
        first.commit()
        assert read(mount, "file.txt") == b"first"
        assert list(members(mount, "")) == ["file.txt"]

    def test_zero_byte_file(self, mount: Mount) -> None:
        put(mount, "empty", b"")
        entry = mount.stat("empty")
        assert entry is not None and not entry.is_folder and entry.size == 0
        assert read(mount, "empty") == b""
        assert members(mount, "")["empty"].size == 0
        put(mount, "file.txt", CONTENT)
        put(mount, "file.txt", b"")
        assert read(mount, "file.txt") == b""

    def test_large_upload_round_trips(self, mount: Mount) -> None:
        data = os.urandom(20 * MiB)
        put(mount, "large.bin", data, chunk=MiB)
        entry = mount.stat("large.bin")
        assert entry is not None and entry.size == len(data)
        digest = hashlib.sha256()
        with mount.open_read("large.bin") as stream:
            while chunk := stream.read(MiB):
                digest.update(chunk)
            stream.seek(3 * MiB - 100)
            assert read_exactly(stream, 200) == data[3 * MiB - 100 : 3 * MiB + 100]
        assert digest.hexdigest() == hashlib.sha256(data).hexdigest()

    def test_upload_into_missing_folder_raises_not_found(self, mount: Mount) -> None:
        put_refused(mount, "missing/file.txt", errors.NotFound)
        assert mount.list("") == []

    def test_upload_onto_a_folder_raises_conflict(self, mount: Mount) -> None:
        mount.make_folder("sub")
        put(mount, "sub/child.txt", CONTENT)
        put_refused(mount, "sub", errors.Conflict)
        entry = mount.stat("sub")
        assert entry is not None and entry.is_folder
        assert read(mount, "sub/child.txt") == CONTENT

    def test_upload_below_a_file_fails(self, mount: Mount) -> None:
        put(mount, "file.txt", CONTENT)
        put_refused(mount, "file.txt/child.txt", (errors.Conflict, errors.NotFound))
        assert read(mount, "file.txt") == CONTENT
        assert list(members(mount, "")) == ["file.txt"]

    # -- names -------------------------------------------------------------------

    @pytest.mark.parametrize("name", NAMES)
    def test_unicode_and_space_names(self, mount: Mount, name: str) -> None:
        put(mount, name, name.encode())
        entry = mount.stat(name)
        assert entry is not None and entry.name == name and entry.size == len(name.encode())
        assert list(members(mount, "")) == [name]
        assert read(mount, name) == name.encode()
        mount.remove_file(name)
        assert mount.stat(name) is None

    @pytest.mark.parametrize("name", NAMES)
    def test_unicode_and_space_folder_names(self, mount: Mount, name: str) -> None:
        folder = f"Ordner {name}"
        mount.make_folder(folder)
        put(mount, f"{folder}/{name}", CONTENT)
        assert list(members(mount, "")) == [folder]
        assert list(members(mount, folder)) == [name]
        assert read(mount, f"{folder}/{name}") == CONTENT
        mount.remove_folder(folder)
        assert mount.list("") == []

    # -- list ----------------------------------------------------------------------

    def test_list_returns_exactly_the_members(self, mount: Mount) -> None:
        mount.make_folder("sub")
        mount.make_folder("sub/deeper")
        put(mount, "sub/deeper/hidden.txt", CONTENT)
        put(mount, "sub/a.txt", CONTENT)
        put(mount, "sub/empty", b"")
        put(mount, "top.txt", b"top")
        listed = members(mount, "sub")
        assert set(listed) == {"deeper", "a.txt", "empty"}
        assert listed["deeper"].is_folder
        assert (listed["a.txt"].is_folder, listed["a.txt"].size) == (False, len(CONTENT))
        assert (listed["empty"].is_folder, listed["empty"].size) == (False, 0)
        for name, entry in listed.items():
            assert entry.etag == etag(mount, f"sub/{name}"), name
        assert set(members(mount, "")) == {"sub", "top.txt"}
        assert set(members(mount, "sub/deeper")) == {"hidden.txt"}

    def test_list_of_empty_folder(self, mount: Mount) -> None:
        mount.make_folder("empty")
        assert mount.list("empty") == []

    def test_list_of_missing_raises_not_found(self, mount: Mount) -> None:
        with pytest.raises(errors.NotFound):
            mount.list("missing")

    # -- etags ---------------------------------------------------------------------

    def test_etags_are_unquoted_strings(self, mount: Mount) -> None:
        mount.make_folder("sub")
        put(mount, "file.txt", CONTENT)
        for rel in ("", "sub", "file.txt"):
            tag = etag(mount, rel)
            assert isinstance(tag, str) and tag and '"' not in tag, rel

    def test_file_etag_is_stable(self, mount: Mount) -> None:
        put(mount, "file.txt", CONTENT)
        tag = etag(mount, "file.txt")
        read(mount, "file.txt")
        mount.list("")
        put(mount, "sibling.txt", CONTENT)
        aborted = mount.open_upload("file.txt")
        aborted.write(b"never")
        aborted.abort()
        assert etag(mount, "file.txt") == tag
        assert members(mount, "")["file.txt"].etag == tag

    def test_file_etag_changes_with_content(self, mount: Mount) -> None:
        seen = []
        for i in range(20):  # same size, in quick succession
            put(mount, "file.txt", b"content %02d" % i)
            seen.append(etag(mount, "file.txt"))
        assert len(set(seen)) == len(seen), seen

    def test_folder_etag_changes_with_members(self, mount: Mount) -> None:
        mount.make_folder("sub")
        seen = [etag(mount, "sub")]
        put(mount, "sub/a.txt", CONTENT)
        seen.append(etag(mount, "sub"))
        put(mount, "sub/a.txt", CONTENT.upper())
        seen.append(etag(mount, "sub"))
        mount.make_folder("sub/deeper")
        seen.append(etag(mount, "sub"))
        mount.remove_file("sub/a.txt")
        seen.append(etag(mount, "sub"))
        mount.remove_folder("sub/deeper")
        seen.append(etag(mount, "sub"))
        for before, after in itertools.pairwise(seen):
            assert before != after, seen

    def test_folder_etag_is_stable(self, mount: Mount) -> None:
        mount.make_folder("sub")
        put(mount, "sub/a.txt", CONTENT)
        tag = etag(mount, "sub")
        read(mount, "sub/a.txt")
        mount.list("sub")
        put(mount, "elsewhere.txt", CONTENT)
        assert etag(mount, "sub") == tag
        assert members(mount, "")["sub"].etag == tag

    # -- folders and removal -------------------------------------------------------

    def test_make_folder(self, mount: Mount) -> None:
        mount.make_folder("sub")
        mount.make_folder("sub/deeper")
        entry = mount.stat("sub/deeper")
        assert entry is not None and entry.is_folder
        assert list(members(mount, "")) == ["sub"]
        assert mount.list("sub/deeper") == []

    def test_make_folder_with_missing_parent_raises_not_found(self, mount: Mount) -> None:
        with pytest.raises(errors.NotFound):
            mount.make_folder("missing/sub")
        assert mount.stat("missing") is None

    def test_make_folder_that_exists_raises_exists(self, mount: Mount) -> None:
        mount.make_folder("sub")
        put(mount, "sub/keep.txt", CONTENT)
        put(mount, "file.txt", CONTENT)
        with pytest.raises(errors.Exists):
            mount.make_folder("sub")
        with pytest.raises(errors.Exists):
            mount.make_folder("file.txt")
        assert read(mount, "sub/keep.txt") == CONTENT
        assert read(mount, "file.txt") == CONTENT

    def test_make_folder_below_a_file_fails(self, mount: Mount) -> None:
        put(mount, "file.txt", CONTENT)
        with pytest.raises((errors.Conflict, errors.NotFound)):
            mount.make_folder("file.txt/sub")
        assert read(mount, "file.txt") == CONTENT

    def test_remove_file(self, mount: Mount) -> None:
        put(mount, "file.txt", CONTENT)
        put(mount, "keep.txt", CONTENT)
        mount.remove_file("file.txt")
        assert mount.stat("file.txt") is None
        assert list(members(mount, "")) == ["keep.txt"]

    def test_remove_missing_file_raises_not_found(self, mount: Mount) -> None:
        with pytest.raises(errors.NotFound):
            mount.remove_file("missing.txt")
        with pytest.raises(errors.NotFound):
            mount.remove_file("missing/file.txt")

    def test_remove_file_refuses_a_folder(self, mount: Mount) -> None:
        mount.make_folder("sub")
        put(mount, "sub/child.txt", CONTENT)
        with pytest.raises(errors.StorageError):
            mount.remove_file("sub")
        assert read(mount, "sub/child.txt") == CONTENT

    def test_remove_folder_is_recursive(self, mount: Mount) -> None:
        mount.make_folder("sub")
        mount.make_folder("sub/deeper")
        mount.make_folder("sub/deeper/empty")
        put(mount, "sub/a.txt", CONTENT)
        put(mount, "sub/deeper/b.txt", CONTENT)
        put(mount, "keep.txt", CONTENT)
        mount.remove_folder("sub")
        for rel in ("sub", "sub/a.txt", "sub/deeper", "sub/deeper/b.txt"):
            assert mount.stat(rel) is None, rel
        assert list(members(mount, "")) == ["keep.txt"]

    def test_remove_missing_folder_raises_not_found(self, mount: Mount) -> None:
        with pytest.raises(errors.NotFound):
            mount.remove_folder("missing")

    def test_remove_folder_refuses_a_file(self, mount: Mount) -> None:
        put(mount, "file.txt", CONTENT)
        with pytest.raises(errors.StorageError):
            mount.remove_folder("file.txt")
        assert read(mount, "file.txt") == CONTENT

    def test_remove_root_is_forbidden(self, mount: Mount) -> None:
        put(mount, "file.txt", CONTENT)
        with pytest.raises(errors.Forbidden):
            mount.remove_folder("")
        assert read(mount, "file.txt") == CONTENT

    # -- optional fast paths -------------------------------------------------------

    def unsupported(self, mount: Mount, method: str, *args: object) -> bool:
        """True when the provider does without ``method``; then its default must answer False."""
        if supports(mount, method):
            return False
        assert getattr(mount, method)(*args) is False
        return True

    def test_copy_file(self, mount: Mount) -> None:
        if self.unsupported(mount, "copy_file", "file.txt", "copy.txt"):
            return
        mount.make_folder("sub")
        put(mount, "file.txt", CONTENT)
        assert mount.copy_file("file.txt", "sub/copy.txt") is True
        assert read(mount, "file.txt") == read(mount, "sub/copy.txt") == CONTENT
        put(mount, "file.txt", b"changed")
        assert read(mount, "sub/copy.txt") == CONTENT
        assert mount.copy_file("file.txt", "sub/copy.txt") is True
        assert read(mount, "sub/copy.txt") == b"changed"
        assert list(members(mount, "sub")) == ["copy.txt"]

    def test_copy_file_errors(self, mount: Mount) -> None:
        if self.unsupported(mount, "copy_file", "file.txt", "copy.txt"):
            return
        put(mount, "file.txt", CONTENT)
        with pytest.raises(errors.NotFound):
            mount.copy_file("missing.txt", "copy.txt")
        with pytest.raises(errors.NotFound):
            mount.copy_file("file.txt", "missing/copy.txt")
        assert list(members(mount, "")) == ["file.txt"]

    def test_move_file(self, mount: Mount) -> None:
        if self.unsupported(mount, "move", "file.txt", "moved.txt"):
            return
        mount.make_folder("sub")
        put(mount, "file.txt", CONTENT)
        assert mount.move("file.txt", "sub/moved.txt") is True
        assert mount.stat("file.txt") is None
        assert read(mount, "sub/moved.txt") == CONTENT
        assert list(members(mount, "")) == ["sub"]

    def test_move_folder_with_children(self, mount: Mount) -> None:
        if self.unsupported(mount, "move", "file.txt", "moved.txt"):
            return
        mount.make_folder("a")
        mount.make_folder("a/b")
        put(mount, "a/b/c.txt", CONTENT)
        put(mount, "a/d.txt", b"d")
        assert mount.move("a", "z") is True
        assert mount.stat("a") is None
        assert list(members(mount, "")) == ["z"]
        assert set(members(mount, "z")) == {"b", "d.txt"}
        assert read(mount, "z/b/c.txt") == CONTENT
        assert read(mount, "z/d.txt") == b"d"

    def test_move_errors(self, mount: Mount) -> None:
        if self.unsupported(mount, "move", "file.txt", "moved.txt"):
            return
        put(mount, "file.txt", CONTENT)
        with pytest.raises(errors.NotFound):
            mount.move("missing.txt", "moved.txt")
        with pytest.raises(errors.NotFound):
            mount.move("file.txt", "missing/moved.txt")
        assert read(mount, "file.txt") == CONTENT

    def test_set_modified(self, mount: Mount) -> None:
        if self.unsupported(mount, "set_modified", "file.txt", 0.0):
            return
        put(mount, "file.txt", CONTENT)
        timestamp = 1_234_567_890.0
        assert mount.set_modified("file.txt", timestamp) is True
        entry = mount.stat("file.txt")
        assert entry is not None and abs(entry.modified - timestamp) <= 1
        assert abs(members(mount, "")["file.txt"].modified - timestamp) <= 1
        assert read(mount, "file.txt") == CONTENT
        with pytest.raises(errors.NotFound):
            mount.set_modified("missing.txt", timestamp)

    def test_space(self, mount: Mount) -> None:
        space = mount.space()
        if space is None:
            return
        used, available = space
        for value in (used, available):
            assert type(value) is int and value >= 0
