"""s3 provider: S3 errors become davgate's, a backend that is down answers in bounded time, start checks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from wsgidav.dav_error import DAVError

from davgate import errors
from davgate.config import ConfigError
from davgate.config.loader import parse_config
from davgate.config.schema import S3Mount as S3Options
from davgate.providers.s3 import S3Mount
from davgate.providers.s3.client import translated
from davgate.providers.s3.stale import abort_stale_uploads
from tests.providers.contract import CONTENT, put, read
from tests.rgw import Rgw

TIMEOUT = 1.0
RETRIES = 1
BOUND = (RETRIES + 1) * TIMEOUT + 2.5  # attempts, plus backoff between them, plus slack


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, errors.NotFound),
        ("404", 404, errors.NotFound),  # a HEAD has no body, only the status
        ("NoSuchUpload", 404, errors.NotFound),
        ("AccessDenied", 403, errors.Forbidden),
        ("403", 403, errors.Forbidden),
        ("PreconditionFailed", 412, errors.PreconditionFailed),
        ("412", 412, errors.PreconditionFailed),
        ("EntityTooLarge", 400, errors.NoSpace),
        ("QuotaExceeded", 403, errors.NoSpace),
        ("SlowDown", 503, errors.Unavailable),
        ("ServiceUnavailable", 503, errors.Unavailable),
        ("InternalError", 500, errors.BadGateway),
        ("NoSuchBucket", 404, errors.BadGateway),
        ("InvalidAccessKeyId", 403, errors.BadGateway),
        ("SomethingNew", 400, errors.BadGateway),
    ],
)
def test_s3_errors_map_by_code(code: str, status: int, expected: type[errors.StorageError]) -> None:
    with pytest.raises(expected) as raised, translated("a/b.txt"):
        raise client_error(code, status)
    assert type(raised.value) is expected and raised.value.path == "a/b.txt"
    assert isinstance(raised.value.__cause__, ClientError)


@pytest.mark.parametrize(
    "error",
    [EndpointConnectionError(endpoint_url="http://x"), ReadTimeoutError(endpoint_url="http://x")],
)
def test_connection_failures_are_unavailable(error: Exception) -> None:
    with pytest.raises(errors.Unavailable), translated("x"):
        raise error


# -- a backend that is down ------------------------------------------------------------


OPERATIONS: dict[str, Callable[[S3Mount], object]] = {
    "stat": lambda mount: mount.stat("file.txt"),
    "list": lambda mount: mount.list(""),
    "open_read": lambda mount: mount.open_read("file.txt"),
    "upload": lambda mount: put(mount, "file.txt", CONTENT),
    "make_folder": lambda mount: mount.make_folder("sub"),
    "remove_file": lambda mount: mount.remove_file("file.txt"),
    "copy_file": lambda mount: mount.copy_file("file.txt", "copy.txt"),
}


def down_mount(rgw: Rgw, port: int) -> S3Mount:
    options = rgw.options(endpoint=f"http://127.0.0.1:{port}", timeout=TIMEOUT, retries=RETRIES)
    return S3Mount("/s3", options)


def assert_unavailable_in_time(operation: Callable[[], object]) -> float:
    started = time.monotonic()
    with pytest.raises(errors.Unavailable):
        operation()
    elapsed = time.monotonic() - started
    assert elapsed < BOUND, f"took {elapsed:.1f} s, more than {BOUND} s"
    return elapsed


@pytest.mark.parametrize("operation", OPERATIONS)
def test_refused_endpoint_is_unavailable_quickly(rgw: Rgw, closed_port: int, operation: str) -> None:
    mount = down_mount(rgw, closed_port)
    mount.start()  # warns, does not stop the server
    assert_unavailable_in_time(lambda: OPERATIONS[operation](mount))


def test_silent_endpoint_is_unavailable_after_the_timeout(rgw: Rgw, silent_port: int) -> None:
    mount = down_mount(rgw, silent_port)
    elapsed = assert_unavailable_in_time(lambda: mount.stat("file.txt"))
    assert elapsed >= TIMEOUT


def test_folder_etag_of_a_down_backend_is_a_503_for_webdav(rgw: Rgw, closed_port: int) -> None:
    root = down_mount(rgw, closed_port).stat("")  # the root needs no request until its ETag is read
    assert root is not None
    with pytest.raises(DAVError) as raised:
        _ = root.etag
    assert raised.value.value == 503


def test_gateway_restart_is_survived_without_a_new_mount(rgw: Rgw) -> None:
    mount = rgw.mount(timeout=TIMEOUT, retries=RETRIES)
    try:
        put(mount, "file.txt", CONTENT)
        rgw.stop_gateway()
        try:
            assert_unavailable_in_time(lambda: mount.stat("file.txt"))
            assert_unavailable_in_time(lambda: read(mount, "file.txt"))
        finally:
            rgw.start_gateway()
        assert read(mount, "file.txt") == CONTENT
    finally:
        mount.delete_below(mount.root, "")
        mount.close()


# -- start and options ---------------------------------------------------------------------


def test_missing_bucket_is_a_configuration_error(rgw: Rgw) -> None:
    mount = S3Mount("/s3", rgw.options(bucket=rgw.new_bucket_name()))
    with pytest.raises(ConfigError) as raised:
        mount.start()
    assert raised.value.key == "mounts./s3.bucket"
    assert "create_bucket: true" in str(raised.value)


def test_create_bucket_makes_it_once(rgw: Rgw) -> None:
    options = rgw.options(bucket=rgw.new_bucket_name(), create_bucket=True, prefix="")
    first, second = S3Mount("/s3", options), S3Mount("/s3", options)
    first.start()
    second.start()  # it exists now: nothing to do
    put(second, "file.txt", CONTENT)
    assert read(first, "file.txt") == CONTENT
    first.remove_file("file.txt")
    rgw.client().delete_bucket(Bucket=options.bucket)


def test_wrong_keys_are_a_configuration_error(rgw: Rgw) -> None:
    mount = S3Mount("/s3", rgw.options(secret_key="not-the-secret"))
    with pytest.raises(ConfigError) as raised:
        mount.start()
    assert raised.value.key.startswith("mounts./s3.")
    assert "not-the-secret" not in str(raised.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [("part_size", 4 * 1024 * 1024), ("page_size", 0), ("page_size", 1001), ("upload_concurrency", 0),
     ("retries", -1), ("timeout", 0.0), ("prefix", "a/../b")],
)  # fmt: skip
def test_bad_options_are_refused_with_their_key(rgw: Rgw, name: str, value: Any) -> None:
    with pytest.raises(ConfigError) as raised:
        S3Mount("/s3", replace(rgw.options(), **{name: value}))
    assert raised.value.key == f"mounts./s3.{name}"


def test_yaml_mount_section_parses_with_defaults() -> None:
    config = parse_config(
        {
            "state": {"type": "sqlite", "path": "/tmp/state.db"},
            "mounts": {"/ceph": {"type": "s3", "endpoint": "http://127.0.0.1:7480", "bucket": "davgate",
                                 "access_key": "a", "secret_key": "s", "part_size": "16777216"}},
        }
    )  # fmt: skip
    options = config.mounts["/ceph"]
    assert isinstance(options, S3Options)
    assert (options.part_size, options.create_bucket, options.page_size) == (16 * 1024 * 1024, False, 1000)
    S3Mount("/ceph", options)  # accepted as it is


def test_start_aborts_abandoned_multipart_uploads_but_not_live_ones(rgw: Rgw) -> None:
    mount = S3Mount("/s3", rgw.options())
    client, bucket = rgw.client(), mount.bucket
    try:
        mine = client.create_multipart_upload(Bucket=bucket, Key=mount.root + "dead.bin")["UploadId"]
        elsewhere = client.create_multipart_upload(Bucket=bucket, Key="other-prefix/dead.bin")["UploadId"]
        mount.start()  # begun a moment ago: a live upload of another process, kept
        assert uploads(client, bucket, mount.root) == [mine]
        assert abort_stale_uploads(client, bucket, mount.root, older_than=0) == 1  # as if a day had passed
        assert uploads(client, bucket, mount.root) == []
        assert uploads(client, bucket, "other-prefix/") == [elsewhere]  # another mount's prefix is not touched
    finally:
        client.abort_multipart_upload(Bucket=bucket, Key="other-prefix/dead.bin", UploadId=elsewhere)
        mount.close()


def uploads(client: Any, bucket: str, prefix: str) -> list[str]:
    return [u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])]
