"""s3 provider: multipart uploads, ranged reads, folders as prefixes, pagination, server-side copies."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterator

import pytest

from davgate import errors
from davgate.providers import s3 as s3_provider
from davgate.providers.s3 import S3Mount
from davgate.providers.s3.upload import (
    MAX_PART_SIZE,
    MAX_PARTS,
    S3Upload,
    part_size_for,
)
from tests.helpers import wait_until
from tests.providers.contract import etag, members, put, read, read_exactly
from tests.rgw import SESSION_BUCKET, Rgw, counted_calls

MiB = 1024 * 1024
DATA = os.urandom(20 * MiB)


@pytest.fixture
def mount(rgw: Rgw) -> Iterator[S3Mount]:
    mount = rgw.mount(part_size=8 * MiB)
    yield mount
    mount.delete_below(mount.root, "")
    mount.close()


@pytest.fixture
def raw(rgw: Rgw):
    """A plain boto3 client, to look behind the mount's back."""
    return rgw.client()


def raw_etag(raw, mount: S3Mount, rel: str) -> str:
    return raw.head_object(Bucket=SESSION_BUCKET, Key=mount.key(rel))["ETag"]


def uploads_of(raw, mount: S3Mount) -> list[dict]:
    return raw.list_multipart_uploads(Bucket=SESSION_BUCKET, Prefix=mount.root).get("Uploads", [])


# -- uploads ---------------------------------------------------------------------------


def test_large_upload_is_multipart_and_sends_parts_while_the_body_arrives(mount: S3Mount, raw) -> None:
    with counted_calls(mount) as calls:
        upload = mount.open_upload("big.bin")
        assert isinstance(upload, S3Upload)
        for start in range(0, 17 * MiB, MiB):
            upload.write(DATA[start : start + MiB])

        def parts() -> list:
            return raw.list_parts(Bucket=SESSION_BUCKET, Key=mount.key("big.bin"), UploadId=upload.upload_id).get(
                "Parts", []
            )

        wait_until(lambda: len(parts()) == 2, timeout=20)
        assert upload.buffered == MiB  # never more than one part waits in memory
        assert mount.stat("big.bin") is None and mount.list("") == []
        for start in range(17 * MiB, len(DATA), MiB):
            upload.write(DATA[start : start + MiB])
        upload.commit()
    assert calls["CreateMultipartUpload"] == 1 and calls["CompleteMultipartUpload"] == 1
    assert calls["UploadPart"] == 3 and calls["PutObject"] == 0
    assert hashlib.sha256(read(mount, "big.bin")).digest() == hashlib.sha256(DATA).digest()


def test_multipart_etag_is_read_back_by_head(mount: S3Mount, raw) -> None:
    put(mount, "big.bin", DATA, chunk=MiB)
    etag = raw_etag(raw, mount, "big.bin")
    assert etag.startswith('"') and etag.endswith('-3"')  # md5 of the parts' md5s, 3 parts
    entry = mount.stat("big.bin")
    assert entry is not None and entry.etag == etag.strip('"') and entry.size == len(DATA)
    assert members(mount, "")["big.bin"].etag == entry.etag


def test_small_file_is_a_single_put(mount: S3Mount) -> None:
    with counted_calls(mount) as calls:
        put(mount, "small.txt", DATA[: 8 * MiB - 1], chunk=MiB)
    assert calls["PutObject"] == 1 and calls["CreateMultipartUpload"] == 0
    entry = mount.stat("small.txt")
    assert entry is not None and entry.content_type == "text/plain"


def test_body_of_whole_parts_sends_no_empty_last_part(mount: S3Mount) -> None:
    with counted_calls(mount) as calls:
        put(mount, "two-parts.bin", DATA[: 16 * MiB], chunk=3 * MiB)
    assert calls["UploadPart"] == 2
    assert read(mount, "two-parts.bin") == DATA[: 16 * MiB]


def test_abort_leaves_no_parts_and_no_object(mount: S3Mount, raw) -> None:
    upload = mount.open_upload("big.bin")
    for start in range(0, len(DATA), MiB):
        upload.write(DATA[start : start + MiB])
    assert len(uploads_of(raw, mount)) == 1
    upload.abort()
    assert uploads_of(raw, mount) == []
    assert mount.stat("big.bin") is None and mount.list("") == []


def test_a_failed_part_fails_the_upload_and_abort_cleans_up(mount: S3Mount, raw) -> None:
    put(mount, "big.bin", b"old")
    upload = mount.open_upload("big.bin")
    assert isinstance(upload, S3Upload)
    upload.write(DATA[: 9 * MiB])
    raw.abort_multipart_upload(Bucket=SESSION_BUCKET, Key=mount.key("big.bin"), UploadId=upload.upload_id)
    with pytest.raises(errors.StorageError):
        for start in range(9 * MiB, len(DATA), MiB):
            upload.write(DATA[start : start + MiB])
        upload.commit()
    upload.abort()
    assert uploads_of(raw, mount) == []
    assert read(mount, "big.bin") == b"old"


def test_memory_stays_at_concurrency_plus_one_parts(rgw: Rgw) -> None:
    """A body many parts long never holds more than the parts in flight plus the one being filled."""
    mount = rgw.mount(part_size=5 * MiB, upload_concurrency=2)
    body = DATA[: 5 * MiB] * 8  # 40 MiB: 8 parts
    try:
        tracemalloc.start()
        try:
            put(mount, "big.bin", body, chunk=MiB)
            _now, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < (2 + 1) * 5 * MiB + 4 * MiB, f"{peak / MiB:.1f} MiB traced at the peak"
        assert hashlib.sha256(read(mount, "big.bin")).digest() == hashlib.sha256(body).digest()
    finally:
        mount.delete_below(mount.root, "")
        mount.close()


def test_parts_go_out_as_buffers_without_expect_continue(mount: S3Mount) -> None:
    """bytearray bodies: botocore neither wraps them in a BytesIO nor waits for a 100 Continue."""
    seen: list[tuple[str, object]] = []

    def record(request, **kwargs) -> None:
        seen.append((request.headers.get("Expect", ""), type(request.body)))

    mount.client.meta.events.register("before-send.s3.UploadPart", record)
    try:
        put(mount, "big.bin", DATA, chunk=MiB)
    finally:
        mount.client.meta.events.unregister("before-send.s3.UploadPart", record)
    assert seen == [("", bytearray)] * 3
    assert read(mount, "big.bin") == DATA


def test_parts_grow_so_a_stream_can_reach_5_tib() -> None:
    base = 8 * MiB
    assert [part_size_for(n, base) for n in (1, 1000, 1001, 2001)] == [base, base, 2 * base, 4 * base]
    sizes = [part_size_for(n, base) for n in range(1, MAX_PARTS + 1)]
    assert max(sizes) <= MAX_PART_SIZE
    assert sum(sizes) >= 5 * 1024 * 1024 * MiB


# -- reads ---------------------------------------------------------------------------------


def test_reads_get_ranges_only_where_the_reader_seeks(mount: S3Mount, raw) -> None:
    raw.put_object(Bucket=SESSION_BUCKET, Key=mount.key("big.bin"), Body=DATA)
    with counted_calls(mount) as calls, mount.open_read("big.bin") as stream:
        assert read_exactly(stream, MiB) == DATA[:MiB]  # the GET made at open
        stream.seek(MiB + 100 * 1024)  # a short skip ahead reads on
        assert read_exactly(stream, 10) == DATA[MiB + 100 * 1024 : MiB + 100 * 1024 + 10]
        stream.seek(15 * MiB)  # a long one asks for a new range
        assert read_exactly(stream, 1000) == DATA[15 * MiB : 15 * MiB + 1000]
        stream.seek(5)  # and so does going back
        assert read_exactly(stream, 5) == DATA[5:10]
        stream.seek(len(DATA) + 10)  # past the end: nothing to fetch
        assert stream.read(10) == b""
        assert stream.tell() == len(DATA) + 10
    assert calls["GetObject"] == 3


def test_a_reader_never_mixes_two_versions(mount: S3Mount) -> None:
    put(mount, "file.bin", DATA[: 2 * MiB])
    with mount.open_read("file.bin") as stream:
        assert read_exactly(stream, 10) == DATA[:10]
        put(mount, "file.bin", DATA[2 * MiB : 4 * MiB])
        stream.seek(MiB)
        with pytest.raises(errors.PreconditionFailed):
            stream.read(10)


# -- folders and listings ------------------------------------------------------------------


def test_an_empty_folder_is_a_marker(mount: S3Mount, raw) -> None:
    mount.make_folder("empty")
    marker = raw.head_object(Bucket=SESSION_BUCKET, Key=mount.key("empty") + "/")
    assert marker["ContentLength"] == 0
    listed = members(mount, "")
    assert list(listed) == ["empty"] and listed["empty"].is_folder
    assert mount.list("empty") == []


def test_folders_made_by_other_tools_stay_when_emptied(mount: S3Mount, raw) -> None:
    raw.put_object(Bucket=SESSION_BUCKET, Key=mount.key("a/b/c.txt"), Body=b"c")
    entry = mount.stat("a")
    assert entry is not None and entry.is_folder
    assert list(members(mount, "a")) == ["b"]
    mount.remove_file("a/b/c.txt")
    assert mount.list("a/b") == []
    assert list(members(mount, "")) == ["a"]


def test_a_name_that_is_file_and_folder_shows_as_the_file(mount: S3Mount, raw) -> None:
    raw.put_object(Bucket=SESSION_BUCKET, Key=mount.key("both"), Body=b"file")
    raw.put_object(Bucket=SESSION_BUCKET, Key=mount.key("both/child"), Body=b"child")
    listed = members(mount, "")
    assert list(listed) == ["both"] and not listed["both"].is_folder
    entry = mount.stat("both")
    assert entry is not None and not entry.is_folder


def test_listings_and_folder_etags_follow_every_page(rgw: Rgw, raw) -> None:
    mount = rgw.mount(page_size=2)
    try:
        names = [f"f{i}.txt" for i in range(5)]
        for name in names:
            put(mount, name, name.encode())
        mount.make_folder("d1")
        mount.make_folder("d2")
        with counted_calls(mount) as calls:
            listed = members(mount, "")
        assert set(listed) == {*names, "d1", "d2"}
        assert calls["ListObjectsV2"] == 4
        tag = etag(mount, "")
        put(mount, "f4.txt", b"changed on the last page")
        assert etag(mount, "") != tag
    finally:
        mount.delete_below(mount.root, "")
        mount.close()


def test_remove_folder_deletes_in_batches(mount: S3Mount, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_provider, "DELETE_BATCH", 3)
    mount.make_folder("sub")
    for i in range(6):
        put(mount, f"sub/{i}.txt", b"x")
    with counted_calls(mount) as calls:
        mount.remove_folder("sub")
    assert calls["DeleteObjects"] == 3  # 7 keys (the marker too), 3 per request
    assert mount.list("") == []


@pytest.mark.parametrize("rel", ["..", "../x", "a/../../x", "a//b", "./a", "/abs"])
def test_paths_that_leave_the_prefix_are_refused(mount: S3Mount, rel: str) -> None:
    for operation in (mount.stat, mount.list, mount.open_read, mount.make_folder, mount.remove_file):
        with pytest.raises(errors.OutsideMount):
            operation(rel)


# -- server-side copies --------------------------------------------------------------------


def test_copy_is_server_side(mount: S3Mount) -> None:
    put(mount, "Grüße über.bin", DATA[: 3 * MiB], chunk=MiB)
    with counted_calls(mount) as calls:
        assert mount.copy_file("Grüße über.bin", "copy 100%.bin") is True
    assert calls["CopyObject"] == 1
    assert not calls.keys() & {"GetObject", "PutObject", "UploadPart"}
    assert read(mount, "copy 100%.bin") == DATA[: 3 * MiB]


def test_copy_above_the_single_copy_limit_is_multipart(mount: S3Mount) -> None:
    put(mount, "big.bin", DATA, chunk=MiB)
    mount.copier.single_limit = mount.copier.part_size = 8 * MiB
    with counted_calls(mount) as calls:
        mount.copy_file("big.bin", "copy.bin")
    assert calls["UploadPartCopy"] == 3 and calls["CompleteMultipartUpload"] == 1
    assert not calls.keys() & {"GetObject", "PutObject", "UploadPart", "CopyObject"}
    assert read(mount, "copy.bin") == DATA
    entry = mount.stat("copy.bin")
    assert entry is not None and entry.content_type == "application/octet-stream"


def test_move_of_a_folder_is_server_side_key_by_key(mount: S3Mount) -> None:
    mount.make_folder("a")
    mount.make_folder("a/empty")
    put(mount, "a/one.txt", b"1")
    put(mount, "a/two.txt", b"2")
    with counted_calls(mount) as calls:
        mount.move("a", "b")
    assert calls["CopyObject"] == 4  # a/, a/empty/, a/one.txt, a/two.txt
    assert not calls.keys() & {"GetObject", "PutObject", "UploadPart"}
    assert mount.stat("a") is None
    assert set(members(mount, "b")) == {"empty", "one.txt", "two.txt"}
    assert read(mount, "b/two.txt") == b"2"


def test_move_of_a_folder_into_itself_is_refused(mount: S3Mount) -> None:
    mount.make_folder("a")
    with pytest.raises(errors.Conflict):
        mount.move("a", "a/b")
    with pytest.raises(errors.Exists):
        mount.move("a", "")


def test_the_root_is_never_taken_for_a_file(mount: S3Mount) -> None:
    mount.make_folder("sub")
    for operation in (mount.open_read, mount.remove_file, mount.open_upload):
        with pytest.raises(errors.Conflict):
            operation("")
    with pytest.raises(errors.NotFound):
        mount.copy_file("", "copy")
